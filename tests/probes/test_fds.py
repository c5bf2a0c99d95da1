"""fd counting against real child processes with a lowered RLIMIT_NOFILE."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.model import FdOutcome, Incarnation
from watchdog.probes.fds import FdProbe, sample_fds, seconds_to_exhaustion

PROC = Path("/proc")

HOLDER = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(int(sys.argv[1]))]
print(len(os.listdir("/proc/self/fd")) - 1, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder():
    procs: list[subprocess.Popen[str]] = []

    def start(count: int) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        return proc, int(proc.stdout.readline())

    yield start
    for proc in procs:
        assert proc.stdin is not None
        assert proc.stdout is not None
        proc.stdin.close()  # the holder exits
        proc.stdout.close()
        proc.wait(timeout=10)


def test_open_fds_and_soft_limit_of_a_real_process_are_read(holder):
    proc, open_in_child = holder(40)
    sample = sample_fds(PROC, proc.pid)
    assert sample.outcome is FdOutcome.OK
    assert sample.limit == 100
    assert sample.open_fds == open_in_child
    assert sample.ratio == open_in_child / 100


def test_a_process_that_is_gone_is_reported_gone(holder):
    proc, _ = holder(1)
    proc.stdin.close()
    proc.wait(timeout=10)
    assert sample_fds(PROC, proc.pid).outcome is FdOutcome.GONE


PEEK = """
import encodings.ascii, json, os, sys  # imported before dropping privileges: the
from pathlib import Path               # interpreter may live where nobody cannot read
from watchdog.probes.fds import sample_fds
os.setgid(65534); os.setuid(65534)
sample = sample_fds(Path("/proc"), int(sys.argv[1]))
print(json.dumps([sample.outcome.value, sample.detail]))
"""


def test_another_users_process_is_access_denied_never_a_number():
    """Real denial: as root we drop to nobody in a child; otherwise we look at pid 1."""
    if os.geteuid() == 0:
        out = subprocess.run(
            [sys.executable, "-c", PEEK, str(os.getpid())],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
        outcome, detail = json.loads(out.stdout)
    else:
        sample = sample_fds(PROC, 1)
        outcome, detail = sample.outcome.value, sample.detail
    assert outcome == "access_denied"
    assert detail.startswith("access denied: ")


def test_trend_predicts_the_time_left_at_the_current_growth():
    points = [(0.0, 100), (1.0, 110), (2.0, 120), (3.0, 130)]
    assert seconds_to_exhaustion(points, limit=230) == pytest.approx(10.0)


@pytest.mark.parametrize(
    "points",
    [
        [(0.0, 100), (1.0, 100), (2.0, 100)],  # flat
        [(0.0, 120), (1.0, 110), (2.0, 100)],  # shrinking
        [(0.0, 100), (0.5, 110), (1.0, 120)],  # too short a span to trust
        [(0.0, 100), (5.0, 200)],  # too few samples
    ],
)
def test_no_prediction_without_a_trustworthy_growth(points):
    assert seconds_to_exhaustion(points, limit=1000) is None


def test_the_probe_keeps_a_window_per_incarnation_and_forgets_the_dead(holder):
    proc, _ = holder(5)
    probe = FdProbe(PROC, window_seconds=10)
    me = Incarnation(proc.pid, 0.0)
    for now in (0.0, 1.0, 2.0, 30.0):
        probe.sample(me, now)
    assert [t for t, _ in probe._history[me]] == [30.0]
    probe.forget_except(set())
    assert probe._history == {}
