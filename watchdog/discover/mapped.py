"""Discover stage, merge: what this host shows, labelled and completed with the OSD map.

The map names each address's messenger role (better than inferring it from bind order), and
lists OSDs that should be running here: an OSD whose metadata names this host, or whose
addresses this host holds, but for which no process exists is reported, not forgotten.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from watchdog.model import Listener, Role, Target

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from watchdog.model import ClusterMap, MapOsd


@dataclass(frozen=True, slots=True)
class HostIdentity:
    """Who this host is in ``osd metadata``: worked out here once, used by every stage.

    Ceph records the short host name by default; ``cluster.hostname`` overrides it when the
    OSDs booted under another name (a container's, a pod's).
    """

    names: frozenset[str]
    configured: str | None = None

    @classmethod
    def of(cls, configured: str | None) -> HostIdentity:
        """From ``cluster.hostname``, else from the kernel's host name."""
        if configured:
            return cls(frozenset({configured}), configured)
        name = socket.gethostname()
        return cls(frozenset({name, name.split(".", 1)[0]}))

    def name_in(self, cluster_map: ClusterMap | None, local: Sequence[Target]) -> str:
        """The one name the map knows this host by: the hostname of an OSD running here."""
        if self.configured:
            return self.configured
        if cluster_map is not None:
            for target in local:
                osd = cluster_map.osds.get(target.daemon)
                if osd is not None and osd.hostname in self.names:
                    return osd.hostname
        return min(self.names, key=len)  # the short name, as Ceph records it by default


def remote_sample(cluster_map: ClusterMap, me: str, vantages: int, limit: int) -> list[MapOsd]:
    """The other hosts' up OSDs this host probes as a second vantage point.

    Hosts are put in a ring in name order; an OSD is probed by the ``vantages`` hosts that
    follow its own. Every host computes the same ring from the same map, so each OSD is
    covered by that many other hosts (when there are that many), and each host's share is
    its ring neighbours' OSDs, not the whole cluster.
    """
    hosts = sorted({o.hostname for o in cluster_map.osds.values() if o.hostname} | {me})
    place = {host: i for i, host in enumerate(hosts)}
    chosen = [
        osd
        for osd in cluster_map.osds.values()
        if osd.up
        and osd.hostname
        and osd.hostname != me
        and 1 <= (place[me] - place[osd.hostname]) % len(hosts) <= vantages
    ]
    chosen.sort(key=lambda o: int(o.daemon.split(".", 1)[1]))
    return chosen[:limit]


def remote_targets(
    cluster_map: ClusterMap, me: str, vantages: int, limit: int, cluster: str
) -> list[Target]:
    """The sample of other hosts' OSDs this host probes, as targets of their public addresses."""
    return [
        Target(osd.daemon, cluster, None, public)
        for osd in remote_sample(cluster_map, me, vantages, limit)
        if (public := tuple(Listener(e) for e in osd.endpoints if e.role is Role.PUBLIC))
    ]


def label_roles(target: Target, cluster_map: ClusterMap) -> Target:
    """Relabel the target's listeners with the roles the map gives their addresses."""
    osd = cluster_map.osds.get(target.daemon)
    if osd is None:
        return target
    by_address = {(e.host, e.port): e for e in osd.endpoints}
    listeners = tuple(
        replace(li, endpoint=by_address.get((li.endpoint.host, li.endpoint.port), li.endpoint))
        for li in target.listeners
    )
    return replace(target, listeners=listeners)


def expected_here(
    cluster_map: ClusterMap, local: list[Target], hostnames: frozenset[str], cluster: str
) -> list[tuple[Target, MapOsd]]:
    """OSDs the map places on this host that have no process here."""
    present = {t.daemon for t in local}
    local_hosts = {li.endpoint.host for t in local for li in t.listeners}
    missing = []
    for osd in cluster_map.osds.values():
        if osd.daemon in present or not (osd.up or osd.in_):
            continue  # running here, or retired by an operator (down and out)
        here = osd.hostname in hostnames if osd.hostname else False
        # Without metadata, an OSD that was up on one of our addresses belongs here too.
        here = here or (osd.hostname is None and any(e.host in local_hosts for e in osd.endpoints))
        if here:
            listeners = tuple(Listener(e, present=False) for e in osd.endpoints)
            missing.append((Target(osd.daemon, cluster, None, listeners), osd))
    return missing


def not_running(
    targets: Sequence[Target],
    known: Mapping[str, Target],
    placed: ClusterMap | None,
    host: HostIdentity,
    cluster: str,
) -> list[Target]:
    """OSDs seen before (``known``), or placed on this host by the map, with no process now.

    ``placed`` is the map only when local discovery worked this cycle: after a failed one,
    the map saying an OSD belongs here is no evidence that its process is gone.
    """
    missing: dict[str, Target] = {}
    if placed is not None:
        local = [t for t in targets if t.incarnation is not None]
        for target, _ in expected_here(placed, local, host.names, cluster):
            missing[target.daemon] = replace(target, not_running=True)
    seen = {t.daemon for t in targets}
    for daemon, target in known.items():
        if daemon not in seen and daemon not in missing:
            missing[daemon] = replace(target, not_running=True, blind_reason="")
    return list(missing.values())
