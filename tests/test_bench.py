"""Every benchmark runs at a tiny size (``--smoke``), so one that breaks fails CI, not a reader.

The figures of a smoke run mean nothing; what is checked is that the script runs to its end
against the real pieces it measures (blackbox_exporter, simulated OSDs, a real Ceph cluster
for the memory benchmark) and prints its result line.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_root, require_tool

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parent.parent / "bench"
HELPERS = {"common.py", "holder.py"}  # imported or started by the scripts, not run alone
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name not in HELPERS)
# What each script needs from the system, beyond the package itself.
NEEDS = {
    "bench_cycle.py": ["prometheus-blackbox-exporter"],
    "bench_probe_cost.py": ["prometheus-blackbox-exporter", "prometheus"],
    "bench_memory.py": ["prometheus-blackbox-exporter", "ceph-mon", "ceph-osd", "ceph"],
    "bench_mgr.py": ["ceph-mon", "ceph-osd", "ceph-mgr", "ceph"],
    "bench_ops.py": ["ceph-mon", "ceph-osd", "ceph-mgr", "ceph"],
    "bench_netns.py": ["ip"],
}
NEEDS_ROOT = {"bench_netns.py"}  # network namespaces and veths
# The line each one ends with: its result, the ratio against its baseline where it has one.
RESULT = {
    "bench_cycle.py": "ratio watchdog/blackbox",
    "bench_detection.py": "false transitions",
    "bench_fds.py": "ratio ours/psutil",
    "bench_listen.py": "its cost at 0",
    "bench_memory.py": "ratio",
    "bench_mgr.py": "ratio module/core",
    "bench_ops.py": "ratio admin socket/client op",
    "bench_netns.py": "ratio pods/host",
    "bench_probe_cost.py": "ratio",
    "bench_scrape.py": "scrape/cycle ratio",
    "soak.py": "faults injected",
}


def test_every_script_is_known_here():
    assert set(SCRIPTS) == set(RESULT), "a new bench script: say what its result line is"


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_benchmark_runs_at_a_tiny_size(script, tmp_path):
    for tool in NEEDS.get(script, []):
        require_tool(tool)
    if script in NEEDS_ROOT:
        require_root(f"{script} needs root (network namespaces)")
    run = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke"],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("machine:"), run.stdout
    assert RESULT[script] in run.stdout, run.stdout
