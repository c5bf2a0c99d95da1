"""Act stage, remediation: decide on this cycle's transitions, off the loop's thread.

The loop hands ``consider`` each published snapshot and its transitions and goes on at once.
Everything slow (the canary probe, the fresh map, ``ok-to-stop``, the steps) runs on a job
thread per OSD, at most ``max_concurrent`` at a time; others wait their turn while they
still fail. Right before the first step that stops the OSD the monitors are asked again and
the map guards decide on that answer. A fenced OSD's remaining steps are journaled in
``state_dir``: a reload lets running jobs finish under the settings they started with, and a
shutdown or crash mid-way leaves a record the next start (or reload) resumes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from watchdog.act.canary import Canary
from watchdog.act.facts import ok_to_stop, read_map
from watchdog.act.guards import (
    MapFacts,
    Refusal,
    Situation,
    refuse_on_host,
    refuse_on_map,
    refuse_on_ok_to_stop,
)
from watchdog.act.job import Job, LoopFeed, Outcomes, Settings, resume_steps
from watchdog.act.ledger import Ledger
from watchdog.act.lock import StateLock
from watchdog.act.steps import Incident, Step, build_steps, describe, unit_of
from watchdog.errors import MonitorError, StepError, StepInterruptedError
from watchdog.model import State
from watchdog.monitor import make_client
from watchdog.stepkinds import KINDS, marks_down, stops

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watchdog.config import ClusterConfig, Config
    from watchdog.model import Snapshot, Transition
    from watchdog.monitor import MonClient

log = logging.getLogger(__name__)


def _connect(cluster: ClusterConfig) -> MonClient | None:
    try:
        return make_client(cluster)
    except MonitorError as exc:
        log.warning("actions cannot reach the monitors: %s", exc)
        return None


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
        self._deciding = threading.Lock()  # one decision (guards to first step) at a time
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
        target = self._decide if job.snapshot is not None else self._resume_job
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

    # --- a job's side ---

    def _decide(self, job: Job) -> None:
        event, act = job.event, job.settings.act
        audit = {"ceph_daemon": event.daemon, "evidence": event.cause, "action": job.action}
        steps = build_steps(act, job.steps, job.mon, self.feed)
        stops_first = stops(job.steps[:1])
        with self._deciding:  # guards to first change, one job at a time: budgets hold
            refusal = self._refuse_on_host(job)
            if refusal is None and (stops_first or act.dry_run) and stops(job.steps):
                refusal = self._refuse_on_cluster(job)
            if refusal is not None:
                self.outcomes.refused(job, refusal, audit)
                return
            if act.dry_run:
                self.outcomes.count(job, "dry_run")
                plan = describe(act, event.daemon)
                log.info("%s: dry-run: would %s (because: %s)", event.daemon, plan, event.cause)
                self.ledger.audit(**audit, guard="passed", result="dry_run")
                return
            self.ledger.started(event.daemon, marks_down=marks_down(job.steps))
            self.ledger.audit(**audit, guard="passed", result="started")
            if stops_first and not self._step(job, 0, steps):
                return
        self._run_steps(job, steps, start=1 if stops_first else 0, check=not stops_first)

    def _refuse_on_host(self, job: Job) -> Refusal | None:
        held = "" if job.settings.act.dry_run else self.lock.try_take()
        if held:
            return Refusal("lock", held)
        canary = self.canary
        situation = Situation(
            daemon=job.event.daemon,
            now=time.time(),
            reports=job.snapshot.osds if job.snapshot else (),
            busy=self._busy() - {job.event.daemon},
            canary_ok=canary.answers(job.settings.probe_timeout) if canary else None,
        )
        return refuse_on_host(situation, self.ledger.history(), job.settings.act)

    def _refuse_on_cluster(self, job: Job) -> Refusal | None:
        """The map guards and ok-to-stop, on what the monitors say now."""
        daemon, settings = job.event.daemon, job.settings
        cluster_map, error = read_map(job.mon, settings.map_timeout)
        facts = MapFacts(daemon, cluster_map, error, settings.hostnames, set(self.ledger.fenced()))
        refusal = refuse_on_map(facts, settings.act)
        if refusal is not None or settings.act.ok_to_stop == "ignore":
            return refusal
        ok, detail = ok_to_stop(job.mon, daemon, settings.map_timeout)
        return refuse_on_ok_to_stop(daemon, ok, detail)

    def _busy(self) -> set[str]:
        with self._lock:
            return set(self._jobs) | set(self.ledger.fenced())

    def _run_steps(
        self, job: Job, steps: dict[str, Step], *, start: int = 0, check: bool = False
    ) -> None:
        """Steps from ``start`` on; ``check``: the map guards before the first that stops."""
        for index in range(start, len(job.steps)):
            if check and stops(job.steps[index : index + 1]):
                check = False
                with self._deciding:  # no other job's fence between this read and ours
                    refusal = self._refuse_on_cluster(job)
                    if refusal is not None:
                        audit = {"ceph_daemon": job.event.daemon, "step": job.steps[index]}
                        self.outcomes.refused(job, refusal, audit)
                        return
                    if not self._step(job, index, steps):
                        return
            elif not self._step(job, index, steps):
                return
        self.outcomes.count(job, "done")

    def _step(self, job: Job, index: int, steps: dict[str, Step]) -> bool:
        """Run one step and record it; False when the job must end here."""
        event, name = job.event, job.steps[index]
        if self.feed.stop_event.is_set():
            self.outcomes.interrupted(job, name)
            return False
        try:
            detail = self._run_one(job, name, steps, job.steps[index + 1 :])
        except StepInterruptedError:
            self.outcomes.interrupted(job, name)
            return False
        except (StepError, OSError) as exc:
            self.outcomes.failed(job, name, str(exc))
            return False
        except Exception as exc:  # a bug in a step must not end this thread unrecorded
            log.exception("%s: %s raised", event.daemon, name)
            self.outcomes.failed(job, name, f"unexpected {type(exc).__name__}: {exc}")
            return False
        log.info("%s: %s done: %s", event.daemon, name, detail)
        self.ledger.audit(ceph_daemon=event.daemon, step=name, result="done", detail=detail)
        return True

    def _run_one(self, job: Job, name: str, steps: dict[str, Step], left: list[str]) -> str:
        event = job.event
        kind = KINDS[name]
        if kind.fences:
            # Recorded, with what is left to do, before it is set: never forgotten, and
            # resumed by the next start. If it cannot be recorded, it is not set.
            self.ledger.set_fence(event.daemon, event.pid, [name, *left], unit_of(event.pid))
        detail = steps[name].run(event, job.settings.act.step_timeout_seconds)
        if kind.unfences:
            self.ledger.clear_fence(event.daemon)
        else:
            self.ledger.progress(event.daemon, left)
        return detail

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

    def _resume(self, daemon: str, fence: dict[str, Any]) -> Job | None:
        left = resume_steps(fence, self.settings.act.steps)
        if left is None:
            return None
        log.info(
            "%s: resuming the remediation an earlier run left fenced: %s", daemon, ", ".join(left)
        )
        unit = fence.get("unit") if isinstance(fence.get("unit"), str) else None
        event = Incident(
            daemon, "fenced", "fenced by an earlier run", fence.get("pid"), time.time(), unit
        )
        job = Job(event, left, self.settings, self.mon, None)
        self._jobs[daemon] = job
        return job

    def _resume_job(self, job: Job) -> None:
        self.ledger.audit(ceph_daemon=job.event.daemon, result="resumed", steps=job.steps)
        self._run_steps(job, build_steps(job.settings.act, job.steps, job.mon, self.feed))

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
