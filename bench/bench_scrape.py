"""Cost of a /metrics scrape against the probe cycle it reports on, at 1,000 endpoints.

The baseline, in the same run and process: CPU of the watchdog's own probe cycles over a
farm of real loopback listeners. Then the exposition of the snapshot those cycles produced
is rendered (plain and gzipped, as `Exposition` does once per cycle) and timed.

    .venv/bin/python bench/bench_scrape.py [ENDPOINTS]
"""

from __future__ import annotations

import gzip
import resource
import sys

from bench_cycle import watchdog_for
from common import machine
from prometheus_client import CollectorRegistry, generate_latest

from watchdog.export import SnapshotCollector
from watchdog.sim.farm import Farm

CYCLES = 5
RENDERS = 20


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(endpoints: int) -> None:
    print(f"machine: {machine()}")
    farm = Farm(endpoints)
    try:
        watchdog = watchdog_for(farm.ports)
        watchdog.cycle()  # warm: first sight of every target
        before = cpu()
        for _ in range(CYCLES):
            watchdog.cycle()
        per_cycle = (cpu() - before) / CYCLES
    finally:
        farm.close()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(watchdog.latest))
    body = generate_latest(registry)
    before = cpu()
    for _ in range(RENDERS):
        gzip.compress(generate_latest(registry), compresslevel=6)
    per_render = (cpu() - before) / RENDERS
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(
        f"{endpoints} endpoints: probe cycle {per_cycle * 1000:.1f} ms CPU; one rendering "
        f"(plain + gzip) {per_render * 1000:.1f} ms CPU, {series} series, "
        f"{len(body) / 1e6:.2f} MB -> rendering/cycle {per_render / per_cycle:.2f}"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
