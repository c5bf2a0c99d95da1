"""The canary: answers like an OSD while the watchdog can open sockets, and not otherwise."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from watchdog.act.canary import Canary


def test_the_canary_answers_while_it_runs_and_not_after_stop():
    canary = Canary()
    try:
        assert canary.running
        assert canary.answers(timeout=2.0)
        assert canary.answers(timeout=2.0)  # one connection per round, round after round
    finally:
        canary.stop()
    assert not canary.running
    assert not canary.answers(timeout=0.5)


def test_the_canary_does_not_answer_when_the_watchdog_is_out_of_fds():
    """The reason it exists: our own fd limit reached, the probe fails and no OSD is blamed."""
    child = textwrap.dedent(
        """
        import os, resource
        from watchdog.act.canary import Canary
        canary = Canary()
        print("before", canary.answers(timeout=2.0), flush=True)
        used = len(os.listdir("/proc/self/fd"))
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (used, hard))
        print("exhausted", canary.answers(timeout=2.0), flush=True)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split("\n")[:2] == ["before True", "exhausted False"], out.stderr
