"""Rows of the fault matrix (docs/fault-matrix.md) not covered where their stage is tested.

Each test starts the fault for real (an fd limit, processes that vanish, a slow `ceph`,
hostile listeners, thousands of loopback listeners) and checks the watchdog's answer: it keeps
working, and it blames nothing it has not proven.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import STATE_DIR, fast_config
from tests.probes.test_tcp import probe_banner
from tests.process import Daemon, run_cli, unused_port, write_config
from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.discover.mapwatch import MapWatcher
from watchdog.export import SnapshotMetrics
from watchdog.exposition import render
from watchdog.model import Endpoint, Outcome
from watchdog.monitor import CliClient
from watchdog.sim.farm import Farm

ROOT = Path(__file__).resolve().parents[1]

# Runs in a child: a watchdog that may act (dry_run off, the exec step on every bad state)
# watches the simulated OSDs, then its own fd table is filled to the limit.
AT_OWN_FD_LIMIT = """
import json, os, resource, sys, time
from watchdog.config import parse_config
from watchdog.daemon import Watchdog
cluster, marker, state_dir = sys.argv[1:4]
config = parse_config({
    "loop": {"interval_seconds": 0.25, "probe_timeout_seconds": 0.5},
    "discovery": {"clusters": [cluster]},
    "cluster": {"source": "none"},
    "act": {"state_dir": state_dir, "dry_run": False, "canary": False, "steps": ["exec"],
            "exec_command": ["touch", marker], "on_states": ["zombie", "suspect", "down"],
            "cooldown_seconds": 0},
    "assess": {"startup_grace_seconds": 0},
})
watchdog = Watchdog(config, acting=True)
def states():
    snapshot = watchdog.cycle()
    time.sleep(0.25)
    return {r.observation.target.daemon: r.status.state.value for r in snapshot.osds}
def until_healthy():  # bounded: 20 cycles at most
    for _ in range(20):
        seen = states()
        if len(seen) == 3 and set(seen.values()) == {"healthy"}:
            break
    return seen
before = until_healthy()
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
starved = [states() for _ in range(6)]
causes = {r.status.cause for r in watchdog.latest().osds}
for fd in held:
    os.close(fd)
after = until_healthy()
print(json.dumps({"before": before, "starved": starved, "after": after, "causes": sorted(causes),
                  "actions": {"/".join(k): v for k, v in watchdog.latest().actions_total.items()}}))
"""


@pytest.mark.integration
def test_at_its_own_fd_limit_the_watchdog_blames_no_osd_and_takes_no_action(sim, tmp_path):
    marker = tmp_path / "acted"
    out = subprocess.run(
        [sys.executable, "-c", AT_OWN_FD_LIMIT, sim.cluster, str(marker), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout)
    healthy = {"osd.0": "healthy", "osd.1": "healthy", "osd.2": "healthy"}
    assert result["before"] == healthy
    # Starved, it cannot look: first no evidence (state kept), then unobservable. Never down,
    # never zombie, and nothing run.
    for states in result["starved"]:
        assert set(states.values()) <= {"healthy", "unobservable"}, states
    assert result["starved"][-1] == dict.fromkeys(healthy, "unobservable")
    (cause,) = result["causes"]
    assert cause.startswith("watchdog: local discovery failed: [Errno 24]")
    assert result["actions"] == {}
    assert not marker.exists()
    # With its fds back, it sees the OSDs healthy again.
    assert result["after"] == healthy


def test_osd_processes_vanishing_mid_read_are_down_or_starting_never_blamed(tmp_path):
    """Processes named ceph-osd that live ~30 ms: /proc entries vanish between and inside reads."""
    link = tmp_path / "ceph-osd"
    link.symlink_to(os.path.realpath(sys.executable))
    cluster = f"churn{os.getpid()}"
    watchdog = Watchdog(fast_config(cluster, startup_grace_seconds=0), acting=False)
    running: list[subprocess.Popen[bytes]] = []
    states: set[str] = set()
    spawned, deadline = 0, time.monotonic() + 4
    try:
        while time.monotonic() < deadline and spawned < 200:
            running = [p for p in running if p.poll() is None]
            while len(running) < 6 and spawned < 200:
                argv = [str(link), "-c", "import time; time.sleep(0.03)", "-i", str(spawned % 4)]
                running.append(subprocess.Popen([*argv, "--cluster", cluster]))
                spawned += 1
            snapshot = watchdog.cycle()  # must not raise, whatever vanished under it
            states |= {r.status.state.value for r in snapshot.osds}
    finally:
        for proc in running:
            proc.wait(timeout=10)
    assert spawned >= 50
    assert "down" in states  # processes were seen, then seen gone
    assert states <= {"starting", "down", "unobservable"}


def test_a_slow_monitor_is_a_failed_refresh_within_the_timeout(tmp_path):
    fake = tmp_path / "ceph"
    pid_file = tmp_path / "pid"
    fake.write_text(
        f"#!{sys.executable}\nimport os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    fake.chmod(0o755)
    config = parse_config(
        {"cluster": {"source": "cli", "ceph_command": str(fake), "timeout_seconds": 1}}
    ).cluster
    status = MapWatcher(CliClient(config), config).refresh()
    assert status.last_ok is False
    assert status.cluster_map is None
    assert status.last_error == "ceph osd dump: no answer within 1s"
    # The sleeper was ended, not left behind holding a slot.
    assert not Path(f"/proc/{pid_file.read_text()}").exists()


def local(port: int) -> Endpoint:
    return Endpoint("127.0.0.1", port)


def test_a_megabyte_of_junk_instead_of_a_banner_is_a_bad_banner_read_no_further(server):
    listener = server(lambda conn: conn.sendall(b"\x00" * 1_000_000))
    result = probe_banner(local(listener.port), timeout=2)
    assert result.outcome is Outcome.BAD_BANNER
    assert len(result.detail) < 100


def test_a_half_closed_connection_before_the_banner_is_a_reset(server):
    listener = server(lambda conn: conn.shutdown(socket.SHUT_WR))
    result = probe_banner(local(listener.port), timeout=2)
    assert result.outcome is Outcome.RESET
    assert result.detail == "closed before banner"


def test_accept_then_silence_is_no_banner(server):
    listener = server(lambda _conn: None)  # accepted and held open, never written to
    result = probe_banner(local(listener.port), timeout=0.3)
    assert result.outcome is Outcome.NO_BANNER
    assert result.detail == "connected, no banner"


def _static(ports: list[int], per_osd: int = 8) -> dict[str, object]:
    targets = [
        {
            "daemon": f"osd.{i // per_osd}",
            "endpoints": [{"address": f"v2:127.0.0.1:{p}"} for p in ports[i : i + per_osd]],
        }
        for i in range(0, len(ports), per_osd)
    ]
    return {
        "loop": {"interval_seconds": 1.0, "probe_timeout_seconds": 1.0},
        "discovery": {"local": False, "static_targets": targets},
        "cluster": {"source": "none"},
        "act": {"state_dir": str(STATE_DIR)},
        "assess": {"startup_grace_seconds": 0},
    }


@pytest.mark.integration
def test_two_thousand_endpoints_with_a_tenth_black_holes_take_one_cycle_and_blame_only_those():
    farm = Farm(2000, holes=200)
    try:
        watchdog = Watchdog(parse_config(_static(farm.all_ports)), acting=False)
        snapshots = [watchdog.cycle() for _ in range(3)]
    finally:
        farm.close()
    last = snapshots[-1]
    outcomes = [b.outcome for r in last.osds for b in r.observation.banners]
    assert len(outcomes) == 2000
    assert outcomes.count(Outcome.OK) == 1800
    assert outcomes.count(Outcome.NO_BANNER) == 200
    # The holes are the first 25 OSDs (8 endpoints each): only those are blamed.
    states = {r.observation.target.daemon: r.status.state.value for r in last.osds}
    assert {d for d, s in states.items() if s != "healthy"} == {f"osd.{i}" for i in range(25)}
    # Every endpoint got a real answer inside the cycle deadline (interval + 2 timeouts):
    # none is "not probed" (local_error), so the holes cost a timeout each in parallel.
    assert all(b.outcome is not Outcome.LOCAL_ERROR for s in snapshots for r in s.osds
               for b in r.observation.banners)  # fmt: skip
    exposition = render(SnapshotMetrics().families(watchdog.latest()))
    ok_series = re.findall(
        rb'osd_watchdog_probe_outcome\{[^}]*outcome="ok"[^}]*\} 1\.0', exposition
    )
    assert len(ok_series) == 1800


def test_a_config_with_no_targets_runs_and_reports_nothing_to_watch(tmp_path):
    config = parse_config(
        {
            "discovery": {"local": False},
            "cluster": {"source": "none"},
            "act": {"state_dir": str(tmp_path)},
        }
    )
    watchdog = Watchdog(config, acting=False)
    snapshots = [watchdog.cycle() for _ in range(2)]
    assert [s.osds for s in snapshots] == [(), ()]
    config_file = tmp_path / "none.toml"
    config_file.write_text('[discovery]\nlocal = false\n[cluster]\nsource = "none"\n')
    check = run_cli("check", "--config", str(config_file))
    # Nagios UNKNOWN: a host expected to carry OSDs where none are found needs a look.
    assert check.returncode == 3
    assert "no OSDs found on this host" in check.stdout


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
    pytest.fail(f"{name} not exported")


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


@pytest.mark.integration
def test_a_flood_of_scrapes_neither_stalls_the_loop_nor_grows_memory(sim, tmp_path):
    port = unused_port()
    config = tmp_path / "watchdog.toml"
    write_config(config, sim.cluster, port)
    daemon = Daemon(config)
    try:
        daemon.wait_for_log("osd.2: starting -> healthy")

        def scrape(_: int) -> int:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=20) as response:
                response.read()
                return int(response.status)

        rss = []
        for _ in range(3):  # three floods of 400 scrapes, 32 at a time
            loops_before = _metric(port, "osd_watchdog_loops_total")
            with ThreadPoolExecutor(32) as pool:
                codes = list(pool.map(scrape, range(400)))
            assert codes == [200] * 400
            rss.append(_rss_kib(daemon.proc.pid))
            # The loop kept cycling during the flood, and never saw itself stall.
            assert _metric(port, "osd_watchdog_loops_total") > loops_before
        assert _metric(port, "osd_watchdog_self_stalls_total") == 0
        # After the first flood has warmed the allocator, more floods add (almost) nothing.
        assert rss[2] - rss[0] < 4096, rss
        assert [line for line in daemon.lines if "healthy ->" in line] == []
    finally:
        assert daemon.stop() == 0
