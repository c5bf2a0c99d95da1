"""The daemon as a real process: serves, reloads on SIGHUP, keeps a good config, stops cleanly."""

import os
import signal
import socket
import threading
import time
import urllib.request

import pytest

from tests.conftest import cycle_until, fast_config, state_of, wait_for
from tests.process import Daemon, run_cli, unused_port, write_config
from watchdog.daemon import Watchdog

pytestmark = pytest.mark.integration


def test_the_daemon_serves_reloads_and_stops_cleanly(sim, tmp_path):
    port = unused_port()
    config = tmp_path / "watchdog.toml"
    write_config(config, sim.cluster, port)
    daemon = Daemon(config)
    try:
        daemon.wait_for_log("osd.2: starting -> healthy")

        # Logged during the cycle, published at its end: give the snapshot a few cycles.
        def healthy_in_metrics() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
                return b'ceph_daemon="osd.2",state="healthy"} 1.0' in reply.read()

        wait_for(healthy_in_metrics, 5, "osd.2 healthy in /metrics", every=0.25)
        config.write_text("[loop]\nbogus = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        line = daemon.wait_for_log("reload failed, keeping the previous configuration")
        assert "loop.bogus: unknown key" in "".join(daemon.lines)
        write_config(config, sim.cluster, port, interval=0.5)
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for_log(f"configuration reloaded from {config}")
        sim.command(1, "stall")
        line = daemon.wait_for_log("osd.1: suspect -> zombie")
        assert "the process lives and its heartbeats still flow" in line
        # Simulated OSDs have no monitors: the guard that checks the nodown flags refuses.
        daemon.wait_for_log(
            "osd.1: not acting (no_map: cannot read the OSD map from the monitors now"
        )
    finally:
        code = daemon.stop()
    assert code == 0
    assert "INFO watchdog: stopped" in "".join(daemon.lines)


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "watchdog.toml"
        write_config(config, "none", port)
        out = run_cli("run", "--config", str(config))
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


def test_sigint_stops_the_daemon_too(tmp_path):
    config = tmp_path / "watchdog.toml"
    write_config(config, "none", unused_port())
    daemon = Daemon(config)
    daemon.wait_for_log("serving on http://")
    os.kill(daemon.proc.pid, signal.SIGINT)
    assert daemon.stop() == 0


class FrozenBannerProbe:
    """Stands in for a freeze of the whole process (SIGSTOP) during probing: the real probe
    runs, then the caller is held past the cycle deadline before it gets the results."""

    name = "banner"

    def __init__(self, real, hold: float) -> None:
        self.real, self.hold = real, hold

    def run(self, targets, *, timeout):
        results = self.real.run(targets, timeout=timeout)
        threading.Event().wait(self.hold)
        return results


def test_a_frozen_watchdog_suspends_judgment_instead_of_blaming_osds(sim, caplog):
    watchdog = Watchdog(fast_config(sim.cluster), acting=False)
    cycle_until(watchdog, lambda s: all(r.status.state.value == "healthy" for r in s.osds))
    sim.command(1, "stall")  # a real failure arrives while we are frozen
    deadline = watchdog.config.loop.cycle_deadline
    real = watchdog.probers.banner
    watchdog.probers.banner = FrozenBannerProbe(real, deadline + 1.0)  # type: ignore[assignment]
    latest = watchdog.latest()
    assert latest is not None
    before = {r.observation.target.daemon: r.status.state for r in latest.osds}
    snapshot = watchdog.cycle()
    assert {r.observation.target.daemon: r.status.state for r in snapshot.osds} == before
    assert snapshot.self_stalls == 1
    assert "suspending judgment for this cycle" in caplog.text
    watchdog.probers.banner = real  # thawed: the stalled OSD is judged as before
    cycle_until(watchdog, lambda s: state_of(s, "osd.1") == "zombie")


def loops_total(port: int) -> float:
    """Cycles the daemon has finished, from its /metrics."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("osd_watchdog_loops_total "):
                return float(line.split()[1])
    raise AssertionError("no osd_watchdog_loops_total in /metrics")


def test_sigstop_longer_than_the_interval_causes_no_false_transition(sim, tmp_path):
    config = tmp_path / "watchdog.toml"
    port = unused_port()
    write_config(config, sim.cluster, port)
    daemon = Daemon(config)
    try:
        for osd in ("osd.0", "osd.1", "osd.2"):
            daemon.wait_for_log(f"{osd}: starting -> healthy")
        for _ in range(3):
            daemon.proc.send_signal(signal.SIGSTOP)
            threading.Event().wait(2.0)  # eight intervals frozen: the fault itself
            daemon.proc.send_signal(signal.SIGCONT)
            # Thawed, it must go on cycling (and judge those cycles): wait for two more.
            thawed = loops_total(port)
            deadline = time.monotonic() + 10
            while loops_total(port) < thawed + 2 and time.monotonic() < deadline:
                threading.Event().wait(0.1)  # bounded by the deadline
            assert loops_total(port) >= thawed + 2, "no cycle ran after SIGCONT"
    finally:
        code = daemon.stop()
    assert code == 0
    moves = [line for line in daemon.lines if " -> " in line and "healthy ->" in line]
    assert moves == []
