"""The messenger settings operators change: msgr2 secure mode everywhere, and IPv6 only.

Secure mode encrypts a session after the banner exchange, so the banner the watchdog reads
is the same; IPv6 changes every address the watchdog parses (map, sock_diag, probes). Each
case runs a real cluster configured that way and checks the watchdog end to end: all healthy,
then one OSD's public accept path muted is a zombie while Ceph keeps it up.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import cluster_release, throwaway_cluster
from tests.e2e.faults import unmute_listeners
from tests.e2e.test_real_ceph import HEALTHY, map_says_up, mute_public

pytestmark = pytest.mark.integration

SECURE = {
    f"ms {who}{kind} mode": "secure"
    for who in ("", "mon ")
    for kind in ("cluster", "service", "client")
}


@pytest.fixture
def cluster_with(request):
    """A cluster built with the keyword arguments the test parametrizes it with."""
    options = dict(request.param)
    with throwaway_cluster(release=cluster_release(options.pop("release")), **options) as c:
        yield c


@pytest.mark.parametrize(
    "cluster_with",
    [
        pytest.param({"extra_conf": SECURE, "release": number}, id=f"msgr2-secure-ceph{number}")
        for number in ("16", "18", "20")
    ]
    + [
        pytest.param(
            {"address": "::1", "network": "::1/128", "release": number},
            id=f"ipv6-only-ceph{number}",
        )
        for number in ("16", "18", "20")
    ],
    indirect=True,
)
def test_the_watchdog_sees_healthy_osds_and_a_zombie(cluster_with, watch_factory):
    ceph = cluster_with
    watch = watch_factory(ceph, source="cli")
    watch.wait_states(HEALTHY)
    addresses = {
        labels["address"]
        for labels, value in watch.metrics()["osd_watchdog_probe_outcome"]
        if value == 1.0 and labels["outcome"] == "ok"
    }
    assert len(addresses) == 3 * 8  # every listener of every OSD answers with its banner
    if ":" in ceph.address:
        assert all(a.split(":", 1)[1].startswith("[::1]:") for a in addresses), addresses
    roles = {labels["role"] for labels, _ in watch.metrics()["osd_watchdog_probe_outcome"]}
    assert roles == {"public", "cluster", "hb_front", "hb_back"}  # from the map

    injected = time.monotonic()
    pid, muted = mute_public(ceph, "osd.1")
    line = watch.daemon.wait_for_log("osd.1: suspect -> zombie", timeout=15, after=injected)
    assert "the OSD map still says up" in line
    assert map_says_up(ceph, "osd.1")
    unmute_listeners(pid, muted)
    watch.wait_states(HEALTHY, timeout=30)
