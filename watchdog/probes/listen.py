"""Probe stage, listen prober: accept-queue length vs backlog per listener, and heartbeat peers.

Both come from netlink sock_diag (see ``sockdiag`` for why not /proc/net/tcp): the cycle's one
LISTEN dump (taken by discovery), and, only for OSDs whose client path failed, one dump of
established sockets filtered in the kernel to their heartbeat ports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.host import netns, sockdiag
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
    # One dump per network namespace: the host's, and each pod's an OSD lives in.
    by_space: dict[int | None, list[Target]] = {}
    for target in targets:
        if target.incarnation is not None:
            by_space.setdefault(target.netns, []).append(target)
    counts: dict[str, int] = {}
    for space, members in by_space.items():
        ports = {t.daemon: heartbeat_ports(t) for t in members}
        every_port = set().union(*ports.values())
        if not every_port:
            continue
        dumped = _established(space, members, every_port)
        if dumped is None:
            continue  # no count: the heartbeat listeners' answers stand in for it
        accepted = [s for s in dumped if s.inode != 0]
        for daemon, mine in ports.items():
            counts[daemon] = sum(1 for s in accepted if s.port in mine)
    return counts


def _established(
    space: int | None, members: Sequence[Target], ports: set[int]
) -> list[sockdiag.TcpSocket] | None:
    """ESTABLISHED sockets on these ports, in the host's namespace or inside a pod's."""
    if space is None:
        return list(sockdiag.dump_established(ports))
    incarnation = members[0].incarnation
    if incarnation is None:
        return None
    try:
        return netns.run_in(incarnation.pid, lambda: list(sockdiag.dump_established(ports)))
    except OSError:
        return None


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
