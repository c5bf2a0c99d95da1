"""Shared host reader, kernel side: TCP socket dumps through netlink ``sock_diag`` (like ``ss``).

Why netlink and not ``/proc/net/tcp``: the file lists every socket on the host, so parsing it
costs time in proportion to all connections (an OSD host can hold 10^5), and it does not show
a listener's backlog limit at all. A sock_diag request asking only for the LISTEN state makes
the kernel walk only its listening hash, and its reply carries the accept-queue length
(``rqueue``) and the backlog (``wqueue``) of each listener. For established heartbeat
connections we send a bytecode filter on the source port, so the kernel does the matching and
only matching sockets cross into Python. pyroute2 could do this too; one request and one reply
format are ~100 lines, far less than the dependency.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from watchdog.errors import SockDiagError

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_JMP, INET_DIAG_BC_S_GE, INET_DIAG_BC_S_LE = 1, 2, 3
TCP_ESTABLISHED, TCP_LISTEN = 1, 10

NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
REQ_V2 = struct.Struct("=BBBBI")  # family, protocol, ext, pad, states
SOCKID = struct.Struct("!HH16s16s")  # sport, dport (network order), src, dst
MSG_TAIL = struct.Struct("=IIIII")  # expires, rqueue, wqueue, uid, inode
INODE = struct.Struct("=I")
COOKIE_AND_IF = 12  # interface index + 2-word cookie inside inet_diag_sockid
INODE_AT = 4 + SOCKID.size + COOKIE_AND_IF + 16  # the inode alone, 16 bytes into MSG_TAIL
BC_OP = struct.Struct("=BBH")  # code, yes, no
RTA = struct.Struct("=HH")  # len, type


class TcpSocket(NamedTuple):
    """One socket from a dump. For LISTEN: queue = accept queue now, backlog = its limit.

    A named tuple, not a frozen dataclass: made once per socket per dump, and a frozen
    dataclass's ``__init__`` was half of what a dump of a thousand listeners cost.
    """

    host: str
    port: int
    peer_host: str
    peer_port: int
    queue: int
    backlog: int
    uid: int
    inode: int


def _port_filter(ports: Iterable[int]) -> bytes:
    """Bytecode accepting a socket whose source port is one of ``ports``.

    Each port is a block ``S_GE port; S_LE port``; blocks are joined as ``ss`` joins an OR,
    with an unconditional JMP to the end after each block, because the kernel's audit insists
    that every "no" jump lands on an op reachable through "yes" jumps. A jump to exactly the
    end accepts, a jump 4 bytes past the end rejects.
    """
    ordered = sorted(set(ports))
    total = 20 * len(ordered) - 4
    code = bytearray()
    for port in ordered[:-1]:
        after_jmp = total - len(code) - 16  # bytes left when standing on this block's JMP
        code += BC_OP.pack(INET_DIAG_BC_S_GE, 8, 20) + BC_OP.pack(0, 0, port)
        code += BC_OP.pack(INET_DIAG_BC_S_LE, 8, 12) + BC_OP.pack(0, 0, port)
        code += BC_OP.pack(INET_DIAG_BC_JMP, 4, after_jmp)
    code += BC_OP.pack(INET_DIAG_BC_S_GE, 8, 20) + BC_OP.pack(0, 0, ordered[-1])
    code += BC_OP.pack(INET_DIAG_BC_S_LE, 8, 12) + BC_OP.pack(0, 0, ordered[-1])
    return bytes(code)


def _request(family: int, states: int, bytecode: bytes) -> bytes:
    body = REQ_V2.pack(family, socket.IPPROTO_TCP, 0, 0, states)
    body += SOCKID.pack(0, 0, b"", b"") + b"\0" * COOKIE_AND_IF
    if bytecode:
        attr_len = RTA.size + len(bytecode)
        body += RTA.pack(attr_len, INET_DIAG_REQ_BYTECODE) + bytecode
    header = NLMSG_HDR.pack(NLMSG_HDR.size + len(body), SOCK_DIAG_BY_FAMILY, 0x301, 1, 0)
    return header + body


def _address(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        # inet_ntop writes IPv4 exactly as ipaddress does, in a tenth of the time: a host
        # with a thousand listeners parses two thousand addresses a cycle.
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return str(ipaddress.IPv6Address(raw))  # its own spelling of v4-mapped, kept as it was


def _parse(family: int, data: bytes, offset: int) -> TcpSocket:
    sport, dport, src, dst = SOCKID.unpack_from(data, offset + 4)
    tail = offset + 4 + SOCKID.size + COOKIE_AND_IF
    _expires, rqueue, wqueue, uid, inode = MSG_TAIL.unpack_from(data, tail)
    return TcpSocket(
        _address(family, src), sport, _address(family, dst), dport, rqueue, wqueue, uid, inode
    )


Record = tuple[int, bytes, int]  # family, the datagram it came in, offset of the message


def _records(sock: socket.socket, family: int) -> Iterator[Record]:
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + NLMSG_HDR.size <= len(data):
            length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, offset)
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", data, offset + NLMSG_HDR.size)
                name = errno.errorcode.get(-code, str(-code))
                raise SockDiagError(-code, f"sock_diag dump failed: {name}")
            yield family, data, offset + NLMSG_HDR.size
            offset += (length + 3) & ~3


def _dump(states: int, bytecode: bytes, timeout: float) -> list[Record]:
    found: list[Record] = []
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
            sock.settimeout(timeout)
            for family in (socket.AF_INET, socket.AF_INET6):
                sock.send(_request(family, states, bytecode))
                found.extend(_records(sock, family))
    except SockDiagError:
        raise
    except OSError as exc:
        raise SockDiagError(exc.errno, f"sock_diag unavailable: {exc}") from exc
    return found


def dump_tcp(states: int, *, ports: Iterable[int] = (), timeout: float = 2.0) -> list[TcpSocket]:
    """Dump TCP sockets of both families in ``states`` (a bit mask), optionally by source port."""
    bytecode = _port_filter(ports) if ports else b""
    return [_parse(*record) for record in _dump(states, bytecode, timeout)]


class ListenDump(Mapping[int, TcpSocket]):
    """The host's listeners from one dump, by inode, each parsed only when asked for.

    Most listeners on a host belong to other services; the watchdog needs every inode (to
    notice a new one) but the addresses and queues of its OSDs' only. Parsing all of them
    was most of a dump's cost on a host with a thousand listeners.
    """

    def __init__(self, records: Iterable[Record] = ()) -> None:
        inode_at = INODE.unpack_from
        self._records = {
            inode_at(data, at + INODE_AT)[0]: (family, data, at) for family, data, at in records
        }
        self._parsed: dict[int, TcpSocket] = {}

    def __getitem__(self, inode: int) -> TcpSocket:
        found = self._parsed.get(inode)
        if found is None:
            found = self._parsed[inode] = _parse(*self._records[inode])
        return found

    def __iter__(self) -> Iterator[int]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)


def dump_listeners(ports: Collection[int] | None = None, timeout: float = 2.0) -> ListenDump:
    """TCP listeners on the host (in this network namespace), by inode.

    Only those on ``ports`` when given (the kernel does the filtering, as for heartbeats);
    an empty collection asks nothing of the kernel.
    """
    if ports is not None and not ports:
        return ListenDump()
    return ListenDump(_dump(1 << TCP_LISTEN, _port_filter(ports) if ports else b"", timeout))


def dump_established(ports: Iterable[int]) -> list[TcpSocket]:
    """Established TCP sockets whose local port is one of ``ports``."""
    wanted = list(ports)
    if not wanted:
        return []
    return dump_tcp(1 << TCP_ESTABLISHED, ports=wanted)
