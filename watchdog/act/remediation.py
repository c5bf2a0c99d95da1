"""Act stage, remediation: decide on this cycle's transitions, off the loop's thread.

The loop hands ``consider`` each published snapshot and its transitions and goes on at once.
Everything slow (the canary probe, the fresh map, ``ok-to-stop``, the steps) runs on a job
thread per OSD, at most ``max_concurrent`` at a time; others wait their turn while they
still fail. Right before the first step that stops the OSD the monitors are asked again and
the map guards decide on that answer. A fenced OSD's remaining steps are journaled in
``state_dir``: a reload lets running jobs finish under the settings they started with, and a
shutdown or crash mid-way leaves a record the next start (or reload) resumes.

This module is the queue and the lifecycle (start, reload, shutdown, resume); what a job
does on its thread (guards, steps, journal) is ``runner.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from watchdog.act.canary import Canary
from watchdog.act.job import Job, LoopFeed, Outcomes, Settings, resume_steps
from watchdog.act.ledger import Ledger
from watchdog.act.lock import StateLock
from watchdog.act.runner import JobRunner
from watchdog.act.steps import Incident
from watchdog.model import State
from watchdog.monitor import client_or_none

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watchdog.act.ledger import Fence
    from watchdog.config import ClusterConfig, Config
    from watchdog.model import Snapshot, Transition
    from watchdog.monitor import MonClient

log = logging.getLogger(__name__)


def _connect(cluster: ClusterConfig) -> MonClient | None:
    return client_or_none(cluster, "actions cannot reach the monitors")


class Remediator:
    """Owns the guards' history, the lock, the running jobs and their counters."""

    def __init__(
        self, settings: Settings, mon: MonClient | None, cluster: ClusterConfig | None = None
    ) -> None:
        self.settings = settings
        self.mon = mon
        act = settings.act
        self.ledger = Ledger(act.state_dir, act.audit_path)
        self.lock = StateLock(act.state_dir)
        if not act.dry_run:  # a dry run changes nothing: two of them may run side by side
            self.lock.try_take()
        self.canary = Canary() if act.canary else None
        self.feed = LoopFeed()
        self.outcomes = Outcomes(self.ledger)
        self._jobs: dict[str, Job] = {}
        self._pending: dict[str, Transition] = {}  # waiting for a free slot, oldest first
        self._waiting_said: set[str] = set()
        self._retired: list[MonClient] = []  # clients replaced by a reload, still in use
        self._lock = threading.Lock()  # jobs, pending, retired clients
        self.runner = JobRunner(
            ledger=self.ledger,
            lock=self.lock,
            feed=self.feed,
            outcomes=self.outcomes,
            canary=lambda: self.canary,
            busy=self._busy,
        )
        self._cluster = cluster  # what ``mon`` was made from: a reload that changes it reconnects

    @classmethod
    def from_config(cls, config: Config) -> Remediator:
        """With its own monitor client (the map watcher's stays on its thread)."""
        return cls(Settings.from_config(config), _connect(config.cluster), config.cluster)

    # --- the loop's side: never blocks ---

    def consider(self, snapshot: Snapshot, transitions: Sequence[Transition]) -> None:
        """Queue this cycle's transitions into configured states; start what may start."""
        self.feed.publish(snapshot, self.settings.assess)  # verify judges this cycle's
        self._reap()
        wanted = {State(s) for s in self.settings.act.on_states}
        with self._lock:
            for transition in transitions:
                if transition.new in wanted and transition.daemon not in self._jobs:
                    self._pending[transition.daemon] = transition
            states = {r.observation.target.daemon: r.status.state for r in snapshot.osds}
            for daemon, transition in list(self._pending.items()):
                if states.get(daemon) is not transition.new:  # healed or gone meanwhile
                    del self._pending[daemon]
                    self._waiting_said.discard(daemon)
            starting = []
            while self._pending and len(self._jobs) < self.settings.act.max_concurrent:
                daemon, transition = next(iter(self._pending.items()))
                del self._pending[daemon]
                self._waiting_said.discard(daemon)
                starting.append(self._new_job(transition, snapshot))
            waiting = [d for d in self._pending if d not in self._waiting_said]
            self._waiting_said.update(waiting)
            running = ", ".join(sorted(self._jobs))
        for job in starting:
            self._launch(job)
        for daemon in waiting:
            log.info(
                "%s: waiting: a remediation is already running on this host (%s)", daemon, running
            )

    def _new_job(self, transition: Transition, snapshot: Snapshot) -> Job:
        pid = None
        for report in snapshot.osds:
            target = report.observation.target
            if target.daemon == transition.daemon and target.incarnation is not None:
                pid = target.incarnation.pid
        event = Incident(
            transition.daemon, transition.new.value, transition.cause, pid, time.time()
        )
        steps: list[str] = list(self.settings.act.steps)
        job = Job(event, steps, self.settings, self.mon, snapshot)
        self._jobs[event.daemon] = job
        return job

    def _launch(self, job: Job) -> None:
        target = self.runner.decide if job.snapshot is not None else self.runner.resume
        # A daemon thread: a shutdown does not wait for a step (a restart) to end; what is
        # left is journaled with the fence and resumed by the next start.
        thread = threading.Thread(
            target=target, args=(job,), name=f"remediate-{job.event.daemon}", daemon=True
        )
        job.thread = thread
        thread.start()

    def _reap(self) -> None:
        with self._lock:
            for daemon, job in list(self._jobs.items()):
                if job.thread is not None and not job.thread.is_alive():
                    del self._jobs[daemon]
            used = {id(job.mon) for job in self._jobs.values()}
            done = [m for m in self._retired if id(m) not in used]
            self._retired = [m for m in self._retired if id(m) in used]
        for mon in done:
            mon.close()

    def _busy(self) -> set[str]:
        with self._lock:
            return set(self._jobs) | set(self.ledger.fenced())

    def counts(self) -> dict[str, Any]:
        """The counters and fences, as Snapshot fields."""
        return self.outcomes.counts()

    def running(self) -> set[str]:
        """The OSDs a job is working on now (finished jobs are reaped first)."""
        self._reap()
        with self._lock:
            return set(self._jobs)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs (for a one-shot command, or a test); False on the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                threads = [job.thread for job in self._jobs.values() if job.thread is not None]
            if not threads:
                return True
            for thread in threads:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            self._reap()
            if time.monotonic() >= deadline:
                return not self.running()

    # --- lifecycle: start, reload, shutdown ---

    def resume(self) -> None:
        """Fences left by an earlier run (or a failed job): finish their journaled steps."""
        act = self.settings.act
        fences = self.ledger.fenced()
        if fences and act.dry_run:
            names = ", ".join(sorted(fences))
            log.warning("fenced by an earlier run: %s; dry-run, so they stay fenced", names)
            return
        if act.dry_run or self.lock.try_take():
            return
        with self._lock:
            jobs = [self._resume(d, f) for d, f in fences.items() if d not in self._jobs]
        for job in jobs:
            if job is not None:
                self._launch(job)

    def _resume(self, daemon: str, fence: Fence) -> Job | None:
        left = resume_steps(fence, self.settings.act.steps)
        if left is None:
            return None
        log.info(
            "%s: resuming the remediation an earlier run left fenced: %s", daemon, ", ".join(left)
        )
        event = Incident(
            daemon, "fenced", "fenced by an earlier run", fence.pid, time.time(), fence.unit
        )
        job = Job(event, left, self.settings, self.mon, None)
        self._jobs[daemon] = job
        return job

    def reconfigure(self, config: Config) -> None:
        """New settings for new jobs; running ones finish under theirs. Then resume fences."""
        settings = Settings.from_config(config)
        old = self.settings.act
        if (settings.act.state_dir, settings.act.audit_path) != (old.state_dir, old.audit_path):
            log.warning(
                "act.state_dir and act.audit_log change only at restart; keeping %s", old.state_dir
            )
            act = replace(settings.act, state_dir=old.state_dir, audit_log=old.audit_log)
            settings = replace(settings, act=act)
        if config.cluster != self._cluster:
            with self._lock:
                if self.mon is not None:
                    self._retired.append(self.mon)
                self.mon = _connect(config.cluster)
                self._cluster = config.cluster
        if settings.act.canary and self.canary is None:
            self.canary = Canary()
        elif not settings.act.canary and self.canary is not None:
            self.canary.stop()
            self.canary = None
        self.settings = settings
        self.resume()

    def stop(self, wait: float = 5.0) -> None:
        """Interrupt waiting steps and let the jobs record where they stopped; fences stay."""
        self.feed.stop()
        deadline = time.monotonic() + wait
        with self._lock:
            threads = [job.thread for job in self._jobs.values() if job.thread is not None]
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.canary is not None:
            self.canary.stop()
        self.lock.release()
