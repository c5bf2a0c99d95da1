"""Rook's default pod networking with real Ceph: one OSD's sockets in a network namespace of
its own (a pod's), the watchdog on the host.

The namespace is joined to the host by a veth (tests/e2e/netns.py): 10.77.1.2 inside, 10.77.1.1
on the host, where the monitor, the mgr and the other two OSDs bind. osd.1 starts through
``nsenter --net``, so it binds 10.77.1.2 and talks to its peers over the veth, as an OSD pod
talks to the others over the pod network. The watchdog has to read osd.1's listeners and
heartbeat connections inside that namespace (the host's sock_diag does not see them) and
probe its public addresses from the host side, as a client reaches them. The last test runs
the shipped pod-network DaemonSet's pod from the image the shipped recipe makes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import cluster_release, throwaway_cluster
from tests.e2e.faults import unmute_listeners
from tests.e2e.netns import Vantages
from tests.e2e.test_containers import daemonset_pod, image_of
from tests.e2e.test_real_ceph import HEALTHY, mute_public

pytestmark = pytest.mark.integration

POD = "10.77.1.2"  # osd.1's address, inside namespace 0
CAP_BITS = {
    "DAC_OVERRIDE": 1,
    "DAC_READ_SEARCH": 2,
    "SYS_PTRACE": 19,
    "SYS_ADMIN": 21,
}  # capability.h


def releases(*numbers: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "pod_cluster", numbers, indirect=True, ids=[f"ceph{n}" for n in numbers]
    )


@pytest.fixture
def pod_cluster(request: pytest.FixtureRequest):
    """A cluster of one release with osd.1 in a network namespace of its own."""
    which = cluster_release(request.param)
    require_tool("ip")
    require_tool("nsenter")
    with Vantages(1) as spaces:
        pod = ["nsenter", f"--net=/run/netns/{spaces.names[0]}", "--"]
        with throwaway_cluster(
            address=spaces.cluster_address,
            network=spaces.cluster_network,
            release=which,
            prefixes={"osd.1": pod},
        ) as cluster:
            yield cluster


def endpoints(samples, address: str, outcome: str | None = None) -> set[tuple[str, str, str]]:
    """(role, protocol, address) of osd.1's series at ``address``, with that outcome if given."""
    return {
        (labels["role"], labels["protocol"], labels["address"])
        for labels, value in samples
        if labels["ceph_daemon"] == "osd.1"
        and labels["address"].split(":")[1] == address  # "v2:10.77.1.2:6800"
        and (outcome is None or (labels["outcome"] == outcome and value == 1))
    }


@releases("16", "18", "20")
def test_an_osd_in_a_pod_network_namespace_is_observed_and_its_zombie_caught(
    pod_cluster, watch_factory, capsys
):
    ceph = pod_cluster
    pid = ceph.pid("osd.1")
    assert Path(f"/proc/{pid}/ns/net").readlink() != Path("/proc/self/ns/net").readlink()
    dump = ceph.ceph_json("osd", "dump")
    (entry,) = [o for o in dump["osds"] if o["osd"] == 1]
    assert {a["addr"].rsplit(":", 1)[0] for a in entry["public_addrs"]["addrvec"]} == {POD}

    watch = watch_factory(ceph)
    watch.wait_states(HEALTHY)
    metrics = watch.metrics()
    # Every listener of the pod's OSD was found inside its namespace (v1 and v2 of public,
    # cluster, heartbeat back and front), and its public ones answered the host's probes.
    found = endpoints(metrics["osd_watchdog_listen_queue_length"], POD)
    assert {(role, protocol) for role, protocol, _ in found} == {
        (role, protocol)
        for role in ("public", "cluster", "hb_back", "hb_front")
        for protocol in ("v1", "v2")
    }, found
    probed = endpoints(metrics["osd_watchdog_probe_outcome"], POD, "ok")
    assert {(role, protocol) for role, protocol, _ in probed} >= {
        ("public", "v1"),
        ("public", "v2"),
    }, probed

    injected = time.monotonic()
    _, epolls = mute_public(ceph, "osd.1")
    try:
        line, at = watch.daemon.wait_for_line("osd.1: suspect -> zombie", 15, injected)
        # Its heartbeat peers were counted inside the pod's namespace: that is the evidence.
        assert "heartbeats still flow" in line
        watch.wait_states({**HEALTHY, "osd.1": "zombie"}, timeout=5)
        heartbeats = {
            labels["ceph_daemon"]: value
            for labels, value in watch.metrics()["osd_watchdog_osd_heartbeat_connections"]
        }
        assert heartbeats["osd.1"] > 0
        with capsys.disabled():
            print(  # noqa: T201 - the measurement goes in the README
                f"\npod network, Ceph {ceph.release.number} ({ceph.release.deployment}): "
                f"zombie {at - injected:.2f}s after the fault"
            )
    finally:
        unmute_listeners(pid, epolls)
    watch.wait_states(HEALTHY, timeout=30)


@releases("16")  # one release shows it: entering a namespace does not depend on the release
def test_without_cap_sys_admin_the_pod_osd_is_unobservable_saying_why(pod_cluster, watch_factory):
    require_tool("setpriv")
    # Root with every capability but CAP_SYS_ADMIN: its /proc is readable, setns(2) is not.
    no_admin = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]
    watch = watch_factory(pod_cluster, prefix=no_admin)
    watch.wait_states({**HEALTHY, "osd.1": "unobservable"})
    line = watch.daemon.wait_for_log("osd.1: starting -> unobservable")
    assert "another network namespace" in line
    assert "CAP_SYS_ADMIN" in line


@releases("20")
def test_the_shipped_pod_network_daemonset_catches_a_zombie_in_a_pod(pod_cluster, release_files,
                                                                     tmp_path):  # fmt: skip
    # deploy/kubernetes/daemonset-pod-network.yaml's pod, from the image the shipped recipe
    # makes: root with exactly the manifest's capabilities, the host's PID namespace.
    with image_of(pod_cluster.release.number, release_files) as image:
        watch = daemonset_pod(pod_cluster, image, tmp_path / "pod", "daemonset-pod-network.yaml")
        try:
            watch.wait_states(HEALTHY, timeout=60)
            status = Path(f"/proc/{watch.daemon.proc.pid}/status").read_text()
            caps = watch.pod.container()["securityContext"]["capabilities"]["add"]
            assert f"CapEff:\t{sum(1 << CAP_BITS[c] for c in caps):016x}" in status, status
            asked = watch.metrics()["osd_watchdog_osd_ops_observable"]
            assert {labels["ceph_daemon"]: v for labels, v in asked} == dict.fromkeys(HEALTHY, 1.0)
            injected = time.monotonic()
            _, epolls = mute_public(pod_cluster, "osd.1")
            try:
                line = watch.daemon.wait_for_log("osd.1: suspect -> zombie", timeout=30,
                                                 after=injected)  # fmt: skip
                assert "heartbeats still flow" in line
            finally:
                unmute_listeners(pod_cluster.pid("osd.1"), epolls)
        finally:
            watch.stop()
