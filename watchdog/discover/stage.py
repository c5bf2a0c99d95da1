"""Discover stage, whole: every target of this cycle, and the LISTEN dump it was read from.

The targets are the local OSD processes (listeners labelled with the map's roles), the static
targets, and the OSDs that should run here and do not: seen in an earlier cycle, or placed on
this host by the map. Those come out marked ``not_running``, so the probe stage need not
know why they are there. The host's LISTEN sockets are dumped once here and handed on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from watchdog.discover.local import LocalDiscovery
from watchdog.discover.mapped import HostIdentity, label_roles, not_running, remote_targets
from watchdog.discover.static import static_targets
from watchdog.host import sockdiag
from watchdog.model import ProbeRun

if TYPE_CHECKING:
    from collections.abc import Mapping

    from watchdog.config import Config
    from watchdog.model import ClusterMap, Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Found:
    """What discovery hands to the probe stage."""

    targets: list[Target]
    runs: list[ProbeRun]
    host: str  # the name the map knows this host by (see HostIdentity)
    listening: Mapping[int, sockdiag.TcpSocket] = field(default_factory=dict)  # by inode
    remote: list[Target] = field(default_factory=list)  # other hosts' OSDs to probe from here


class Discovery:
    """The discover stage; keeps each incarnation's remembered listeners across reloads."""

    def __init__(self, config: Config) -> None:
        found = config.discovery
        self.local = LocalDiscovery(found.proc_root, found.process_names, found.clusters)
        self.configure(config)

    def configure(self, config: Config) -> None:
        """New settings; what was remembered stays (a reload swaps settings, never state)."""
        found = config.discovery
        self.local.configure(found.proc_root, found.process_names, found.clusters)
        self.config = config
        self.static = static_targets(found.static_targets)  # they change only with the config
        self.host = HostIdentity.of(config.cluster.hostname)

    def run(self, cluster_map: ClusterMap | None, known: Mapping[str, Target]) -> Found:
        """Every target of this cycle; ``known``: the OSDs earlier cycles saw, by daemon name."""
        static = list(self.static)
        if not self.config.discovery.local:
            gone = self._gone(static, known, None)
            host = self.host.name_in(cluster_map, static)
            return Found(static + gone, [], host, remote=self._remote(cluster_map, host))
        started = time.monotonic()
        try:
            local, listening = self.local.discover(sockdiag.dump_listeners)
        except OSError as exc:  # SockDiagError is one
            return self._failed(exc, known, static, cluster_map, time.monotonic() - started)
        if cluster_map is not None:
            local = [label_roles(t, cluster_map) for t in local]
        targets = local + static
        gone = self._gone(targets, known, cluster_map)
        run = ProbeRun("discover", time.monotonic() - started)
        host = self.host.name_in(cluster_map, targets)
        remote = self._remote(cluster_map, host)
        return Found(targets + gone, [run], host, listening, remote)

    def _remote(self, cluster_map: ClusterMap | None, host: str) -> list[Target]:
        report = self.config.report
        if cluster_map is None or not (report.enabled and report.remote_probes):
            return []
        return remote_targets(
            cluster_map,
            host,
            report.remote_vantages,
            report.max_remote_osds,
            self.config.cluster.name,
        )

    def _gone(
        self, targets: list[Target], known: Mapping[str, Target], placed: ClusterMap | None
    ) -> list[Target]:
        return not_running(targets, known, placed, self.host, self.config.cluster.name)

    def _failed(
        self,
        exc: Exception,
        known: Mapping[str, Target],
        static: list[Target],
        cluster_map: ClusterMap | None,
        took: float,
    ) -> Found:
        # Our failure (our own fd limit, say), not the OSDs': every process seen before is
        # unobservable this cycle, never "exited"; and the map saying an OSD belongs here is
        # no evidence that its process is gone.
        log.warning("local discovery failed: %s", exc)
        reason = f"watchdog: local discovery failed: {exc}"
        blind = [
            replace(t, blind_reason=reason, not_running=False)
            for t in known.values()
            if t.incarnation is not None
        ]
        targets = blind + static
        gone = self._gone(targets, known, None)
        run = ProbeRun("discover", took, str(exc))
        return Found(targets + gone, [run], self.host.name_in(cluster_map, targets))
