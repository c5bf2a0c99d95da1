"""What Rook's pod networking costs the watchdog: a cycle with every OSD in a network namespace
of its own (one OSD per pod, as Rook runs them) against the same OSDs on the host.

For each foreign namespace a cycle starts a short thread that enters it with setns(2), takes
one LISTEN dump and one ESTABLISHED dump there (heartbeat peers), and ends. The baseline is
measured in the same run: the same simulated OSDs (8 listeners each) bound on the host's
loopback. Neither side has heartbeat connections: the test namespaces reach the host, not
each other (that would need forwarding on this host), and an ESTABLISHED dump of a pod's few
connections costs about what an empty one does. Needs root (network namespaces, veths).

    sudo .venv/bin/python bench/bench_netns.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import SMOKE, machine

from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.sim.cluster import SimCluster

# The namespaces come from the tests' own helper (veth pairs, 10.77.N.2 inside each).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.e2e.netns import Vantages

OSDS = 2 if SMOKE else 8  # a typical OSD node
CYCLES = 5 if SMOKE else 200


def measure(sim: SimCluster, state_dir: Path) -> tuple[float, float]:
    """(median wall, mean CPU) seconds per cycle, once every OSD is healthy."""
    config = parse_config(
        {
            "loop": {"interval_seconds": 0.25, "probe_timeout_seconds": 0.5},
            "discovery": {"clusters": [sim.cluster]},
            "cluster": {"source": "none"},
            "act": {"state_dir": str(state_dir)},
        }
    )
    watchdog = Watchdog(config, acting=False)
    for _ in range(40):  # bounded warm-up: starting -> healthy
        snapshot = watchdog.cycle()
        if all(r.status.state.value == "healthy" for r in snapshot.osds) and snapshot.osds:
            break
        time.sleep(0.25)
    else:
        sys.exit(f"the OSDs never became healthy: {[r.status for r in snapshot.osds]}")
    walls = []
    cpu_before = time.process_time()  # every thread of this process: the setns ones too
    for _ in range(CYCLES):
        started = time.perf_counter()
        watchdog.cycle()
        walls.append(time.perf_counter() - started)
    cpu = (time.process_time() - cpu_before) / CYCLES
    return statistics.median(walls), cpu


def main() -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as work:
        with SimCluster(OSDS, peered=False) as sim:
            host_wall, host_cpu = measure(sim, Path(work) / "host")
        with Vantages(OSDS) as spaces:
            pods = [(spaces.prefix(i), f"10.77.{i + 1}.2") for i in range(OSDS)]
            with SimCluster(pods=pods, peered=False) as sim:
                pod_wall, pod_cpu = measure(sim, Path(work) / "pods")
    per_namespace = (pod_cpu - host_cpu) / OSDS
    print(
        f"{OSDS} OSDs x 8 listeners, {CYCLES} cycles: on the host {host_wall * 1e3:.2f} ms/cycle "
        f"wall, {host_cpu * 1e3:.2f} ms CPU; each in its own network namespace "
        f"{pod_wall * 1e3:.2f} ms wall, {pod_cpu * 1e3:.2f} ms CPU "
        f"({per_namespace * 1e3:+.2f} ms CPU per namespace per cycle); "
        f"ratio pods/host wall {pod_wall / host_wall:.2f}, CPU {pod_cpu / host_cpu:.2f}"
    )


if __name__ == "__main__":
    main()
