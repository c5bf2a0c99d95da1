"""Each failure mode of the simulator is seen as the right probe outcome and the right state."""

import threading

import pytest

from tests.conftest import cycle_until, fast_config, state_of
from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.model import Outcome, Role, Snapshot, State
from watchdog.sim.cluster import SimCluster


def record(seen: list[str], snapshot: Snapshot, daemon: str) -> str:
    """Keep the OSD's state of every cycle, and give it."""
    seen.append(state_of(snapshot, daemon))
    return seen[-1]


pytestmark = pytest.mark.integration


def public_outcomes(snapshot, index):
    return {
        b.outcome
        for b in snapshot.osds[index].observation.banners
        if b.endpoint.role is Role.PUBLIC
    }


def healthy_watchdog(cluster, **assess):
    watchdog = Watchdog(fast_config(cluster, **assess), acting=False)
    cycle_until(
        watchdog,
        lambda s: len(s.osds) == 3 and all(r.status.state is State.HEALTHY for r in s.osds),
    )
    return watchdog


def test_fd_exhaustion_with_the_listener_left_open_is_no_banner_then_zombie(sim):
    watchdog = healthy_watchdog(sim.cluster)
    sim.command(1, "exhaust")
    snapshot = cycle_until(watchdog, lambda s: state_of(s, "osd.1") == "zombie")
    assert public_outcomes(snapshot, 1) == {Outcome.NO_BANNER}
    assert snapshot.osds[1].observation.heartbeat_connections == 4
    assert sim.wait_event(1, "gave_up", timeout=1)["how"] == "leave_open"
    assert [state_of(snapshot, d) for d in ("osd.0", "osd.2")] == ["healthy", "healthy"]


def test_fd_exhaustion_with_the_listener_closed_is_refused_then_zombie(sim):
    watchdog = healthy_watchdog(sim.cluster)
    sim.command(1, "give_up", "close")
    sim.command(1, "exhaust")
    snapshot = cycle_until(watchdog, lambda s: state_of(s, "osd.1") == "zombie")
    assert public_outcomes(snapshot, 1) == {Outcome.REFUSED}


def test_a_stalled_accept_queue_is_no_banner_then_zombie(sim):
    watchdog = healthy_watchdog(sim.cluster)
    sim.command(1, "stall")
    snapshot = cycle_until(watchdog, lambda s: state_of(s, "osd.1") == "zombie")
    assert public_outcomes(snapshot, 1) == {Outcome.NO_BANNER}
    queues = [
        q.queue for q in snapshot.osds[1].observation.listens if q.endpoint.role is Role.PUBLIC
    ]
    assert all(q >= 1 for q in queues)


def test_an_overflowing_accept_queue_turns_no_banner_into_timeout():
    # With Ceph's backlog of 512 our own probes would take minutes to fill a stalled queue.
    with SimCluster(3, nofile=256, backlog=2) as small:
        watchdog = healthy_watchdog(small.cluster)
        small.command(1, "stall")
        snapshot = cycle_until(watchdog, lambda s: Outcome.TIMEOUT in public_outcomes(s, 1))
        assert state_of(snapshot, "osd.1") in {"suspect", "zombie"}
        queues = [q for q in snapshot.osds[1].observation.listens if q.endpoint.role is Role.PUBLIC]
        assert any(q.queue > q.backlog for q in queues)


def test_a_slow_but_alive_accept_never_changes_state():
    with SimCluster(3, nofile=256) as cluster:
        config = parse_config(
            {"loop": {"interval_seconds": 0.25}, "discovery": {"clusters": [cluster.cluster]}}
        )
        # Observing only: it must not take the host's state directory, lock or monitors.
        watchdog = Watchdog(config, acting=False)
        cycle_until(
            watchdog,
            lambda s: len(s.osds) == 3 and all(r.status.state is State.HEALTHY for r in s.osds),
        )
        latest = watchdog.latest()
        assert latest is not None
        before = {r.observation.target.daemon: dict(r.transitions) for r in latest.osds}
        cluster.command(1, "slow", "0.2")
        pause = threading.Event()
        for _ in range(12):
            snapshot = watchdog.cycle()
            pause.wait(0.25)
        after = {r.observation.target.daemon: dict(r.transitions) for r in snapshot.osds}
        assert after == before
        banner_times = [b.banner_seconds for b in snapshot.osds[1].observation.banners]
        assert all(t is not None and t >= 0.2 for t in banner_times)


def test_a_killed_osd_is_down_then_a_restart_goes_starting_then_healthy(sim):
    watchdog = healthy_watchdog(sim.cluster)
    sim.kill(2)
    snapshot = cycle_until(watchdog, lambda s: state_of(s, "osd.2") == "down")
    assert snapshot.osds[2].status.cause == "process exited"
    sim.restart(2)
    seen: list[str] = []
    cycle_until(watchdog, lambda s: record(seen, s, "osd.2") == "healthy")
    assert "starting" in seen
    assert "zombie" not in seen
    assert "suspect" not in seen
    report = watchdog.latest().osds[2]
    assert report.restarts == 1
    assert report.transitions[State.DOWN] == 1


def test_a_leak_is_fd_pressure_before_accept_fails_and_zombie_after():
    with SimCluster(3, nofile=256) as cluster:
        watchdog = healthy_watchdog(cluster.cluster)
        cluster.command(1, "leak", "40")
        seen: list[str] = []
        cycle_until(
            watchdog,
            lambda s: record(seen, s, "osd.1") == "zombie",
            max_cycles=80,
        )
        assert "fd_pressure" in seen
        assert seen.index("fd_pressure") < seen.index("zombie")
