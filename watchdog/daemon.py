"""The loop: discover -> probe -> assess -> publish a snapshot -> act, every interval.

Each stage runs once per cycle, in that order, on this cycle's facts: discovery's targets
and LISTEN dump go to the probes, their observations to the per-OSD memory (the state
machine), its reports into an immutable ``Snapshot``; remediation is handed that snapshot
and this cycle's transitions and returns at once (its steps run on threads of their own).
The exporter and the CLI read only the snapshot. Shutdown and reload are requested through
flags the signal handlers set, and the loop waits on an ``Event``, so SIGTERM ends a wait at
once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from watchdog.act.remediation import Remediator
from watchdog.config import Config, load_config
from watchdog.discover.mapwatch import MapWatcher
from watchdog.discover.stage import Discovery
from watchdog.errors import ConfigError
from watchdog.export_mgr import MgrReporter
from watchdog.memory import OsdMemory
from watchdog.model import ClusterMap, Snapshot, State, Transition
from watchdog.notify import Notifier
from watchdog.probes.observe import Probed, Probers
from watchdog.report import summary_line

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from watchdog.discover.stage import Found
    from watchdog.model import ProbeRun, RemoteResult

log = logging.getLogger(__name__)


class Watchdog:
    """Wires the stages into the loop; owns the latest snapshot."""

    def __init__(
        self, config: Config, config_path: Path | None = None, *, acting: bool = True
    ) -> None:
        self.config_path = config_path
        self.stop_event = threading.Event()
        self._reload_requested = threading.Event()
        self.memory = OsdMemory()
        self.acting = acting  # False for one-shot commands: they never act
        self.remediator: Remediator | None = None
        self.reporter: MgrReporter | None = None
        self._snapshot: Snapshot | None = None
        self._cycles = 0
        self._self_stalls = 0
        self.map_watcher: MapWatcher | None = None
        self._watching = False  # the watcher's thread runs (the daemon), or not (check)
        self.discovery = Discovery(config)
        self.probers = Probers.from_config(config)
        self._apply(config)

    def _apply(self, config: Config, *, reloading: bool = False) -> None:
        """The config's settings to every part; on a reload, in place where state lives."""
        self.config = config
        self._apply_map_watcher(config)
        if self.remediator is not None:
            # Never stopped on a reload: running remediations finish under their settings,
            # and the guards' history, the lock and the fences stay with the same owner.
            self.remediator.reconfigure(config)
        elif self.acting:
            self.remediator = Remediator.from_config(config)
        self._apply_reporter(config)
        if reloading:
            # A reload swaps settings, never state: remembered listeners (a zombie whose
            # public listener closed) and the fd trend outlive it.
            self.discovery.configure(config)
            self.probers = Probers.from_config(config, keep=self.probers)

    def _apply_map_watcher(self, config: Config) -> None:
        """The map watcher, reconfigured in place while the config gives a cluster view.

        Its map and counters stay; it is made, or stopped, only when that changes.
        """
        watcher = self.map_watcher
        if watcher is not None and watcher.reconfigure(config.cluster):
            return
        if watcher is not None:
            watcher.stop()
        self.map_watcher = MapWatcher.from_config(config.cluster)
        if self._watching and self.map_watcher is not None:
            self.map_watcher.start()

    def _apply_reporter(self, config: Config) -> None:
        """Reporting to the mgr module: kept (with its queued events) across reloads."""
        if self.reporter is not None and config.report.enabled:
            self.reporter.reconfigure(config)
            return
        if self.reporter is not None:  # turned off
            self.reporter.stop()
            self._listen_audit(self.reporter, add=False)
            self.reporter = None
        if config.report.enabled and self.acting:
            self.reporter = MgrReporter(config)
            self._listen_audit(self.reporter, add=True)
            if self._watching:
                self.reporter.start()

    def _listen_audit(self, reporter: MgrReporter, *, add: bool) -> None:
        if self.remediator is None:
            return
        listeners = self.remediator.ledger.listeners
        if add:
            listeners.append(reporter.audited)
        else:
            listeners.remove(reporter.audited)

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
        self._apply(config, reloading=True)
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
        if self.reporter is not None:
            self.reporter.start()
        try:
            self._loop(on_snapshot, notify)
        finally:
            self._watching = False
            if self.reporter is not None:
                self.reporter.stop()
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
        found = self.discovery.run(cluster_map, self.memory.known())
        timeout = self.config.loop.probe_timeout_seconds
        probed = self.probers.observe(found.targets, found.listening, cluster_map, timeout)
        transitions = self._assess(probed, time.monotonic() - started)
        remote = self.probers.observe_remote(found.remote, timeout)
        self._snapshot = self._publish(started, found, probed, remote)
        if self.reporter is not None:
            self.reporter.offer(self._snapshot)  # returns at once: its thread sends
        if self.remediator is not None:
            # On this cycle's states, after they are published; it returns at once.
            self.remediator.consider(self._snapshot, transitions)
        return self._snapshot

    def _assess(self, probed: Probed, probing: float) -> list[Transition]:
        loop = self.config.loop
        if probing > loop.cycle_deadline + loop.probe_timeout_seconds:
            # Probes end by the deadline; overrunning it by a whole timeout means this process
            # was frozen or starved (SIGSTOP, a stuck hypervisor). Timeouts measured across
            # the freeze are ours, not the OSDs': judge nothing from this cycle.
            self._self_stalls += 1
            log.warning(
                "the watchdog itself stalled (probing took %.1fs, deadline %.1fs); "
                "suspending judgment for this cycle",
                probing,
                loop.cycle_deadline,
            )
            return []
        transitions = self.memory.record(probed.observations, self.config.assess, time.monotonic())
        if self.map_watcher is not None and any(t.new is State.SUSPECT for t in transitions):
            self.map_watcher.wake()  # confirm with the monitors now, not at the next refresh
        return transitions

    def _publish(
        self,
        started: float,
        found: Found,
        probed: Probed,
        remote: tuple[tuple[RemoteResult, ...], list[ProbeRun]],
    ) -> Snapshot:
        self._cycles += 1
        ended = time.monotonic()
        return Snapshot(
            taken_at=time.time(),
            monotonic_at=ended,
            cycle_seconds=ended - started,
            cycles=self._cycles,
            osds=self.memory.reports(),
            listen_overflows=probed.listen_overflows,
            probe_runs=(*found.runs, *probed.runs, *remote[1]),
            **self._action_counts(),
            map_status=self.map_watcher.status() if self.map_watcher else None,
            self_stalls=self._self_stalls,
            report_status=self.reporter.status if self.reporter is not None else None,
            host=found.host,
            remote=remote[0],
        )

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
