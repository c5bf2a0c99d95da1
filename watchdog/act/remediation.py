"""Act stage, remediation: decide on transitions, pass the guards, run the steps in order.

The loop calls ``consider`` with each cycle's transitions; it only decides and returns at once.
A remediation that goes ahead runs on its own thread, one step after another, each under
``step_timeout_seconds``. If a step fails, the rest are skipped: an OSD that was fenced stays
fenced (the safe state) and the failure is counted, logged and audited.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from watchdog.act.guards import MAP_CHANGING, Situation, refuse
from watchdog.act.ledger import Ledger
from watchdog.act.steps import Event, StepError, build_steps, describe
from watchdog.discover.monitor import MonitorError, make_client
from watchdog.model import Endpoint, Msgr, Outcome, State
from watchdog.probes.tcp import probe_banners

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from watchdog.config import ActConfig, Config
    from watchdog.discover.monitor import MonClient
    from watchdog.model import ClusterMap, Snapshot, Transition

log = logging.getLogger(__name__)


class Canary:
    """A listener of the watchdog's own that sends a Ceph banner.

    If probing it fails, the failure is ours (our fd limit, our network namespace): no OSD
    is blamed and nothing is done.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.endpoint = Endpoint("127.0.0.1", self.sock.getsockname()[1], Msgr.V2)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, name="canary", daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # timeout, or closed by stop()
                continue
            with conn:
                conn.sendall(b"ceph v2\n")

    def answers(self, timeout: float) -> bool:
        """Probe it exactly as an OSD is probed."""
        [result] = probe_banners([self.endpoint], timeout)
        return result.outcome is Outcome.OK

    def stop(self) -> None:
        """Close the listener."""
        self._stop.set()
        self.sock.close()


class Remediator:
    """Owns the guards' history, the running remediations and their counters."""

    def __init__(
        self,
        config: ActConfig,
        mon: MonClient | None,
        latest: Callable[[], Snapshot | None],
        probe_timeout: float,
    ) -> None:
        self.config = config
        self.mon = mon
        self.latest = latest
        self.probe_timeout = probe_timeout
        self.ledger = Ledger(config.state_dir, config.audit_path)
        self.canary = Canary() if config.canary else None
        self.stop_event = threading.Event()
        self.action = "_".join(config.steps)
        self.totals: Counter[tuple[str, str]] = Counter()
        self.refusals: Counter[str] = Counter()
        self.step_failures: Counter[tuple[str, str]] = Counter()  # (daemon, step)
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, latest: Callable[[], Snapshot | None]) -> Remediator:
        """With its own monitor client (the map watcher's stays on its thread)."""
        try:
            mon = make_client(config.cluster)
        except MonitorError as exc:
            log.warning("actions cannot reach the monitors: %s", exc)
            mon = None
        return cls(config.act, mon, latest, config.loop.probe_timeout_seconds)

    def counts(self) -> dict[str, Any]:
        """The counters and fences, as Snapshot fields."""
        with self._lock:
            return {
                "actions_total": dict(self.totals),
                "refusals_total": dict(self.refusals),
                "step_failures_total": dict(self.step_failures),
                "fenced": tuple(sorted(self.ledger.fenced())),
            }

    def consider(self, transitions: Iterable[Transition], cluster_map: ClusterMap | None) -> None:
        """Decide about each transition into a configured state; never blocks the loop."""
        wanted = {State(s) for s in self.config.on_states}
        for transition in transitions:
            if transition.new in wanted and not self._busy(transition.daemon):
                self._decide(transition, cluster_map)

    def _busy(self, daemon: str) -> bool:
        with self._lock:
            thread = self._running.get(daemon)
            return thread is not None and thread.is_alive()

    def _decide(self, transition: Transition, cluster_map: ClusterMap | None) -> None:
        daemon = transition.daemon
        snapshot = self.latest()
        canary_ok = self.canary.answers(self.probe_timeout) if self.canary else None
        situation = Situation(
            daemon=daemon,
            now=time.time(),
            reports=snapshot.osds if snapshot else (),
            cluster_map=cluster_map,
            canary_ok=canary_ok,
        )
        reason = refuse(situation, self.ledger.history(), self.config)
        event = Event(
            daemon, transition.new.value, transition.cause, self._pid(daemon), time.time()
        )
        audit = {"ceph_daemon": daemon, "evidence": transition.cause, "action": self.action}
        if reason:
            guard = reason.split(":", 1)[0]
            self._count("refused", guard)
            log.info("%s: not acting (%s)", daemon, reason)
            self.ledger.audit(**audit, guard=reason, result="refused")
        elif self.config.dry_run:
            self._count("dry_run")
            plan = describe(self.config, daemon)
            log.info("%s: dry-run: would %s (because: %s)", daemon, plan, event.cause)
            self.ledger.audit(**audit, guard="passed", result="dry_run")
        else:
            self.ledger.audit(**audit, guard="passed", result="started")
            self._start(event)

    def _pid(self, daemon: str) -> int | None:
        snapshot = self.latest()
        for report in snapshot.osds if snapshot else ():
            incarnation = report.observation.target.incarnation
            if report.observation.target.daemon == daemon and incarnation is not None:
                return incarnation.pid
        return None

    def _count(self, result: str, guard: str = "") -> None:
        with self._lock:
            self.totals[(self.action, result)] += 1
            if guard:
                self.refusals[guard] += 1

    def _start(self, event: Event, steps: list[str] | None = None) -> None:
        names = steps or list(self.config.steps)
        self.ledger.started(event.daemon, marks_down=bool(MAP_CHANGING.intersection(names)))
        thread = threading.Thread(
            target=self._remediate, args=(event, names), name=f"remediate-{event.daemon}"
        )
        with self._lock:
            self._running[event.daemon] = thread
        thread.start()

    def _remediate(self, event: Event, names: list[str]) -> None:
        all_steps = build_steps(self.config, self.mon, self.answered, self.stop_event)
        by_name = {step.name: step for step in all_steps}
        for name in names:
            step = by_name[name]
            try:
                if name == "fence":
                    # Recorded before it is set, so it is never forgotten; if it cannot be
                    # recorded, it is not set.
                    self.ledger.set_fence(event.daemon, event.pid)
                detail = step.run(event, self.config.step_timeout_seconds)
            except (StepError, OSError) as exc:
                self._failed(event, name, str(exc))
                return
            except Exception as exc:  # a bug in a step must not end this thread unrecorded
                log.exception("%s: %s raised", event.daemon, name)
                self._failed(event, name, f"unexpected {type(exc).__name__}: {exc}")
                return
            if name == "unfence":
                self.ledger.clear_fence(event.daemon)
            log.info("%s: %s done: %s", event.daemon, name, detail)
            self.ledger.audit(ceph_daemon=event.daemon, step=name, result="done", detail=detail)
        self._count("done")

    def _failed(self, event: Event, name: str, detail: str) -> None:
        self._count("failed")
        with self._lock:
            self.step_failures[(event.daemon, name)] += 1
        fenced = " (it stays fenced: noup is set)" if self._fenced(event.daemon) else ""
        log.warning("%s: %s failed: %s%s", event.daemon, name, detail, fenced)
        self.ledger.audit(ceph_daemon=event.daemon, step=name, result="failed", detail=detail)

    def _fenced(self, daemon: str) -> bool:
        return daemon in self.ledger.fenced()

    def answered(self, daemon: str, old_pid: int | None) -> bool:
        """True once a new process of the OSD sends its banner on every listener."""
        snapshot = self.latest()
        for report in snapshot.osds if snapshot else ():
            observation = report.observation
            incarnation = observation.target.incarnation
            if observation.target.daemon != daemon or incarnation is None:
                continue
            banners = observation.banners
            new = incarnation.pid != old_pid
            return new and bool(banners) and all(b.outcome is Outcome.OK for b in banners)
        return False

    def resume(self) -> None:
        """Fences left by an earlier run: verify and lift them, if the steps say so."""
        if self.config.dry_run or "unfence" not in self.config.steps:
            return
        steps: list[str] = [s for s in ("verify", "unfence") if s in self.config.steps]
        for daemon, fence in self.ledger.fenced().items():
            log.info("%s: resuming the remediation an earlier run left fenced", daemon)
            self._start(
                Event(daemon, "fenced", "fenced by an earlier run", fence.get("pid"), time.time()),
                steps,
            )

    def stop(self) -> None:
        """Stop waiting steps, close the canary; fences stay recorded."""
        self.stop_event.set()
        if self.canary is not None:
            self.canary.stop()
        for thread in list(self._running.values()):
            thread.join(timeout=self.config.step_timeout_seconds)
