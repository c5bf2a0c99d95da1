"""fd counting and trend cost for a process with many open fds.

The issue asks for 100,000 fds; on this machine the hard RLIMIT_NOFILE is 20,000 and root
lacks CAP_SYS_RESOURCE to raise it, so the child holds 1,000, 10,000 and 19,500 fds and the
cost per fd is reported (it is linear: one directory entry each). Baseline in the same run:
psutil.Process.num_fds(), which does the same listing.

    .venv/bin/python bench/bench_fds.py
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import psutil
from common import SMOKE, machine, timed

from watchdog.host import procfs
from watchdog.probes.fds import sample_fds, seconds_to_exhaustion

REPEAT = 7
CHILD = """
import os, sys
fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
sys.stdin.readline()
"""


def main() -> None:
    print(f"machine: {machine()}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    proc_root = Path("/proc")
    counts = (100,) if SMOKE else (1_000, 10_000, min(19_500, hard - 200))
    for count in counts:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        child.stdout.readline()
        try:
            ours = timed(REPEAT, lambda: sample_fds(proc_root, child.pid))
            count_only = timed(REPEAT, lambda: procfs.count_fds(proc_root, child.pid))
            theirs = timed(REPEAT, lambda: psutil.Process(child.pid).num_fds())
            # A minute of samples at one a second, as the loop keeps them.
            points = [(float(second), count + second) for second in range(60)]
            trend_cost = timed(REPEAT, lambda: seconds_to_exhaustion(points, count * 2))
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)
        print(
            f"{count:>6,} fds: sample (count + limit) {ours * 1000:7.2f} ms "
            f"({ours / count * 1e9:5.0f} ns/fd), count alone {count_only * 1000:7.2f} ms, "
            f"psutil num_fds {theirs * 1000:7.2f} ms (ratio ours/psutil "
            f"{count_only / theirs:.2f}), trend over 60 samples {trend_cost * 1e6:.1f} us"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


if __name__ == "__main__":
    main()
