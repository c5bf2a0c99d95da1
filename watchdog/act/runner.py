"""Act stage, a job's side: the guards on what the monitors say now, then the steps.

Each job runs this on its own thread. Decisions (the guards up to the first change to the
cluster) are taken one at a time across jobs, so the budgets (actions per hour, fences in
the cluster) hold; every step is journaled and audited as it goes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from watchdog.act.facts import ok_to_stop, read_map
from watchdog.act.guards import (
    MapFacts,
    Refusal,
    Situation,
    refuse_on_host,
    refuse_on_map,
    refuse_on_ok_to_stop,
)
from watchdog.act.steps import build_steps, describe, unit_of
from watchdog.errors import StepError, StepInterruptedError
from watchdog.stepkinds import KINDS, marks_down, stops

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.act.canary import Canary
    from watchdog.act.job import Job, LoopFeed, Outcomes
    from watchdog.act.ledger import Ledger
    from watchdog.act.lock import StateLock
    from watchdog.act.steps import Step

log = logging.getLogger(__name__)


class JobRunner:
    """Runs jobs: guards, steps, journal and audit; shared by every job of a remediator."""

    def __init__(  # noqa: PLR0913 - the remediator's parts a job uses, each named
        self,
        *,
        ledger: Ledger,
        lock: StateLock,
        feed: LoopFeed,
        outcomes: Outcomes,
        canary: Callable[[], Canary | None],
        busy: Callable[[], set[str]],
    ) -> None:
        self.ledger = ledger
        self.lock = lock
        self.feed = feed
        self.outcomes = outcomes
        self.canary = canary  # the remediator's current one (a reload may add or drop it)
        self.busy = busy  # OSDs with a job or a fence of ours
        self._deciding = threading.Lock()  # one decision (guards to first step) at a time

    def decide(self, job: Job) -> None:
        """A new job: the guards, then its steps (or the dry-run plan)."""
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
        canary = self.canary()
        situation = Situation(
            daemon=job.event.daemon,
            now=time.time(),
            reports=job.snapshot.osds if job.snapshot else (),
            busy=self.busy() - {job.event.daemon},
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

    def resume(self, job: Job) -> None:
        """A job resumed from the journal: its remaining steps, guards as they come."""
        self.ledger.audit(ceph_daemon=job.event.daemon, result="resumed", steps=job.steps)
        self._run_steps(job, build_steps(job.settings.act, job.steps, job.mon, self.feed))
