"""The DaemonSet case, from the shipped files: the image the recipe makes, the manifest's pod.

The image is a fresh Debian root of the cluster's Ceph release (its own ceph CLI, as Ceph's
image has) with the watchdog installed by deploy/image/install.sh, the recipe the
Containerfile runs. The pod is deploy/kubernetes/daemonset.yaml's, run as the kubelet would
(tests/e2e/pods.py): uid 167, every capability dropped, a read-only root, the host's PID
namespace and network, the manifest's own ConfigMap as its config (only the listen port
changed), and what Rook gives every client as the cluster provides it: the mon endpoints in
Rook's format and the key of the CephClient the manifests ship, with its caps. So the shipped
DaemonSet reads the map, reports to the mgr module, and catches a zombie.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import Watched
from tests.e2e.pods import Pod, build_image
from tests.e2e.releases import CEPH_UID, fresh_root, root_of
from tests.e2e.test_mgr_module import enable_module, wait_health
from tests.e2e.test_real_ceph import HEALTHY, mute_public
from tests.process import Daemon, unused_port
from tests.shipped import KUBERNETES, key_caps

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.cluster import CephCluster

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def image_of(release: str, release_files: Path) -> Iterator[Path]:
    """The watchdog's image for a Ceph release: the shipped recipe in a fresh root of it."""
    base = root_of(release)
    assert base is not None
    with fresh_root(base) as root:
        build_image(root, next(release_files.glob("*.whl")))
        yield root


@pytest.fixture
def image(ceph, release_files) -> Iterator[Path]:
    with image_of(ceph.release.number, release_files) as root:
        yield root


def rook_gives(ceph: CephCluster) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """What Rook puts in the namespace for a client: its mon endpoints ConfigMap and the Secret
    of the CephClient (cephclient.yaml), with the key made with the CephClient's caps."""
    v1 = ceph.mon_ports[1]
    config_maps = {"rook-ceph-mon-endpoints": {"data": f"a={ceph.address}:{v1}"}}
    ceph.client_key("client.osd-watchdog", *key_caps())
    key = ceph.ceph("auth", "get-key", "client.osd-watchdog").strip()
    secrets = {"rook-ceph-client-osd-watchdog": {"osd-watchdog": key}}
    return config_maps, secrets


class PodWatchdog(Watched):
    """The DaemonSet's watchdog container, running."""

    def __init__(self, pod: Pod, port: int, **security: object) -> None:
        self.port = port
        self.pod = pod
        pod.prepare()
        pod.run_init()
        self.daemon = Daemon(pod.workdir / "unused", argv=pod.argv(pod.container(), **security))

    def stop(self) -> int:
        return self.daemon.stop()


def daemonset_pod(
    ceph: CephCluster,
    image: Path,
    workdir: Path,
    manifest: str = "daemonset.yaml",
    **security: object,
) -> PodWatchdog:
    """The manifest's watchdog container, for this cluster, from this image."""
    config_maps, secrets = rook_gives(ceph)
    port = unused_port()
    pod = Pod(
        KUBERNETES / manifest,
        image,
        workdir,
        config_maps=config_maps,
        secrets=secrets,
        where={"web__listen_address": f"127.0.0.1:{port}"},
    )
    return PodWatchdog(pod, port, **security)


@pytest.mark.releases("18", "20")
def test_the_shipped_daemonset_reads_the_map_reports_and_catches_a_zombie(ceph, image, tmp_path):
    enable_module(ceph)
    watch = daemonset_pod(ceph, image, tmp_path / "pod")
    try:
        watch.wait_states(HEALTHY, timeout=60)
        fields = Path(f"/proc/{watch.daemon.proc.pid}/status").read_text()
        assert f"Uid:\t{CEPH_UID}\t{CEPH_UID}" in fields
        assert "CapEff:\t0000000000000000" in fields
        assert "CapBnd:\t0000000000000000" in fields
        metrics = watch.metrics()
        assert metrics["osd_watchdog_monitor_up"] == [({"source": "cli"}, 1.0)]
        # As the OSDs' uid, it asks their admin sockets: stuck ops can be judged.
        asked = {
            labels["ceph_daemon"]: v for labels, v in metrics["osd_watchdog_osd_ops_observable"]
        }
        assert asked == dict.fromkeys(HEALTHY, 1.0)
        watch.wait_sample("osd_watchdog_mgr_report_up", ({}, 1.0), timeout=30)
        rows = json.loads(ceph.ceph("osd-watchdog", "status", "-f", "json"))
        assert {r["osd"]: r["state"] for r in rows} == HEALTHY
        heartbeats_before = time.monotonic()
        mute_public(ceph, "osd.1")
        line = watch.daemon.wait_for_log("osd.1: suspect -> zombie", timeout=30,
                                         after=heartbeats_before)  # fmt: skip
        assert "the OSD map still says up" in line  # judged with the map it read
        seen = wait_health(ceph, lambda h: "OSD_ACCEPT_DEAD" in h["checks"], 30, "OSD_ACCEPT_DEAD")
        (detail,) = [d["message"] for d in seen["checks"]["OSD_ACCEPT_DEAD"]["detail"]]
        assert detail.startswith("osd.1 on ")
    finally:
        watch.stop()


@pytest.mark.releases("20")
def test_in_a_pod_of_another_uid_every_osd_is_unobservable_and_says_why(ceph, image, tmp_path):
    # The DaemonSet's runAsUser must be the OSDs' uid: with any other, nothing is judged.
    watch = daemonset_pod(ceph, image, tmp_path / "pod", runAsUser=65534, runAsGroup=65534)
    try:
        watch.wait_states(dict.fromkeys(HEALTHY, "unobservable"), timeout=60)
        line = watch.daemon.wait_for_log("osd.1: starting -> unobservable")
        assert f"access denied reading /proc/{ceph.pid('osd.1')}/fd (it runs as uid 167)" in line
    finally:
        watch.stop()
