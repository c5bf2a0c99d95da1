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
from typing import TYPE_CHECKING, Any

from watchdog.act.remediation import Remediator
from watchdog.assess import step
from watchdog.config import Config, load_config
from watchdog.discover.local import LocalDiscovery
from watchdog.discover.mapped import label_roles, not_running
from watchdog.discover.mapwatch import MapWatcher
from watchdog.discover.static import static_targets
from watchdog.errors import ConfigError
from watchdog.host import procfs, sockdiag
from watchdog.model import (
    ClusterMap,
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
from watchdog.probes.observe import Probers
from watchdog.report import summary_line

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
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

    def __init__(
        self, config: Config, config_path: Path | None = None, *, acting: bool = True
    ) -> None:
        self.config_path = config_path
        self.stop_event = threading.Event()
        self._reload_requested = threading.Event()
        self._memory: dict[str, _Memory] = {}
        self.acting = acting  # False for one-shot commands: they never act
        self.remediator: Remediator | None = None
        self._snapshot: Snapshot | None = None
        self._cycles = 0
        self._self_stalls = 0
        self.map_watcher: MapWatcher | None = None
        self._watching = False  # the watcher's thread runs (the daemon), or not (check)
        found = config.discovery
        self.discovery = LocalDiscovery(found.proc_root, found.process_names, found.clusters)
        self.probers = Probers.from_config(config)
        self._apply(config)

    def _apply(self, config: Config) -> None:
        self.config = config
        if self.map_watcher is not None:
            self.map_watcher.stop()
        self.map_watcher = MapWatcher.from_config(config.cluster)
        if self._watching and self.map_watcher is not None:
            self.map_watcher.start()
        if self.remediator is not None:
            # Never stopped on a reload: running remediations finish under their settings,
            # and the guards' history, the lock and the fences stay with the same owner.
            self.remediator.reconfigure(config)
        elif self.acting:
            self.remediator = Remediator.from_config(config)
        # A reload swaps settings, never state: remembered listeners (a zombie whose public
        # listener closed) and the fd trend outlive it.
        found = config.discovery
        self.discovery.configure(found.proc_root, found.process_names, found.clusters)
        self.probers = Probers.from_config(config, keep=self.probers)

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
        self._watching = True
        if self.map_watcher is not None:
            self.map_watcher.start()
        if self.remediator is not None:
            self.remediator.resume()
        try:
            self._loop(on_snapshot, notify)
        finally:
            self._watching = False
            if self.map_watcher is not None:
                self.map_watcher.stop()
            if self.remediator is not None:
                self.remediator.stop()

    def _loop(self, on_snapshot: Callable[[Snapshot], None] | None, notify: Notifier) -> None:
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
        cluster_map = self.fresh_map()
        targets, runs, listening = self.discover_once(cluster_map)
        # When discovery failed, the map's "placed here" is no evidence that a process is gone.
        placed_map = cluster_map if all(not r.error for r in runs) else None
        observations, probe_runs = self._probe(targets, listening, cluster_map, placed_map)
        probing = time.monotonic() - started
        if probing > self.config.loop.cycle_deadline + self.config.loop.probe_timeout_seconds:
            # Probes end by the deadline; overrunning it by a whole timeout means this process
            # was frozen or starved (SIGSTOP, a stuck hypervisor). Timeouts measured across
            # the freeze are ours, not the OSDs': judge nothing from this cycle.
            self._self_stalls += 1
            log.warning(
                "the watchdog itself stalled (probing took %.1fs, deadline %.1fs); "
                "suspending judgment for this cycle",
                probing,
                self.config.loop.cycle_deadline,
            )
            transitions = []
        else:
            transitions = self._assess(observations)
        overflows, netstat = self._listen_overflows()
        self._cycles += 1
        ended = time.monotonic()
        self._snapshot = Snapshot(
            taken_at=time.time(),
            monotonic_at=ended,
            cycle_seconds=ended - started,
            cycles=self._cycles,
            osds=tuple(self._report(name) for name in sorted(self._memory, key=_osd_order)),
            listen_overflows=overflows,
            probe_runs=(*runs, *probe_runs, netstat),
            **self._action_counts(),
            map_status=self.map_watcher.status() if self.map_watcher else None,
            self_stalls=self._self_stalls,
        )
        if self.remediator is not None:
            # On this cycle's states, after they are published; it returns at once.
            self.remediator.consider(self._snapshot, transitions)
        return self._snapshot

    def _listen_overflows(self) -> tuple[int | None, ProbeRun]:
        started = time.monotonic()
        try:
            found = procfs.listen_overflows(self.config.discovery.proc_root)
        except (OSError, ValueError) as exc:
            return None, ProbeRun("netstat", time.monotonic() - started, str(exc))
        return found, ProbeRun("netstat", time.monotonic() - started)

    def _action_counts(self) -> dict[str, Any]:
        return self.remediator.counts() if self.remediator is not None else {}

    def refresh_map(self) -> None:
        """Read the OSD map now, on this thread (for one-shot commands without the watcher)."""
        if self.map_watcher is not None:
            self.map_watcher.refresh()

    def fresh_map(self) -> ClusterMap | None:
        """The OSD map, if one was read recently enough to judge from."""
        if self.map_watcher is None:
            return None
        return self.map_watcher.status().fresh(time.monotonic(), self.config.cluster.max_age)

    def discover_once(
        self, cluster_map: ClusterMap | None = None
    ) -> tuple[list[Target], list[ProbeRun], Sequence[sockdiag.TcpSocket]]:
        """Static targets plus every local OSD process and its listeners (roles from the map).

        Also returns the host's LISTEN dump, taken once here and handed on to the probes.
        """
        found = static_targets(self.config.discovery.static_targets)
        if not self.config.discovery.local:
            return found, [], ()
        started = time.monotonic()
        try:
            listening = sockdiag.dump_listeners()
            local = self.discovery.discover(listening)
        except (sockdiag.SockDiagError, OSError) as exc:
            # Our failure (our own fd limit, say), not the OSDs': those seen before are
            # unobservable this cycle, never "exited".
            log.warning("local discovery failed: %s", exc)
            reason = f"watchdog: local discovery failed: {exc}"
            known = [m.observation.target for m in self._memory.values()]
            blind = [replace(t, blind_reason=reason) for t in known if t.incarnation is not None]
            return blind + found, [ProbeRun("discover", time.monotonic() - started, str(exc))], ()
        if cluster_map is not None:
            local = [label_roles(t, cluster_map) for t in local]
        return local + found, [ProbeRun("discover", time.monotonic() - started)], listening

    def _probe(
        self,
        targets: list[Target],
        listening: Sequence[sockdiag.TcpSocket],
        cluster_map: ClusterMap | None,
        placed: ClusterMap | None,
    ) -> tuple[list[Observation], list[ProbeRun]]:
        observations, runs = self.probers.observe(
            targets, listening, cluster_map, self.config.loop.probe_timeout_seconds
        )
        known = {daemon: m.observation.target for daemon, m in self._memory.items()}
        gone = not_running(targets, known, cluster_map, placed, self.config.cluster)
        return observations + gone, runs

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
            if transition.new is State.SUSPECT and self.map_watcher is not None:
                self.map_watcher.wake()  # confirm with the monitors now, not at the next refresh
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


def _osd_order(daemon: str) -> tuple[int, str]:
    number = daemon.removeprefix("osd.")
    return (int(number), daemon) if number.isdigit() else (1 << 30, daemon)
