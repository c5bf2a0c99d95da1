"""End to end on a real Ceph 16.2 cluster: healthy under IO, a real zombie that Ceph does not
notice, a stop and start, fd exhaustion, and a monitor that does not answer."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ClientIO
from tests.e2e.faults import listener_fds, mute_listeners, set_nofile_soft, unmute_listeners
from tests.process import unused_port
from watchdog.config import parse_config
from watchdog.monitor import RestfulClient

pytestmark = pytest.mark.integration

HEALTHY = {"osd.0": "healthy", "osd.1": "healthy", "osd.2": "healthy"}
# Pacific bare on the host; Reef and Tentacle in cephadm-style containers (tests/e2e/releases.py).
EVERY_RELEASE = pytest.mark.releases("16", "18", "20")


def public_ports(cluster, daemon: str) -> set[int]:
    dump = cluster.ceph_json("osd", "dump")
    entry = next(o for o in dump["osds"] if f"osd.{o['osd']}" == daemon)
    return {int(a["addr"].rsplit(":", 1)[1]) for a in entry["public_addrs"]["addrvec"]}


def mute_public(cluster, daemon: str) -> tuple[int, dict[int, int]]:
    """Kill only the public accept path of a running OSD (see tests/e2e/faults.py)."""
    pid = cluster.pid(daemon)
    fds = listener_fds(pid, public_ports(cluster, daemon))
    assert len(fds) == 2, fds  # v2 and v1
    return pid, mute_listeners(pid, fds)


def says_nothing_about_osds(health: dict) -> bool:
    """Ceph raises no check about an OSD (down, flags, slow ops) and names none. Not "the status
    is HEALTH_OK": a fresh cluster may warn about its own pools meanwhile."""
    about_osds = [name for name in health["checks"] if name.startswith(("OSD_", "SLOW_OPS"))]
    named = [
        d["message"]
        for check in health["checks"].values()
        for d in check.get("detail", [])
        if "osd." in d["message"]
    ]
    return not about_osds and not named


def map_says_up(cluster, daemon: str) -> bool:
    dump = cluster.ceph_json("osd", "dump")
    return any(f"osd.{o['osd']}" == daemon and o["up"] for o in dump["osds"])


def serve_restful(ceph) -> tuple[str, Path]:
    """The mgr restful module on a port of our own, and a key for it: (url, key file)."""
    # A port of our own, so a mgr elsewhere on this host cannot be the one that answers.
    ceph.wait_mgr_module("restful")
    ceph.ceph("config", "set", "mgr", "mgr/restful/server_addr", "127.0.0.1")
    ceph.ceph("config", "set", "mgr", "mgr/restful/server_port", str(unused_port()))
    ceph.ceph("restful", "create-self-signed-cert")
    key = ceph.ceph("restful", "create-key", "watchdog").strip()
    key_file = ceph.root / "restful.key"
    key_file.write_text(key)
    return ceph.wait_for_restful(), key_file


@EVERY_RELEASE
def test_a_healthy_cluster_under_light_io_raises_nothing_for_a_minute(ceph, watch_factory):
    ceph.ceph("osd", "pool", "create", "io", "16")
    ceph.wait(lambda: "active+clean" in ceph.ceph("pg", "stat"), 60, "PGs active+clean")
    if ceph.release.contained:
        # restful is gone from Tentacle and cannot load from Debian's Reef: the CLI there.
        watch = watch_factory(ceph, source="cli")
    else:
        # The mgr restful API is the map source here: the other tests use librados and the CLI.
        url, key_file = serve_restful(ceph)
        # The self-signed certificate names no IP address: verification cannot pass on loopback.
        watch = watch_factory(
            ceph, source="restful", restful_url=url, restful_user="watchdog",
            restful_key_file=str(key_file), restful_verify_tls=False,
        )  # fmt: skip
    watch.wait_states(HEALTHY)
    io = ClientIO(ceph, "io")
    io.start()
    try:
        threading.Event().wait(62)  # the soak itself: a minute of IO under observation
    finally:
        io.stop()
    assert io.ops > 500
    assert io.errors == []
    assert watch.states() == HEALTHY
    for daemon in HEALTHY:
        assert watch.transitions(daemon) == ["(new) -> starting", "starting -> healthy"]
    metrics = watch.metrics()
    assert metrics["osd_watchdog_monitor_up"] == [({"source": watch.view["source"]}, 1.0)]
    assert {labels["ceph_daemon"]: v for labels, v in metrics["osd_watchdog_map_osd_up"]} == {
        "osd.0": 1.0,
        "osd.1": 1.0,
        "osd.2": 1.0,
    }


def test_the_fence_commands_go_through_the_restful_api_too(ceph):
    # The remediation's restful path: noup set and lifted through the mgr.
    url, key_file = serve_restful(ceph)
    restful = RestfulClient(
        parse_config(
            {
                "cluster": {
                    "source": "restful",
                    "restful_url": url,
                    "restful_user": "watchdog",
                    "restful_key_file": str(key_file),
                    "restful_verify_tls": False,
                }
            }
        ).cluster
    )
    restful.send("osd add-noup", ["osd.2"], timeout=10)
    assert (
        "noup" in next(o for o in ceph.ceph_json("osd", "dump")["osds"] if o["osd"] == 2)["state"]
    )
    restful.send("osd rm-noup", ["osd.2"], timeout=10)
    assert (
        "noup"
        not in next(o for o in ceph.ceph_json("osd", "dump")["osds"] if o["osd"] == 2)["state"]
    )
    restful.close()


@EVERY_RELEASE
def test_a_dead_public_accept_path_is_a_zombie_that_ceph_keeps_up(ceph, watch_factory):
    watch = watch_factory(ceph, source="rados")
    watch.wait_states(HEALTHY)
    injected = time.monotonic()
    mute_public(ceph, "osd.1")
    line, _ = watch.daemon.wait_for_line("osd.1: suspect -> zombie", timeout=10, after=injected)
    assert "the process lives and its heartbeats still flow; the OSD map still says up" in line
    # The transition is logged during the cycle, the snapshot published at its end: poll.
    watch.wait_states({"osd.0": "healthy", "osd.1": "zombie", "osd.2": "healthy"}, timeout=5)
    # Ceph itself did not notice: the map still shows it up, and the public port is still open.
    assert map_says_up(ceph, "osd.1")
    assert says_nothing_about_osds(json.loads(ceph.ceph("health", "detail", "-f", "json")))
    with socket.create_connection(("127.0.0.1", min(public_ports(ceph, "osd.1"))), timeout=2):
        pass  # the kernel still completes the handshake; nobody accepts it
    heartbeats = {
        labels["ceph_daemon"]: value
        for labels, value in watch.metrics()["osd_watchdog_osd_heartbeat_connections"]
    }
    assert heartbeats["osd.1"] > 0


@EVERY_RELEASE
def test_detection_latency_over_repeated_injections(ceph, watch_factory, capsys):
    watch = watch_factory(ceph, source="rados")
    watch.wait_states(HEALTHY)
    latencies = []
    for round_ in range(6):
        daemon = f"osd.{round_ % 3}"
        injected = time.monotonic()
        pid, epolls = mute_public(ceph, daemon)
        _, detected = watch.daemon.wait_for_line(
            f"{daemon}: suspect -> zombie", timeout=10, after=injected
        )
        latencies.append(detected - injected)
        unmute_listeners(pid, epolls)
        watch.daemon.wait_for_line(f"{daemon}: zombie -> healthy", timeout=15, after=detected)
    assert map_says_up(ceph, "osd.0")
    with capsys.disabled():
        print(  # noqa: T201 - the measurement is the point: it goes in the README
            f"\ndetection latency on real Ceph {ceph.release.number} ({ceph.release.deployment}) "
            f"over {len(latencies)} injections: "
            f"median {statistics.median(latencies):.2f}s, max {max(latencies):.2f}s "
            f"({', '.join(f'{x:.2f}' for x in latencies)})"
        )


@EVERY_RELEASE
def test_a_stopped_and_restarted_osd_is_down_then_starting_then_healthy(ceph, watch_factory):
    # Through the CLI, with the least-privileged key the README documents: read the maps only.
    keyring = ceph.client_key("client.osd-watchdog", "mon", "allow r")
    watch = watch_factory(
        ceph, source="cli", client_name="client.osd-watchdog", keyring=str(keyring)
    )
    watch.wait_states(HEALTHY)
    stopped = time.monotonic()
    assert ceph.stop_daemon("osd.2") == 0
    line = watch.daemon.wait_for_log("osd.2: healthy -> down", timeout=15, after=stopped)
    assert "process exited" in line
    ceph.start_daemon("osd.2")
    watch.daemon.wait_for_log("osd.2: down -> starting", timeout=15, after=stopped)
    watch.daemon.wait_for_log("osd.2: starting -> healthy", timeout=30, after=stopped)
    assert watch.transitions("osd.2") == [
        "(new) -> starting",
        "starting -> healthy",
        "healthy -> down",
        "down -> starting",
        "starting -> healthy",
    ]
    metrics = watch.metrics()
    assert ({"ceph_daemon": "osd.2"}, 1.0) in metrics["osd_watchdog_osd_restarts_total"]
    assert metrics["osd_watchdog_monitor_up"] == [({"source": "cli"}, 1.0)]


@EVERY_RELEASE
def test_fd_exhaustion_raises_fd_pressure_then_ceph_aborts_and_it_is_down(ceph, watch_factory):
    watch = watch_factory(ceph, source="rados")
    watch.wait_states(HEALTHY)
    pid = ceph.pid("osd.0")
    open_now = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    # Lower only the soft limit (root here cannot raise a hard limit again): room for 40 more.
    set_nofile_soft(pid, open_now + 40)
    port = min(public_ports(ceph, "osd.0"))
    held: list[socket.socket] = []
    started = time.monotonic()
    try:
        # Each accepted client connection costs the OSD one fd: twenty a second, at most 200,
        # a steady leak that reaches the limit before Ceph drops idle connections (~10 s).
        while ceph.daemons["osd.0"].proc.poll() is None and len(held) < 200:
            with contextlib.suppress(OSError):
                held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            threading.Event().wait(0.05)
        code = ceph.exit_status("osd.0", timeout=30)
    finally:
        for sock in held:
            sock.close()
    assert code == -signal.SIGABRT  # ceph_abort() after ms_max_accept_failures EMFILEs
    _, pressure = watch.daemon.wait_for_line("osd.0: healthy -> fd_pressure", after=started)
    line, down = watch.daemon.wait_for_line(" -> down: process exited", timeout=15, after=started)
    assert "osd.0: " in line
    assert pressure < down
    assert "likely fd exhaustion" in line
    # A supervisor restarts it; the watchdog counts the restart, so a crash loop shows.
    ceph.start_daemon("osd.0")
    watch.daemon.wait_for_log("osd.0: down -> starting", timeout=15, after=down)
    watch.wait_sample("osd_watchdog_osd_restarts_total", ({"ceph_daemon": "osd.0"}, 1.0))


@EVERY_RELEASE
def test_with_the_monitor_unreachable_a_dead_accept_path_is_still_caught(ceph, watch_factory):
    watch = watch_factory(ceph, source="cli", max_age_seconds=3.0)
    watch.wait_states(HEALTHY)
    mon = ceph.pid("mon.a")
    ports = public_ports(ceph, "osd.2")  # asked while the monitor still answers
    os.kill(mon, signal.SIGSTOP)  # connections to it hang: the worst kind of unreachable
    try:
        watch.daemon.wait_for_log("cannot read the OSD map", timeout=20)
        injected = time.monotonic()
        pid = ceph.pid("osd.2")
        mute_listeners(pid, listener_fds(pid, ports))
        line = watch.daemon.wait_for_log("osd.2: suspect -> zombie", timeout=15, after=injected)
        assert "(no fresh OSD map: judged from local evidence)" in line
        assert watch.metrics()["osd_watchdog_monitor_up"] == [({"source": "cli"}, 0.0)]
    finally:
        os.kill(mon, signal.SIGCONT)


@EVERY_RELEASE
def test_an_osd_the_map_calls_up_but_that_does_not_run_here_is_reported(ceph, watch_factory):
    # SIGKILL: no goodbye to the monitor. Peers that get "connection refused" would report it
    # at once; without that fast path the map says up until the heartbeat grace (~20 s).
    ceph.ceph("config", "set", "osd", "osd_fast_fail_on_connection_refused", "false")
    assert ceph.stop_daemon("osd.2", signal.SIGKILL) == -signal.SIGKILL
    assert map_says_up(ceph, "osd.2")
    watch = watch_factory(ceph, source="rados")
    line = watch.daemon.wait_for_log("osd.2: (new) -> down", timeout=15)
    assert "no ceph-osd process on this host; the OSD map still says up" in line
    watch.wait_sample("osd_watchdog_osd_state", ({"ceph_daemon": "osd.2", "state": "down"}, 1.0))
