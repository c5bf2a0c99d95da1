"""Probe stage, listen prober: accept-queue length vs backlog per listener, and heartbeat peers.

Both come from netlink sock_diag (see ``sockdiag`` for why not /proc/net/tcp): the cycle's one
LISTEN dump (taken by discovery), and, only for OSDs whose client path failed, one dump of
established sockets filtered in the kernel to their heartbeat ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.host import sockdiag
from watchdog.model import HEARTBEAT_ROLES, ListenSample, Role, Target

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


def listen_samples(
    target: Target, listening: Mapping[int, sockdiag.TcpSocket]
) -> tuple[ListenSample, ...]:
    """Queue and backlog of each of the target's listeners that still exists."""
    samples = []
    for listener in target.listeners:
        sock = listening.get(listener.inode) if listener.inode is not None else None
        if sock is not None:
            samples.append(ListenSample(listener.endpoint, sock.queue, sock.backlog))
    return tuple(samples)


def heartbeat_ports(target: Target) -> set[int]:
    """Local ports that carry peers' heartbeats (every non-public port when roles are unknown)."""
    roles = {e.role for e in target.endpoints}
    wanted = HEARTBEAT_ROLES if roles & HEARTBEAT_ROLES else {Role.UNKNOWN, Role.CLUSTER}
    return {e.port for e in target.endpoints if e.role in wanted}


def heartbeat_connections(targets: Iterable[Target]) -> dict[str, int]:
    """Accepted connections into each target's heartbeat listeners.

    A connection still waiting in an accept queue is ESTABLISHED in the kernel too, but it has
    no file yet, so its inode is 0: only sockets with an inode were accepted by the OSD and
    carry heartbeats.
    """
    ports = {t.daemon: heartbeat_ports(t) for t in targets if t.incarnation is not None}
    every_port = set().union(*ports.values()) if ports else set()
    if not every_port:
        return {}
    accepted = [s for s in sockdiag.dump_established(every_port) if s.inode != 0]
    return {daemon: sum(1 for s in accepted if s.port in mine) for daemon, mine in ports.items()}


class ListenProbe:
    """Accept queue and backlog of every listener of every target, from the cycle's one dump.

    Discovery already dumped the host's LISTEN sockets this cycle; that dump is handed on
    rather than taken twice.
    """

    name = "listen"

    def __init__(self, listening: Mapping[int, sockdiag.TcpSocket]) -> None:
        self.listening = listening

    def run(
        self, targets: Sequence[Target], *, timeout: float
    ) -> dict[str, tuple[ListenSample, ...]]:
        """Samples per daemon (absent listeners have no sample)."""
        del timeout  # no I/O: the dump was taken by discovery
        return {t.daemon: listen_samples(t, self.listening) for t in targets if t.incarnation}


class HeartbeatProbe:
    """Accepted peer connections on heartbeat listeners; run only for OSDs that look dead."""

    name = "heartbeat"

    def run(self, targets: Sequence[Target], *, timeout: float) -> dict[str, int]:
        """Connections per daemon."""
        del timeout
        return heartbeat_connections(targets)
