"""What a /metrics scrape costs the daemon, against the probe cycle it reports on.

The watchdog watches simulated OSD processes found by its own local discovery (eight
listeners each; 125 OSDs make 1,000 endpoints), as on an OSD host. Measured in this
process, as CPU (utime + stime of every thread):

* the baseline: one probe cycle (discover, probe, assess, publish), median of several;
* one scrape: the real HTTP server answering a client in another process that asks for gzip
  as Prometheus does, for a snapshot it has not rendered yet (each scrape gets a new one, so
  every scrape pays the full rendering; a second scraper of the same cycle would pay less).

Goal (issue 15): at 1,000 endpoints a scrape costs at most 10% of a probe cycle.

    .venv/bin/python bench/bench_scrape.py [OSDS] [--smoke]
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import SMOKE, arg, machine

from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.export import Health, SnapshotMetrics, serve
from watchdog.sim.cluster import SimCluster

if TYPE_CHECKING:
    from watchdog.model import Snapshot

CYCLES = 3 if SMOKE else 7
SCRAPES = 5 if SMOKE else 40
CLIENT = """
import sys, requests
session = requests.Session()
for url in sys.stdin:
    reply = session.get(url.strip(), headers={"Accept-Encoding": "gzip"}, timeout=10)
    print(reply.raw.tell(), reply.headers.get("Content-Encoding"), flush=True)
"""


def cpu() -> float:
    """This process's CPU, every thread, in nanosecond resolution (os.times ticks are 10 ms)."""
    return time.process_time()


class Publisher:
    """Hands the server a new snapshot object on demand, as each cycle's publish does."""

    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog
        first = watchdog.latest()
        assert first is not None, "run a cycle first"
        self.snapshot = first

    def publish(self) -> None:
        self.snapshot = dataclasses.replace(self.snapshot, cycles=self.snapshot.cycles + 1)

    def latest(self) -> Snapshot:
        return self.snapshot


def main(osds: int) -> None:
    print(f"machine: {machine()}")
    with SimCluster(osds, cluster=f"scrape{osds}") as sim, tempfile.TemporaryDirectory() as work:
        config = parse_config(
            {
                "discovery": {"clusters": [sim.cluster]},
                "cluster": {"source": "none"},
                "act": {"state_dir": str(Path(work) / "state")},
            }
        )
        watchdog = Watchdog(config, acting=False)
        for _ in range(3):  # first sight of every OSD, then steady state
            watchdog.cycle()
        cycle_cpu = []
        for _ in range(CYCLES):
            before = cpu()
            snapshot = watchdog.cycle()
            cycle_cpu.append(cpu() - before)
        endpoints = sum(len(r.observation.banners) for r in snapshot.osds)
        publisher = Publisher(watchdog)
        server = serve(SnapshotMetrics(), Health(publisher.latest, 60), ("127.0.0.1", 0))
        url = f"http://127.0.0.1:{server.server_address[1]}/metrics\n"
        client = subprocess.Popen(
            [sys.executable, "-c", CLIENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert client.stdin is not None
        assert client.stdout is not None
        try:
            scrape_cpu, sizes = [], []
            for _ in range(SCRAPES + 1):
                publisher.publish()
                before = cpu()
                client.stdin.write(url)
                client.stdin.flush()
                size, encoding = client.stdout.readline().split()
                scrape_cpu.append(cpu() - before)
                sizes.append(int(size))
            scrape_cpu = scrape_cpu[1:]  # the first warms the label caches
        finally:
            client.stdin.close()
            client.wait(timeout=30)
            server.shutdown()
            server.server_close()
        plain = SnapshotMetrics().families(publisher.latest())
        series = sum(len(f.lines) - 1 for f in plain)
    per_cycle = statistics.median(cycle_cpu)
    per_scrape = statistics.mean(scrape_cpu)
    print(
        f"{endpoints} endpoints ({osds} OSDs): probe cycle {per_cycle * 1000:.1f} ms CPU "
        f"(median of {CYCLES}); one scrape ({encoding}, {sizes[-1] / 1000:.0f} kB on the wire, "
        f"{series} series) {per_scrape * 1000:.2f} ms CPU (mean of {SCRAPES}) "
        f"-> scrape/cycle ratio {per_scrape / per_cycle:.3f}"
    )


if __name__ == "__main__":
    main(2 if SMOKE else int(arg(0, 125)))
