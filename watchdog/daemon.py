"""The loop: discover -> probe -> assess -> act -> publish a snapshot, every interval.

Everything the loop learns ends in an immutable ``Snapshot``; the exporter and the CLI read
only that. Shutdown and reload are requested through flags the signal handlers set, and the
loop waits on an ``Event``, so SIGTERM ends a wait at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from watchdog import act
from watchdog.assess import client_banners, step
from watchdog.config import Config, load_config
from watchdog.discover import procfs
from watchdog.discover.local import LocalDiscovery
from watchdog.discover.static import static_targets
from watchdog.errors import ConfigError
from watchdog.model import (
    FdOutcome,
    FdSample,
    Observation,
    OsdReport,
    OsdStatus,
    ProbeRun,
    Snapshot,
    State,
    Target,
    Transition,
)
from watchdog.notify import Notifier
from watchdog.probes import run_probe, sockdiag
from watchdog.probes.fds import FdProbe
from watchdog.probes.listen import HeartbeatProbe, ListenProbe
from watchdog.probes.tcp import BannerProbe
from watchdog.report import summary_line

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Memory:
    """What the loop carries from one cycle to the next, per OSD."""

    observation: Observation
    status: OsdStatus
    transitions: Counter[State] = field(default_factory=Counter)
    restarts: int = 0


class Watchdog:
    """Owns the probers, the per-OSD memory and the latest snapshot."""

    def __init__(self, config: Config, config_path: Path | None = None) -> None:
        self.config_path = config_path
        self.stop_event = threading.Event()
        self._reload_requested = threading.Event()
        self._memory: dict[str, _Memory] = {}
        self._actions_total: Counter[tuple[str, str]] = Counter()
        self._snapshot: Snapshot | None = None
        self._cycles = 0
        self._apply(config)

    def _apply(self, config: Config) -> None:
        self.config = config
        found = config.discovery
        self.discovery = LocalDiscovery(found.proc_root, found.process_names, found.clusters)
        self.banner = BannerProbe(config.loop.max_in_flight, config.loop.cycle_deadline)
        self.fds = FdProbe(found.proc_root, config.assess.fd_trend_window_seconds)
        self.listen = ListenProbe()
        self.heartbeat = HeartbeatProbe()

    def latest(self) -> Snapshot | None:
        """The last published snapshot (read by the exporter from other threads)."""
        return self._snapshot

    def stop(self) -> None:
        """Ask the loop to end after the current step."""
        self.stop_event.set()

    def request_reload(self) -> None:
        """Ask the loop to re-read its config file before the next cycle."""
        self._reload_requested.set()

    def reload(self) -> bool:
        """Re-read the config file; a bad file keeps the old config and says why."""
        self._reload_requested.clear()
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error("reload failed, keeping the previous configuration: %s", exc)  # noqa: TRY400
            return False
        self._apply(config)
        log.info("configuration reloaded from %s", self.config_path or "defaults")
        return True

    def run(
        self,
        on_snapshot: Callable[[Snapshot], None] | None = None,
        *,
        notifier: Notifier | None = None,
    ) -> None:
        """Cycle every interval until stopped; a cycle that overruns starts the next at once."""
        notify = notifier or Notifier({})
        ready = False
        while not self.stop_event.is_set():
            if self._reload_requested.is_set():
                notify.reloading()
                self.reload()
                ready = False  # systemd waits for READY=1 again after RELOADING=1
            started = time.monotonic()
            snapshot = self.cycle()
            if on_snapshot is not None:
                on_snapshot(snapshot)
            status = summary_line(snapshot)
            if not ready:
                notify.ready(status)
                ready = True
            notify.alive(status)
            self._wait_until(started + self.config.loop.interval_seconds, notify)
        notify.stopping()

    def _wait_until(self, deadline: float, notify: Notifier) -> None:
        """Wait for the next cycle, sending keep-alives if the interval outlasts the watchdog."""
        every = notify.keepalive_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if every is None or remaining <= every:
                self.stop_event.wait(remaining)
                return
            if self.stop_event.wait(every):
                return
            notify.alive()

    def cycle(self) -> Snapshot:
        """One pass of the whole pipeline; publishes and returns the snapshot."""
        started = time.monotonic()
        targets, runs = self.discover_once()
        observations, probe_runs = self._probe(targets)
        transitions = self._assess(observations)
        actions = act.plan(transitions, self.config.act)
        for action in actions:
            self._actions_total[(action.action, "dry_run" if action.dry_run else "done")] += 1
        self._cycles += 1
        ended = time.monotonic()
        self._snapshot = Snapshot(
            taken_at=time.time(),
            monotonic_at=ended,
            cycle_seconds=ended - started,
            cycles=self._cycles,
            osds=tuple(self._report(name) for name in sorted(self._memory, key=_osd_order)),
            listen_overflows=procfs.listen_overflows(self.config.discovery.proc_root),
            probe_runs=(*runs, *probe_runs),
            actions=tuple(actions),
            actions_total=dict(self._actions_total),
        )
        return self._snapshot

    def discover_once(self) -> tuple[list[Target], list[ProbeRun]]:
        """Static targets plus every local OSD process and its listeners."""
        found = static_targets(self.config.discovery.static_targets)
        if not self.config.discovery.local:
            return found, []
        started = time.monotonic()
        try:
            local = self.discovery.discover(sockdiag.dump_listeners())
        except (sockdiag.SockDiagError, OSError) as exc:
            log.warning("local discovery failed: %s", exc)
            return found, [ProbeRun("discover", time.monotonic() - started, str(exc))]
        return local + found, [ProbeRun("discover", time.monotonic() - started)]

    def _probe(self, targets: list[Target]) -> tuple[list[Observation], list[ProbeRun]]:
        timeout = self.config.loop.probe_timeout_seconds
        listens, listen_run = run_probe(self.listen, targets, timeout)
        banners, banner_run = run_probe(self.banner, targets, timeout)
        fds, fd_run = run_probe(self.fds, targets, timeout)
        self.fds.forget_except({t.incarnation for t in targets if t.incarnation})
        wall = time.time()  # create_time is wall-clock, so the age must be too
        observations = [
            Observation(
                target=t,
                alive=fds.get(t.daemon, FdSample(FdOutcome.OK)).outcome is not FdOutcome.GONE,
                banners=banners.get(t.daemon, ()),
                fds=fds.get(t.daemon, FdSample(FdOutcome.NOT_LOCAL)),
                listens=listens.get(t.daemon, ()),
                process_age_seconds=_age(t, wall),
            )
            for t in targets
        ]
        # Heartbeat evidence is only needed where the client path failed: look only there.
        failing = [o.target for o in observations if _client_failing(o)]
        beats, beat_run = run_probe(self.heartbeat, failing, timeout)
        observations = [_with_heartbeats(o, beats.get(o.target.daemon)) for o in observations]
        seen = {t.daemon for t in targets}
        gone = [
            Observation(m.observation.target, alive=False)
            for d, m in self._memory.items()
            if d not in seen
        ]
        return observations + gone, [listen_run, banner_run, fd_run, beat_run]

    def _assess(self, observations: list[Observation]) -> list[Transition]:
        now = time.monotonic()
        transitions = []
        for obs in observations:
            daemon = obs.target.daemon
            memory = self._memory.get(daemon)
            status, transition = step(
                memory.status if memory else None, obs, self.config.assess, now
            )
            if memory is None:
                memory = self._memory[daemon] = _Memory(obs, status)
            memory.status = status
            memory.observation = obs
            if transition is None:
                continue
            transitions.append(transition)
            memory.transitions[transition.new] += 1
            if transition.new is State.STARTING and transition.old is not None:
                memory.restarts += 1
            log.info(
                "%s: %s -> %s: %s",
                daemon,
                transition.old or "(new)",
                transition.new,
                transition.cause,
            )
        return transitions

    def _report(self, daemon: str) -> OsdReport:
        memory = self._memory[daemon]
        return OsdReport(
            observation=memory.observation,
            status=memory.status,
            transitions=dict(memory.transitions),
            restarts=memory.restarts,
        )


def _age(target: Target, wall: float) -> float | None:
    if target.incarnation is None:
        return None
    return max(0.0, wall - target.incarnation.create_time)


def _client_failing(observation: Observation) -> bool:
    return any(b.outcome.is_failure for b in client_banners(observation))


def _with_heartbeats(observation: Observation, count: int | None) -> Observation:
    return observation if count is None else replace(observation, heartbeat_connections=count)


def _osd_order(daemon: str) -> tuple[int, str]:
    number = daemon.removeprefix("osd.")
    return (int(number), daemon) if number.isdigit() else (1 << 30, daemon)
