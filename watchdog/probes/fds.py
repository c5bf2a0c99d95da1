"""Probe stage, fd prober: open fds of an OSD against its soft RLIMIT_NOFILE, and the trend.

The OSD that hits its open-files limit is the classic zombie (accept() fails with EMFILE), so
the ratio and the time left at the current growth rate both matter: the first says "close", the
second says "soon". Access denied is its own outcome: a watchdog that cannot look must say so.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from watchdog.host import procfs
from watchdog.model import FdOutcome, FdSample, Incarnation

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from watchdog.model import Target

MIN_TREND_SAMPLES = 3
MIN_TREND_SPAN = 2.0  # seconds: a slope from samples closer than this is noise


def sample_fds(proc_root: Path, pid: int) -> FdSample:
    """One honest look at a process's fd count and limit."""
    try:
        limit = procfs.soft_nofile_limit(proc_root, pid)
        open_fds = procfs.count_fds(proc_root, pid)
    except ProcessLookupError:
        return FdSample(FdOutcome.GONE, detail=f"process {pid} is gone")
    except PermissionError as exc:
        return FdSample(FdOutcome.ACCESS_DENIED, detail=f"access denied: {exc}")
    return FdSample(FdOutcome.OK, open_fds=open_fds, limit=max(limit, 0))


def seconds_to_exhaustion(points: list[tuple[float, int]], limit: int) -> float | None:
    """Least-squares slope of (time, fds) extrapolated to the limit; None when not growing."""
    if len(points) < MIN_TREND_SAMPLES or limit <= 0:
        return None
    if points[-1][0] - points[0][0] < MIN_TREND_SPAN:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_f = sum(f for _, f in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread <= 0:
        return None
    slope = sum((t - mean_t) * (f - mean_f) for t, f in points) / spread
    if slope <= 0:
        return None
    return max(0.0, (limit - points[-1][1]) / slope)


class FdProbe:
    """fd sampler with a short memory per incarnation, for the trend."""

    name = "fds"

    def __init__(self, proc_root: Path, window_seconds: float) -> None:
        self.proc_root = proc_root
        self.window = window_seconds
        self._history: dict[Incarnation, deque[tuple[float, int]]] = {}

    def sample(self, incarnation: Incarnation, now: float) -> FdSample:
        """Sample one process and attach the predicted time to exhaustion."""
        sample = sample_fds(self.proc_root, incarnation.pid)
        if sample.outcome is not FdOutcome.OK:
            return sample
        history = self._history.setdefault(incarnation, deque())
        history.append((now, sample.open_fds))
        while history and history[0][0] < now - self.window:
            history.popleft()
        eta = seconds_to_exhaustion(list(history), sample.limit)
        return FdSample(FdOutcome.OK, sample.open_fds, sample.limit, eta)

    def run(self, targets: Sequence[Target], *, timeout: float) -> dict[str, FdSample]:
        """Samples per local daemon; static targets have no process here."""
        del timeout  # reading two /proc files does not block on the OSD
        now = time.monotonic()
        return {t.daemon: self.sample(t.incarnation, now) for t in targets if t.incarnation}

    def forget_except(self, alive: set[Incarnation]) -> None:
        """Drop the history of processes that are gone."""
        self._history = {k: v for k, v in self._history.items() if k in alive}
