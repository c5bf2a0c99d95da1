"""Act stage, jobs: what one remediation runs under, what it sees of the loop, what it leaves.

* ``Settings`` and ``Job``: a job keeps the settings it started with, so a reload never
  changes a remediation half-way.
* ``LoopFeed``: the loop's published cycles, for steps that wait on observations (verify).
* ``Outcomes``: every result counted, logged once and audited.
* ``resume_steps``: what to run for a fence an earlier run left, from its journal.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watchdog.assess import serving
from watchdog.config import AssessConfig
from watchdog.discover.mapped import HostIdentity
from watchdog.stepkinds import UNFENCE, fences

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watchdog.act.guards import Refusal
    from watchdog.act.ledger import Fence, Ledger
    from watchdog.act.steps import Incident
    from watchdog.config import ActConfig, Config
    from watchdog.model import Snapshot
    from watchdog.monitor import MonClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Settings:
    """What one job runs under; a reload makes new ones for new jobs only."""

    act: ActConfig
    probe_timeout: float
    map_timeout: float
    hostnames: frozenset[str]
    assess: AssessConfig = field(default_factory=AssessConfig)  # what "serving" means

    @classmethod
    def from_config(cls, config: Config) -> Settings:
        """From the whole config."""
        return cls(
            config.act,
            config.loop.probe_timeout_seconds,
            config.cluster.timeout_seconds,
            HostIdentity.of(config.cluster.hostname).names,
            config.assess,
        )


@dataclass(slots=True)
class Job:
    """One remediation (new, or resumed from the journal) on its thread."""

    event: Incident
    steps: list[str]
    settings: Settings
    mon: MonClient | None
    snapshot: Snapshot | None  # this cycle's, for the host guards; None when resuming
    thread: threading.Thread | None = field(default=None)

    @property
    def action(self) -> str:
        """The steps as one label value (``fence_restart_verify_unfence``)."""
        return "_".join(self.steps)


def resume_steps(fence: Fence, configured: Sequence[str]) -> list[str] | None:
    """The steps still to run for a fence left behind; None: leave it as it is."""
    left = fence.steps_left
    if left is None:  # a record from before the journal: verify, unfence
        older = [s for s in ("verify", UNFENCE) if s in configured]
        return older if UNFENCE in older else None
    if fences(str(s) for s in left[:1]):
        # It stopped while fencing: whether noup landed is unknown. Lift it; the OSD is
        # judged afresh, through every guard.
        return [UNFENCE]
    return [str(s) for s in left]


class LoopFeed:
    """The loop's cycles as a remediation sees them (``steps.LoopView``)."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self._cycle = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._policy = AssessConfig()

    def publish(self, snapshot: Snapshot, policy: AssessConfig) -> None:
        """A cycle ended: wake every step waiting for one."""
        with self._cycle:
            self._snapshot = snapshot
            self._policy = policy
            self._cycle.notify_all()

    def stop(self) -> None:
        """Shutting down: every wait ends now."""
        self.stop_event.set()
        with self._cycle:
            self._cycle.notify_all()

    @property
    def snapshot(self) -> Snapshot | None:
        """The last published cycle."""
        return self._snapshot

    def wait_cycle(self, timeout: float) -> bool:
        """Wait for the next published cycle; False when shutting down."""
        with self._cycle:
            if not self.stop_event.is_set():
                self._cycle.wait(timeout)
        return not self.stop_event.is_set()

    def answered(self, daemon: str, old_pid: int | None) -> bool:
        """True once a new process of the OSD serves (assess.serving).

        Every client listener sends its banner and no op waits too long, judged on what the
        loop observed; while fenced the map says down, which this does not ask.
        """
        snapshot = self._snapshot
        for report in snapshot.osds if snapshot else ():
            observation = report.observation
            incarnation = observation.target.incarnation
            if observation.target.daemon != daemon or incarnation is None:
                continue
            return incarnation.pid != old_pid and serving(observation, self._policy)
        return False


class Outcomes:
    """Counters for the metrics, one log line and one audit record per result."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.totals: Counter[tuple[str, str]] = Counter()
        self.refusals: Counter[str] = Counter()
        self.step_failures: Counter[tuple[str, str]] = Counter()  # (daemon, step)
        self._lock = threading.Lock()

    def counts(self) -> dict[str, Any]:
        """The counters and fences, as Snapshot fields."""
        with self._lock:
            return {
                "actions_total": dict(self.totals),
                "refusals_total": dict(self.refusals),
                "step_failures_total": dict(self.step_failures),
                "fenced": tuple(sorted(self.ledger.fenced())),
            }

    def count(self, job: Job, result: str, guard: str = "") -> None:
        """One more of this result (and of this guard's refusals)."""
        with self._lock:
            self.totals[(job.action, result)] += 1
            if guard:
                self.refusals[guard] += 1

    def refused(self, job: Job, refusal: Refusal, audit: dict[str, Any]) -> None:
        """A guard said no."""
        self.count(job, "refused", refusal.guard)
        log.info("%s: not acting (%s)", job.event.daemon, refusal)
        self.ledger.audit(**audit, guard=str(refusal), result="refused")

    def failed(self, job: Job, name: str, detail: str) -> None:
        """A step failed: the rest are skipped; a fence stays."""
        daemon = job.event.daemon
        self.count(job, "failed")
        with self._lock:
            self.step_failures[(daemon, name)] += 1
        fenced = " (it stays fenced: noup is set)" if daemon in self.ledger.fenced() else ""
        log.warning("%s: %s failed: %s%s", daemon, name, detail, fenced)
        self.ledger.audit(ceph_daemon=daemon, step=name, result="failed", detail=detail)

    def interrupted(self, job: Job, name: str) -> None:
        """A shutdown came first: nothing failed, the journal says what is left."""
        daemon = job.event.daemon
        self.count(job, "interrupted")
        kept = daemon in self.ledger.fenced()
        after = "; it stays fenced and the next start resumes it" if kept else ""
        log.warning(
            "%s: remediation interrupted by shutdown before %s ended%s", daemon, name, after
        )
        self.ledger.audit(ceph_daemon=daemon, step=name, result="interrupted")
