"""Soak: the daemon against simulated OSDs for a bounded time, faults injected and healed at
random. Reports the watchdog's RSS and open fds over time, and missed and false detections.

    .venv/bin/python bench/soak.py [MINUTES]   (default 20)

Every 10-25 s (3-5 s in the smoke run) one healthy OSD gets a random fault (stall, fd
exhaustion with the listener left open or closed); it must be called a zombie within 10 s
(else: missed) and is healed once it is. An OSD without a fault that is ever called suspect
or zombie is a false detection.
"""

from __future__ import annotations

import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from common import SMOKE, arg, cpu_seconds, free_port, machine, rss_mib
from prometheus_client.parser import text_string_to_metric_families

from watchdog.sim.cluster import SimCluster

FAULTS = (("stall",), ("exhaust",), ("give_up close", "exhaust"))
OSDS = 4
FAULT_GAP = (3.0, 5.0) if SMOKE else (10.0, 25.0)  # seconds between faults
SAMPLE_EVERY = 3.0 if SMOKE else 10.0


def states(port: int) -> dict[str, str]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found = {}
    for family in text_string_to_metric_families(text):
        if family.name == "osd_watchdog_osd_state":
            for sample in family.samples:
                if sample.value == 1.0:
                    found[sample.labels["ceph_daemon"]] = sample.labels["state"]
    return found


def open_fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def main(minutes: float) -> None:  # noqa: PLR0912, PLR0915 - one bounded scenario, top to bottom
    import subprocess  # noqa: PLC0415

    print(f"machine: {machine()}; soak for {minutes:g} min")
    rng = random.Random(20261125)  # noqa: S311 - a reproducible schedule, not a secret
    with SimCluster(OSDS, nofile=256) as sim, tempfile.TemporaryDirectory() as work:
        port = free_port()
        config = Path(work) / "watchdog.toml"
        config.write_text(
            f'[web]\nlisten_address = "127.0.0.1:{port}"\n'
            f'[discovery]\nclusters = ["{sim.cluster}"]\n[cluster]\nsource = "none"\n'
            f'[act]\nstate_dir = "{work}/state"\n'
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "--log-level", "warning", "run",
             "--config", str(config)],
        )  # fmt: skip
        faulted: dict[int, float] = {}  # osd -> when the fault was injected
        kinds: dict[int, str] = {}
        healing: set[int] = set()  # healed, not yet seen healthy again
        missed = false = injected = 0
        samples: list[tuple[float, float, int, float]] = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if len(states(port)) == OSDS and set(states(port).values()) == {"healthy"}:
                        break
                except requests.ConnectionError:
                    pass
                threading.Event().wait(0.5)
            started = time.monotonic()
            next_fault = started + rng.uniform(*FAULT_GAP)
            next_sample = started
            while time.monotonic() - started < minutes * 60:
                now = time.monotonic()
                current = states(port)
                for osd in range(OSDS):
                    name, state = f"osd.{osd}", current.get(f"osd.{osd}")
                    if osd in faulted:
                        if state == "zombie" or now - faulted[osd] > 10:
                            if state != "zombie":
                                missed += 1
                                seen = sim.command(osd, "status")["states"]
                                print(f"missed: {name} {kinds[osd]} still {state}; sim: {seen}")
                            sim.command(osd, "heal")
                            del faulted[osd]
                            healing.add(osd)
                    elif osd in healing:
                        if state == "healthy":
                            healing.discard(osd)
                    elif state in {"suspect", "zombie"}:
                        false += 1
                        print(f"false detection: {name} {state}")
                if now >= next_fault:
                    healthy = [
                        o
                        for o in range(OSDS)
                        if o not in faulted
                        and o not in healing
                        and current.get(f"osd.{o}") == "healthy"
                    ]
                    if healthy:
                        osd = rng.choice(healthy)
                        fault = rng.choice(FAULTS)
                        kinds[osd] = "+".join(fault)
                        for command in fault:
                            sim.command(osd, *command.split())
                        faulted[osd] = now
                        injected += 1
                    next_fault = now + rng.uniform(*FAULT_GAP)
                if now >= next_sample:
                    samples.append(
                        (
                            now - started,
                            rss_mib(daemon.pid),
                            open_fds(daemon.pid),
                            cpu_seconds(daemon.pid),
                        )
                    )
                    next_sample = now + SAMPLE_EVERY
                threading.Event().wait(0.5)
        finally:
            daemon.terminate()
            daemon.wait(timeout=15)
    first, last = samples[1], samples[-1]
    rss = [s[1] for s in samples[1:]]
    fds = [s[2] for s in samples[1:]]
    print(
        f"{injected} faults injected, {missed} missed, {false} false detections; "
        f"RSS {first[1]:.1f} -> {last[1]:.1f} MiB (min {min(rss):.1f}, max {max(rss):.1f}); "
        f"open fds {first[2]} -> {last[2]} (min {min(fds)}, max {max(fds)}); "
        f"CPU {last[3] - first[3]:.1f}s over {last[0] - first[0]:.0f}s"
    )
    for elapsed, rss_now, fds_now, _ in samples[:: max(1, len(samples) // 12)]:
        print(f"  t={elapsed:6.0f}s  RSS {rss_now:5.1f} MiB  fds {fds_now}")


if __name__ == "__main__":
    main(0.4 if SMOKE else arg(0, 20.0))
