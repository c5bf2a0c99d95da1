"""Discover stage, local: find ceph-osd processes on this host and every listener they hold.

A process is identified by pid + create_time (an incarnation). Each incarnation's listeners
are remembered, so one that disappears while the process lives is still probed (and comes
back refused) instead of being silently forgotten. Ceph binds its messengers in a fixed order
(public, cluster, hb_front, hb_back; v2 then v1 inside each), so on first sight the roles of
a full set of listeners follow from their fd numbers (seen in ceph-samples/osd-port-roles.txt).
When a messenger rebinds (Ceph does that to the cluster/heartbeat messengers after a
mark-down) the new listeners replace the vanished ones in the same order.
"""

from __future__ import annotations

import logging
from collections import ChainMap
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from watchdog.host import netns, procfs, sockdiag
from watchdog.model import Endpoint, Incarnation, Listener, Msgr, Role, Target

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

    from watchdog.host.sockdiag import TcpSocket

    Dump = Callable[[Collection[int] | None], Mapping[int, TcpSocket]]

log = logging.getLogger(__name__)

PROC = Path("/proc")
ROLE_ORDER = (Role.PUBLIC, Role.CLUSTER, Role.HB_FRONT, Role.HB_BACK)
ACCESS_HINT = "run as the OSDs' uid, or with CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE"


@dataclass(frozen=True, slots=True)
class OsdProcess:
    """A running process that looks like an OSD, named from its command line."""

    daemon: str
    cluster: str
    incarnation: Incarnation


def _owner(proc_root: Path, pid: int) -> str:
    try:
        return f"uid {(proc_root / str(pid)).stat().st_uid}"
    except OSError:
        return "an unknown uid"


def parse_osd_cmdline(cmdline: Sequence[str]) -> tuple[str, str] | None:
    """Return (daemon, cluster) from a ceph-osd command line, or None without an id."""
    osd_id: str | None = None
    cluster = "ceph"
    args = list(cmdline[1:])
    for i, arg in enumerate(args):
        value = args[i + 1] if i + 1 < len(args) else ""
        if arg in {"-i", "--id"}:
            osd_id = value
        elif arg.startswith("--id="):
            osd_id = arg.removeprefix("--id=")
        elif arg in {"-n", "--name"} and value.startswith("osd."):
            osd_id = value.removeprefix("osd.")
        elif arg == "--cluster":
            cluster = value
        elif arg.startswith("--cluster="):
            cluster = arg.removeprefix("--cluster=")
    if osd_id is None or not osd_id.isdigit():
        return None
    return f"osd.{int(osd_id)}", cluster


def find_osd_processes(
    names: Iterable[str], clusters: Iterable[str] = (), proc_root: Path = PROC
) -> list[OsdProcess]:
    """Every process whose name is in ``names`` and whose command line names an OSD id."""
    wanted, only = set(names), set(clusters)
    found: dict[tuple[str, str], OsdProcess] = {}
    # psutil reads the procfs it is told to (its documented PROCFS_PATH): otherwise a
    # watchdog given a host's /proc mounted elsewhere would name the processes found there
    # from its own table. Process-wide, and one watchdog watches one proc root.
    psutil.PROCFS_PATH = str(proc_root)
    for pid in procfs.processes_named(proc_root, wanted):
        try:
            proc = psutil.Process(pid)
            with proc.oneshot():
                name, cmdline, started = proc.name(), proc.cmdline(), proc.create_time()
        except psutil.Error:
            continue  # gone since the scan, or not ours to read
        if name not in wanted or not cmdline:
            continue
        parsed = parse_osd_cmdline(cmdline)
        if parsed is None or (only and parsed[1] not in only):
            continue
        osd = OsdProcess(parsed[0], parsed[1], Incarnation(pid, started))
        key = (osd.cluster, osd.daemon)
        # Two processes for one id happen for a moment during a restart: the newer one counts.
        if key not in found or found[key].incarnation.create_time < osd.incarnation.create_time:
            found[key] = osd
    return sorted(found.values(), key=lambda o: (o.cluster, int(o.daemon[4:])))


def infer_endpoints(sockets: Sequence[TcpSocket]) -> list[Endpoint]:
    """Label listeners (already sorted by fd) with role and protocol from Ceph's bind order."""
    if len(sockets) == 2 * len(ROLE_ORDER):
        labels = [(role, msgr) for role in ROLE_ORDER for msgr in (Msgr.V2, Msgr.V1)]
    elif len(sockets) == len(ROLE_ORDER):
        labels = [(role, Msgr.ANY) for role in ROLE_ORDER]
    else:
        labels = [(Role.UNKNOWN, Msgr.ANY)] * len(sockets)
    return [
        Endpoint(s.host, s.port, msgr, role)
        for s, (role, msgr) in zip(sockets, labels, strict=True)
    ]


@dataclass(slots=True)
class _Memory:
    """What we remember of one incarnation."""

    listeners: dict[int, Listener] = field(default_factory=dict)  # inode -> listener
    complete: bool = False  # roles were inferred from a full set


class LocalDiscovery:
    """Stateful scanner: call ``discover`` once per cycle with the current LISTEN dump."""

    def __init__(self, proc_root: Path, names: Iterable[str], clusters: Iterable[str] = ()) -> None:
        self.configure(proc_root, names, clusters)
        self._memory: dict[Incarnation, _Memory] = {}
        self._last_unowned: frozenset[int] = frozenset()

    def configure(self, proc_root: Path, names: Iterable[str], clusters: Iterable[str]) -> None:
        """New settings (a reload); what is remembered of each incarnation stays."""
        self.proc_root = proc_root
        self.names = tuple(names)
        self.clusters = tuple(clusters)

    def discover(self, dump: Dump) -> tuple[list[Target], Mapping[int, TcpSocket]]:
        """Targets for every OSD process now running, and the LISTEN dump they were read from.

        ``dump(ports)`` dumps the host's listeners: only those on ``ports``, or all of them
        for None. While every OSD's listeners are known and all still there, a dump filtered
        in the kernel to their ports is enough, and the host's other listeners (a thousand
        on a busy host) are never read. A new or still-binding process, or a listener gone
        or new on a known port, takes a full dump: that is what finds a listener bound
        anywhere else, a rebind after a mark-down for one.
        """
        processes = find_osd_processes(self.names, self.clusters, self.proc_root)
        spaces = self._namespaces(processes)
        here = [p for p in processes if p.incarnation.pid not in spaces]
        ports = self._steady_ports(here)
        full = True
        if ports is not None:
            listening: Mapping[int, TcpSocket] = dump(ports)
            full = not self._unchanged(here, listening)
        if full:
            listening = dump(None)
        away, blind = self._listeners_away(spaces)
        if away:  # pods' OSDs: one mapping by inode (inodes are unique across namespaces)
            listening = dict(ChainMap(*away, dict(listening)))
        owned = {i for m in self._memory.values() for i in m.listeners}
        rescan_all = full and frozenset(listening) - owned != self._last_unowned
        targets = [
            self._target(
                p,
                listening,
                rescan=rescan_all or p.incarnation.pid in spaces,
                netns=spaces.get(p.incarnation.pid),
                blind=blind.get(p.incarnation.pid, ""),
            )
            for p in processes
        ]
        alive = {p.incarnation for p in processes}
        self._memory = {k: v for k, v in self._memory.items() if k in alive}
        if full:
            owned = {i for m in self._memory.values() for i in m.listeners}
            self._last_unowned = frozenset(listening) - owned
        return targets, listening

    def _namespaces(self, processes: Sequence[OsdProcess]) -> dict[int, int]:
        """Map pid -> network namespace, for the processes not in the watchdog's own."""
        ours = netns.own()
        found = {}
        for osd in processes:
            space = netns.namespace_of(osd.incarnation.pid, self.proc_root)
            if space is not None and ours is not None and space != ours:
                found[osd.incarnation.pid] = space
        return found

    def _listeners_away(
        self, spaces: Mapping[int, int]
    ) -> tuple[list[dict[int, TcpSocket]], dict[int, str]]:
        """Each other namespace's LISTEN sockets, one dump per namespace.

        Also the pids whose namespace could not be read, with why.
        """
        dumps: list[dict[int, TcpSocket]] = []
        blind: dict[int, str] = {}
        pids_by_space: dict[int, list[int]] = {}
        for pid, space in spaces.items():
            pids_by_space.setdefault(space, []).append(pid)
        for space, pids in pids_by_space.items():
            try:
                dumps.append(netns.run_in(pids[0], lambda: dict(sockdiag.dump_listeners())))
            except OSError as exc:
                reason = (
                    f"its sockets are in another network namespace (net:[{space}], a pod's) "
                    f"that the watchdog cannot read: {exc.strerror or exc}"
                )
                blind.update(dict.fromkeys(pids, reason))
        return dumps, blind

    def _steady_ports(self, processes: Sequence[OsdProcess]) -> set[int] | None:
        """Every port of every known OSD listener; None when some process needs a full look."""
        ports: set[int] = set()
        for osd in processes:
            memory = self._memory.get(osd.incarnation)
            if memory is None or not memory.complete:
                return None
            ports.update(li.endpoint.port for li in memory.listeners.values())
        return ports

    def _unchanged(self, processes: Sequence[OsdProcess], listening: Mapping[int, Any]) -> bool:
        """The filtered dump holds exactly the listeners remembered: none gone, none new."""
        remembered = {i for p in processes for i in self._memory[p.incarnation].listeners}
        return set(listening) == remembered

    def _target(
        self,
        osd: OsdProcess,
        by_inode: Mapping[int, TcpSocket],
        *,
        rescan: bool,
        netns: int | None = None,
        blind: str = "",
    ) -> Target:
        memory = self._memory.setdefault(osd.incarnation, _Memory())
        target = Target(osd.daemon, osd.cluster, osd.incarnation, netns=netns)
        if blind:
            return replace(target, blind_reason=blind)
        if rescan or not memory.complete:
            try:
                fds = procfs.socket_inodes(self.proc_root, osd.incarnation.pid)
            except PermissionError:
                pid = osd.incarnation.pid
                # The uid, not a name: a cephadm or Rook OSD runs as 167, which the host's own
                # passwd usually does not know (Debian's ceph user is 64045).
                owner = _owner(self.proc_root, pid)
                reason = f"access denied reading /proc/{pid}/fd (it runs as {owner}): {ACCESS_HINT}"
                return replace(target, blind_reason=reason)
            except ProcessLookupError:
                return target
            mine = sorted((fd, inode) for inode, fd in fds.items() if inode in by_inode)
            self._update(memory, [by_inode[inode] for _fd, inode in mine])
        listeners = tuple(
            replace(listener, present=inode in by_inode)
            for inode, listener in memory.listeners.items()
        )
        return replace(target, listeners=listeners)

    @staticmethod
    def _update(memory: _Memory, sockets: list[TcpSocket]) -> None:
        """Merge the listeners the process holds now (in fd order) into what we remember."""
        if not memory.complete:
            # Until roles are known, follow the process's listeners as they are bound; stop
            # rescanning once the set is a full Ceph set, or stays the same for two scans.
            stable = bool(sockets) and {s.inode for s in sockets} == set(memory.listeners)
            endpoints = infer_endpoints(sockets)
            memory.listeners = {
                s.inode: Listener(e, s.inode) for s, e in zip(sockets, endpoints, strict=True)
            }
            known = bool(endpoints) and all(e.role is not Role.UNKNOWN for e in endpoints)
            memory.complete = stable or known
            return
        new = [s for s in sockets if s.inode not in memory.listeners]
        if not new:
            return
        held = {s.inode for s in sockets}
        vanished = [i for i in memory.listeners if i not in held]
        if len(vanished) == len(new):  # a rebind: new sockets take over the old labels
            # Same address first (a messenger that rebinds its own ports), then bind order
            # for the rest: fd order alone can mislabel when messengers rebind at different
            # times and reuse lower fd numbers.
            by_address = {
                (memory.listeners[i].endpoint.host, memory.listeners[i].endpoint.port): i
                for i in vanished
            }
            pairs = []
            for sock in new:
                old_inode = by_address.pop((sock.host, sock.port), None)
                if old_inode is not None:
                    vanished.remove(old_inode)
                pairs.append((old_inode, sock))
            leftovers = iter(vanished)
            for old_inode, sock in pairs:
                taken = old_inode if old_inode is not None else next(leftovers)
                old = memory.listeners.pop(taken).endpoint
                endpoint = Endpoint(sock.host, sock.port, old.msgr, old.role)
                memory.listeners[sock.inode] = Listener(endpoint, sock.inode)
                log.info("listener %s rebound to %s", old.address, endpoint.address)
            return
        for sock in new:
            memory.listeners[sock.inode] = Listener(Endpoint(sock.host, sock.port), sock.inode)
