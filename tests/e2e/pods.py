"""The watchdog's image, and a DaemonSet's pod run from it the way a container runtime does.

``build_image`` applies the shipped recipe (deploy/image/install.sh, what the Containerfile
runs in Ceph's image) to a fresh Debian root of a Ceph release: that root, with Ceph's own
packages of the release and the watchdog installed by the recipe, is the image.

``Pod`` reads a shipped DaemonSet manifest and runs one of its containers from the image as
the kubelet would: the manifest's uid, capabilities, read-only root, environment, args, and
volumes (its own ConfigMaps; Rook's mon endpoints and the CephClient's Secret as the test's
cluster provides them; hostPath and emptyDir as directories), in mount, UTS and IPC namespaces
of its own with a /proc of its own mount, sharing the host's PID namespace and network
(hostPID, hostNetwork). What is substituted: addresses and paths only (a listen port, where
a hostPath lives), never a setting.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.shipped import CHECKOUT, localized

IMAGE = CHECKOUT / "deploy" / "image"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")  # this machine's way to the index
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
INBOX = "/tmp/osd-watchdog"  # noqa: S108 - inside the image, where the Containerfile COPYs to


def build_image(root: Path, wheel: Path) -> str:
    """Run the image recipe in ``root`` as the Containerfile does; returns what it printed.

    The build may reach the package index (the wheel's dependencies), through this machine's
    CA bundle: the builder's network setting, not part of the recipe.
    """
    inbox = root / INBOX.lstrip("/")
    inbox.mkdir(parents=True, exist_ok=True)
    for source in (wheel, IMAGE / "install.sh", IMAGE / "entrypoint.sh"):
        shutil.copy2(source, inbox / source.name)
    env = ["env", "-i", f"PATH={DEFAULT_PATH}"]
    if HOST_CA.exists():
        shutil.copy2(HOST_CA, inbox / "ca.crt")
        env.append(f"PIP_CERT={INBOX}/ca.crt")
    out = subprocess.run(
        ["chroot", str(root), *env, "sh", f"{INBOX}/install.sh", INBOX],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"deploy/image/install.sh failed in {root}: {out.stdout}{out.stderr}")
    shutil.rmtree(inbox)  # as the Containerfile's RUN does
    return out.stdout


def entrypoint() -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of the shipped Containerfile."""
    found: dict[str, list[str]] = {}
    for line in (IMAGE / "Containerfile").read_text().splitlines():
        word, _, rest = line.partition(" ")
        if word in {"ENTRYPOINT", "CMD"}:
            found[word] = yaml.safe_load(rest)  # a JSON array is YAML too
    return found["ENTRYPOINT"], found.get("CMD", [])


def documents(manifest: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(manifest.read_text()) if d]


@dataclass
class Pod:
    """One pod of a shipped DaemonSet, on this host, from ``image``."""

    manifest: Path
    image: Path
    workdir: Path
    # What the cluster gives the pod beyond the manifest's own ConfigMaps: {name: {key: text}}.
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    # Addresses and paths to change in the manifest's TOML configs (tests.shipped.localized).
    where: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        docs = documents(self.manifest)
        (daemonset,) = [d for d in docs if d["kind"] == "DaemonSet"]
        self.spec: dict[str, Any] = daemonset["spec"]["template"]["spec"]
        own = {d["metadata"]["name"]: d["data"] for d in docs if d["kind"] == "ConfigMap"}
        self.config_maps = {**own, **self.config_maps}
        self.volumes: dict[str, Path] = {}

    def prepare(self) -> None:
        """Each volume as a directory, and its mount point in the image."""
        for volume in self.spec["volumes"]:
            path = self.workdir / "volumes" / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            if "configMap" in volume:
                self._project(
                    path, self.config_maps[volume["configMap"]["name"]], volume["configMap"]
                )
            elif "secret" in volume:
                self._project(path, self.secrets[volume["secret"]["secretName"]], volume["secret"])
            elif "emptyDir" in volume:
                path.chmod(0o777)  # as the kubelet makes it
            elif "hostPath" not in volume:
                raise ValueError(f"volume {volume['name']}: kind not supported here")
            self.volumes[volume["name"]] = path

    def _project(self, path: Path, data: dict[str, str], source: dict[str, Any]) -> None:
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            text = data[item["key"]]
            if item["path"].endswith(".toml"):
                text = localized(text, **self.where)
            (path / item["path"]).write_text(text)
            (path / item["path"]).chmod(0o644)

    def container(self, name: str | None = None, *, init: bool = False) -> dict[str, Any]:
        listed = self.spec["initContainers" if init else "containers"]
        return next(c for c in listed if name is None or c["name"] == name)

    def argv(self, container: dict[str, Any], **security: object) -> list[str]:
        """The command line that runs ``container`` as the kubelet would (``security``
        overrides keys of its securityContext: a test of what happens without them)."""
        context = {**self.spec.get("securityContext", {}),
                   **container.get("securityContext", {}), **security}  # fmt: skip
        uid, gid = context.get("runAsUser", 0), context.get("runAsGroup", 0)
        caps = context.get("capabilities", {}).get("add", [])
        image = shlex.quote(str(self.image))
        steps = [f"mount --bind {image} {image}"]
        if context.get("readOnlyRootFilesystem"):
            steps.append(f"mount -o remount,bind,ro {image}")
        steps.append(f"mount -t proc proc {image}/proc")  # the host's PID namespace (hostPID)
        for mount in container.get("volumeMounts", []):
            inside = self.image / mount["mountPath"].lstrip("/")
            inside.mkdir(parents=True, exist_ok=True)  # made in the image's upper layer
            source = self._source(mount["name"])
            ro = ",ro" if mount.get("readOnly") else ""
            steps.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(inside))}")
            if ro:
                steps.append(f"mount -o remount,bind{ro} {shlex.quote(str(inside))}")
        # Kubernetes: a command replaces the image's ENTRYPOINT and drops its CMD; args alone
        # replace the CMD.
        image_entrypoint, image_cmd = entrypoint()
        command = container.get("command", image_entrypoint)
        args = container.get("args", [] if "command" in container else image_cmd)
        env = [f"PATH={DEFAULT_PATH}", "HOME=/", *(f"{e['name']}={e['value']}"
               for e in container.get("env", []))]  # fmt: skip
        bounding = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
        # Root keeps what its bounding set allows across exec; any other uid keeps nothing.
        setpriv = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--inh-caps=-all",
            f"--bounding-set={bounding}",
        ]
        if context.get("allowPrivilegeEscalation") is False:
            setpriv.append("--no-new-privs")
        run = ["chroot", str(self.image), *setpriv, "--", "env", "-i", *env, *command, *args]
        script = " && ".join([*steps, f"exec {shlex.join(run)}"])
        return ["unshare", "--mount", "--uts", "--ipc", "--", "sh", "-c", script]

    def _source(self, name: str) -> Path:
        volume = next(v for v in self.spec["volumes"] if v["name"] == name)
        return self.volumes[name] if "hostPath" not in volume else self.host_path(volume)

    def host_path(self, volume: dict[str, Any]) -> Path:
        """A hostPath volume, under the work directory (a path, not a setting, changed)."""
        path = self.workdir / "host" / volume["hostPath"]["path"].lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run_init(self) -> None:
        """Each init container to its end, as the kubelet does before the main one."""
        for container in self.spec.get("initContainers", []):
            out = subprocess.run(self.argv(container), capture_output=True, text=True,
                                 timeout=120, check=False)  # fmt: skip
            if out.returncode != 0:
                raise RuntimeError(f"init container {container['name']}: {out.stderr}")


def chown_tree(path: Path, uid: int) -> None:
    for entry in [path, *path.rglob("*")]:
        os.chown(entry, uid, uid, follow_symlinks=False)
