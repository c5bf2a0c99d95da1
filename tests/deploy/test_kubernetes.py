"""Kubernetes manifests: valid against Kubernetes' own schemas, and wired to each other."""

import tomllib

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.deploy.conftest import DEPLOY
from watchdog.config import parse_config

K8S = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.30.0"


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def by_kind(kind: str) -> dict:
    return next(
        d
        for name in ("daemonset.yaml", "podmonitor.yaml")
        for d in documents(name)
        if d["kind"] == kind
    )


MANIFESTS = ("daemonset.yaml", "daemonset-pod-network.yaml")  # Rook's host / pod networking


@pytest.mark.parametrize(
    "resource",
    [d for name in MANIFESTS for d in documents(name)],
    ids=lambda d: d["kind"],
)
def test_core_resources_are_valid_for_kubernetes(resource):
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def pod_network_daemonset() -> dict:
    return next(d for d in documents("daemonset-pod-network.yaml") if d["kind"] == "DaemonSet")


def test_for_pod_networking_it_runs_as_root_with_exactly_the_capabilities_it_needs():
    pod = pod_network_daemonset()["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert pod["securityContext"]["runAsUser"] == 0
    security = pod["containers"][0]["securityContext"]
    assert security["capabilities"] == {
        "drop": ["ALL"],
        "add": ["SYS_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "DAC_OVERRIDE"],
    }
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert "privileged" not in security


def test_the_two_manifests_differ_only_in_privileges():
    """Everything else (config, ports, probes, state, selectors) stays the same in both."""

    def without_privileges(daemonset: dict) -> dict:
        copy = yaml.safe_load(yaml.safe_dump(daemonset))
        pod = copy["spec"]["template"]["spec"]
        pod.pop("securityContext")
        pod.pop("initContainers", None)  # uid 167 needs the state dir chowned; root does not
        for container in pod["containers"]:
            container["securityContext"].pop("capabilities")
        return copy

    assert without_privileges(pod_network_daemonset()) == without_privileges(by_kind("DaemonSet"))
    config_maps = [
        next(d for d in documents(name) if d["kind"] == "ConfigMap") for name in MANIFESTS
    ]
    assert config_maps[0] == config_maps[1]


def test_a_broken_manifest_is_caught_by_the_same_check():
    broken = by_kind("DaemonSet")
    broken = {**broken, "spec": {**broken["spec"], "hostPIDs": True}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_daemonset_sees_host_processes_and_network_without_privileges():
    pod = by_kind("DaemonSet")["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert pod["hostNetwork"] is True
    assert pod["securityContext"]["runAsUser"] == 167  # user ceph in Ceph's images
    container = pod["containers"][0]
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    # Read-only but for the state directory (fences, guard history, lock) and the emptyDir
    # the entrypoint writes the Ceph client config to.
    writable = {m["name"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"state", "ceph-config"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_the_config_map_is_a_valid_watchdog_config_listening_on_the_scraped_port():
    toml = by_kind("ConfigMap")["data"]["osd-watchdog.toml"]
    config = parse_config(tomllib.loads(toml))
    container = by_kind("DaemonSet")["spec"]["template"]["spec"]["containers"][0]
    port = next(p for p in container["ports"] if p["name"] == "metrics")
    assert config.web.host_port == ("0.0.0.0", port["containerPort"])
    mount = container["volumeMounts"][0]["mountPath"]
    assert container["args"] == ["run", "--config", f"{mount}/osd-watchdog.toml"]


def test_the_pod_monitor_selects_the_daemonset_pods_and_its_port():
    monitor = by_kind("PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    daemonset = by_kind("DaemonSet")
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert monitor["metadata"]["namespace"] == daemonset["metadata"]["namespace"]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    ports = {p["name"] for p in daemonset["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert endpoint["port"] in ports
    # The alert rules match job="osd-watchdog": jobLabel must produce exactly that.
    assert pod_labels[monitor["spec"]["jobLabel"]] == "osd-watchdog"


def test_the_watchdog_state_outlives_the_pod_on_the_node():
    """Fences, guard history and the lock live on the node, not in the container."""
    pod = by_kind("DaemonSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["state"] == "/var/lib/osd-watchdog"  # act.state_dir's default
    assert volumes["state"]["hostPath"] == {
        "path": "/var/lib/osd-watchdog",
        "type": "DirectoryOrCreate",
    }
    # ... made writable for uid 167 by an init container that may only chown.
    [init] = pod["initContainers"]
    assert init["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN"]}
    assert init["command"] == ["chown", "167:167", "/var/lib/osd-watchdog"]


def test_the_daemonset_reads_the_map_with_what_rook_gives_every_client():
    """Rook's mon endpoints and the Secret of the CephClient osd-watchdog, as its toolbox
    reads them; the config points the CLI at what the entrypoint writes from them."""
    pod = by_kind("DaemonSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["mon-endpoints"]["configMap"]["name"] == "rook-ceph-mon-endpoints"
    (client,) = documents("cephclient.yaml")
    assert (
        volumes["key"]["secret"]["secretName"] == f"rook-ceph-client-{client['metadata']['name']}"
    )
    env = {e["name"]: e["value"] for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["OSD_WATCHDOG_MON_ENDPOINTS"] == f"{mounts['mon-endpoints']}/mon-endpoints"
    assert env["OSD_WATCHDOG_KEY_FILE"] == f"{mounts['key']}/key"
    config = parse_config(tomllib.loads(by_kind("ConfigMap")["data"]["osd-watchdog.toml"]))
    assert config.cluster.source == "cli"
    assert str(config.cluster.conf) == f"{mounts['ceph-config']}/ceph.conf"
    assert str(config.cluster.keyring) == f"{mounts['ceph-config']}/keyring"
    assert config.cluster.client_name == f"client.{client['metadata']['name']}"
    assert config.cluster.client_name == env["OSD_WATCHDOG_CLIENT"]
    assert config.report.enabled


def test_the_kustomization_names_the_files_and_the_image_the_daemonset_uses():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists()
    (image,) = kustomization["images"]
    pod = by_kind("DaemonSet")["spec"]["template"]["spec"]
    used = {c["image"] for c in [*pod["containers"], *pod["initContainers"]]}
    assert used == {image["name"] + ":0.1.0"}
