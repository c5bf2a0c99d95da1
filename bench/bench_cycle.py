"""Cycle time over 1,000 endpoints (125 OSDs x 8), healthy and with 10% black holes.

Goal (issue 7): a healthy cycle well under 1 s; with 10% black holes, about one probe
timeout, not the sum of them. Baseline in the same run: blackbox_exporter probing the same
listeners, driven with 16 requests in flight.

    .venv/bin/python bench/bench_cycle.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from common import SMOKE, Blackbox, machine

from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.sim.farm import Farm

ENDPOINTS = 40 if SMOKE else 1000
PER_OSD = 8
TIMEOUT = 1.0
CYCLES = 2 if SMOKE else 5


def watchdog_for(ports: list[int]) -> Watchdog:
    targets = [
        {
            "daemon": f"osd.{i}",
            "endpoints": [
                {"address": f"v2:127.0.0.1:{p}", "role": "public"}
                for p in ports[i * PER_OSD : (i + 1) * PER_OSD]
            ],
        }
        for i in range(len(ports) // PER_OSD)
    ]
    config = parse_config(
        {
            "loop": {"interval_seconds": 1.0, "probe_timeout_seconds": TIMEOUT},
            "discovery": {"local": False, "static_targets": targets},
            "cluster": {"source": "none"},
        }
    )
    return Watchdog(config, acting=False)


def cycle_times(ports: list[int]) -> list[float]:
    watchdog = watchdog_for(ports)
    times = []
    for _ in range(CYCLES):
        started = time.monotonic()
        watchdog.cycle()
        times.append(time.monotonic() - started)
    return times


def main() -> None:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as work:
        blackbox = Blackbox(Path(work))
        try:
            for holes in (0, ENDPOINTS // 10):
                farm = Farm(ENDPOINTS, holes)
                try:
                    ports = farm.all_ports
                    ours = statistics.median(cycle_times(ports))
                    theirs, _ = blackbox.round(ports, in_flight=16)
                finally:
                    farm.close()
                label = "healthy" if holes == 0 else f"{holes} black holes"
                print(
                    f"{ENDPOINTS} endpoints, {label}: watchdog cycle {ours:.3f}s "
                    f"(median of {CYCLES}; {ours / TIMEOUT:.2f}x the probe timeout), "
                    f"blackbox_exporter round at 16 in flight {theirs:.2f}s; "
                    f"ratio watchdog/blackbox {ours / theirs:.3f}"
                )
        finally:
            blackbox.close()


if __name__ == "__main__":
    main()
