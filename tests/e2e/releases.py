"""Which Ceph the end-to-end suite runs, and how a command of that Ceph is started.

Pacific 16 is the host's own packages, its daemons bare children of the test. Reef 18 and
Tentacle 20 come from Debian roots (``scripts/ceph-roots.sh`` builds them outside the checkout)
and their daemons run the way cephadm runs them: in their own PID, mount, IPC and UTS
namespaces, as uid 167, with cephadm's command line (``-n osd.N -f --setuser ceph --setgroup
ceph --default-log-to-file=false --default-log-to-stderr=true``) and the config mounted at
/etc/ceph/ceph.conf inside, a small init as PID 1 the way podman's ``--init`` does. The host
sees each daemon under its host pid, with another ``/proc/PID/root`` and a uid no host user has.

The cluster's directory is bind-mounted into the root at its own path, inside a mount
namespace of the command's own (nothing is mounted on the host), so every path in ceph.conf
means the same file inside and out.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOTS_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ceph-roots.sh"
CEPHADM_ARGS = (
    "-f",
    "--setuser",
    "ceph",
    "--setgroup",
    "ceph",
    "--default-log-to-file=false",
    "--default-log-to-stderr=true",
)
CEPH_UID = 167  # cephadm's ceph user and group inside every container
MARK = "CEPH_E2E_CLUSTER"  # in every daemon's environment: the fsid of its test cluster


@dataclass(frozen=True)
class Release:
    """A Ceph release the suite runs: ``root`` None means the host's packages."""

    number: str
    root: Path | None = None

    @property
    def contained(self) -> bool:
        return self.root is not None

    @property
    def deployment(self) -> str:
        return "cephadm-style containers" if self.contained else "bare daemons"

    def __str__(self) -> str:
        return f"ceph{self.number}"

    def command(self, cluster_dir: Path, argv: list[str], forward: bool = False) -> list[str]:
        """A tool of this release (the CLI, mkfs, authtool), run as root.

        ``forward``: the command takes more arguments after it (a wrapper script's "$@").
        """
        if self.root is None:
            return argv
        script = self._script(cluster_dir, argv, "") + (' "$@"' if forward else "")
        return ["unshare", "--mount", "--", "sh", "-c", script, *(["sh"] if forward else [])]

    def daemon(self, cluster_dir: Path, daemon: str, argv: list[str]) -> list[str]:
        """A daemon of this release: bare on the host, or in a cephadm-style container.

        ``argv`` is the bare command line (``ceph-osd -f -c CONF -i 0``); in a container it
        becomes cephadm's (``ceph-osd -n osd.0 -f --setuser ceph ...``).
        """
        if self.root is None:
            return argv
        contained = [argv[0], "-n", daemon, *CEPHADM_ARGS]
        conf = self.root / "etc" / "ceph" / "ceph.conf"
        own_conf = shlex.quote(str(cluster_dir / "ceph.conf"))
        mounts = f"mount --bind {own_conf} {shlex.quote(str(conf))} && "
        # Not exec'd: the shell stays PID 1 of the namespace (podman's --init), so the daemon
        # is an ordinary process there, dies of its own signals (an abort is an abort) and the
        # shell exits with its status.
        return [
            "unshare", "--mount", "--pid", "--fork", "--ipc", "--uts", "--kill-child",
            f"--mount-proc={self.root / 'proc'}", "--", "sh", "-c",
            self._script(cluster_dir, contained, mounts, tail=True),
        ]  # fmt: skip

    def _script(self, cluster_dir: Path, argv: list[str], mounts: str, tail: bool = False) -> str:
        assert self.root is not None
        inside = self.root / str(cluster_dir).lstrip("/")
        run = f"chroot {shlex.quote(str(self.root))} {shlex.join(argv)}"
        run = f"{run}; status=$?; exit $status" if tail else f"exec {run}"
        here, there = shlex.quote(str(cluster_dir)), shlex.quote(str(inside))
        return f"mount --bind {here} {there} && {mounts}{run}"

    def prepare(self, cluster_dir: Path) -> None:
        """Make the mount points inside the root; hand the cluster's files to uid 167."""
        if self.root is None:
            return
        (self.root / str(cluster_dir).lstrip("/")).mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "ceph").mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "ceph" / "ceph.conf").touch()

    def chown(self, cluster_dir: Path) -> None:
        """What a daemon writes must belong to the uid it drops to (cephadm: 167)."""
        if self.root is None:
            return
        for path in [cluster_dir, *cluster_dir.rglob("*")]:
            if not path.is_symlink():
                # Running daemons write meanwhile: a temporary file renamed away since the
                # walk listed it needs no owner.
                with contextlib.suppress(FileNotFoundError):
                    os.chown(path, CEPH_UID, CEPH_UID)
            else:
                os.chown(path, CEPH_UID, CEPH_UID, follow_symlinks=False)

    def forget(self, cluster_dir: Path) -> None:
        """Remove the (empty) mount point the cluster had inside the root."""
        if self.root is None:
            return
        inside = self.root / str(cluster_dir).lstrip("/")
        with contextlib.suppress(OSError):  # already gone, or (never) still mounted: leave it
            inside.rmdir()

    @property
    def stock_modules(self) -> Path:
        """Where this release's ceph-mgr keeps its modules, as seen from the host."""
        base = self.root if self.root is not None else Path("/")
        return base / "usr" / "share" / "ceph" / "mgr"

    @property
    def python(self) -> str:
        """A Python with this release's librados binding (the host's, or the root's)."""
        return "/usr/bin/python3" if self.root is None else "python3"


HOST = Release("16")


@functools.cache
def roots() -> dict[str, Path]:
    """Every root the set-up script has (or can now) build: {"18": path, "20": path}."""
    if not ROOTS_SCRIPT.exists():
        return {}
    out = subprocess.run(
        [str(ROOTS_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{ROOTS_SCRIPT} failed: {out.stderr.strip()}")
    found = {}
    for line in out.stdout.splitlines():
        number, _, path = line.partition(" ")
        found[number] = Path(path)
    return found


def release(number: str) -> Release | None:
    """The release, or None when its root cannot be had here (no root, no apt)."""
    if number == HOST.number:
        return HOST
    path = roots().get(number)
    return Release(number, path) if path is not None else None


def root_of(number: str) -> Path | None:
    """The cached Debian root of a release (Pacific's too), or None when it cannot be had."""
    return roots().get(number)


@contextlib.contextmanager
def fresh_root(base: Path) -> Iterator[Path]:
    """A copy of a cached root as mmdebstrap left it, thrown away afterwards.

    An overlay: what is written goes to a layer of its own, the cached root is never changed,
    and making one takes milliseconds instead of copying 600 MB.
    """
    work = Path(tempfile.mkdtemp(prefix="root-", dir="/var/tmp"))
    upper, scratch, merged = work / "upper", work / "work", work / "merged"
    for path in (upper, scratch, merged):
        path.mkdir()
    options = f"lowerdir={base},upperdir={upper},workdir={scratch}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)],
                   check=True, timeout=30)  # fmt: skip
    try:
        yield merged
    finally:
        out = subprocess.run(["umount", str(merged)], capture_output=True, timeout=30, check=False)
        if out.returncode != 0:  # something still holds it: detach now, freed when let go
            subprocess.run(["umount", "--lazy", str(merged)], timeout=30, check=False)
        shutil.rmtree(work, ignore_errors=True)


def install_debs(root: Path, debs: list[Path]) -> str:
    """``apt-get install ./*.deb`` inside ``root``, as an operator does; returns apt's output.

    Only what the root already has may satisfy their dependencies: the roots carry no package
    lists, so a dependency the release lacks fails the install instead of being downloaded.
    """
    inbox = Path("/root/debs")  # inside the root
    (root / inbox.relative_to("/")).mkdir(parents=True, exist_ok=True)
    for deb in debs:
        shutil.copy2(deb, root / inbox.relative_to("/") / deb.name)
    argv = ["chroot", str(root), "env", "DEBIAN_FRONTEND=noninteractive", "apt-get",
            "install", "-y", "--no-install-recommends",
            *(str(inbox / d.name) for d in debs)]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"apt-get install in {root} failed: {out.stdout}{out.stderr}")
    return out.stdout
