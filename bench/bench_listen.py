"""The cost of looking at listeners must not grow with the host's established connections.

With 0, 10,000 and 50,000 established loopback connections present, times in the same run:
the watchdog's listen probe (a netlink sock_diag dump filtered to LISTEN in the kernel), the
heartbeat count (ESTABLISHED filtered to a few ports, also in the kernel), parsing all of
/proc/net/tcp, and psutil.net_connections. Connections are held by helper processes (our fd
limit is 20,000 per process), at most 4,200 each, and closed at the end.

    .venv/bin/python bench/bench_listen.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psutil
from common import HERE, SMOKE, machine, timed

from watchdog.host import sockdiag

PER_HOLDER = 4200
REPEAT = 5


def hold(total: int) -> list[subprocess.Popen[str]]:
    holders = []
    left = total
    while left > 0:
        count = min(PER_HOLDER, left)
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "holder.py"), str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        holders.append(proc)
        left -= count
    for proc in holders:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready"), line
    return holders


def release(holders: list[subprocess.Popen[str]]) -> None:
    for proc in holders:
        assert proc.stdin is not None
        proc.stdin.close()
    for proc in holders:
        proc.wait(timeout=30)


def parse_proc_net_tcp() -> int:
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with Path(name).open() as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    count += 1
    return count


def main() -> None:
    print(f"machine: {machine()}")
    baseline: dict[str, float] = {}
    for total in (0, 100) if SMOKE else (0, 10_000, 50_000):
        holders = hold(total)
        try:
            some_ports = [s.port for s in list(sockdiag.dump_listeners().values())[:8]]
            results = {
                "sock_diag LISTEN (the listen probe)": timed(REPEAT, sockdiag.dump_listeners),
                "sock_diag ESTABLISHED on 8 ports (heartbeats)": timed(
                    REPEAT, lambda: sockdiag.dump_established(some_ports)
                ),
                "/proc/net/tcp{,6} parse": timed(REPEAT, parse_proc_net_tcp),
                "psutil.net_connections('tcp')": timed(
                    REPEAT, lambda: psutil.net_connections("tcp")
                ),
            }
        finally:
            release(holders)
        print(f"\n{total:,} established connections:")
        for name, seconds in results.items():
            baseline.setdefault(name, seconds)
            growth = seconds / baseline[name]
            print(f"  {name:<48} {seconds * 1000:9.2f} ms   {growth:7.1f}x its cost at 0")


if __name__ == "__main__":
    main()
