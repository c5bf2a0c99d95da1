"""Simulator: one simulated ceph-osd process (run as ``python -m watchdog.sim.osd``).

It names itself ``ceph-osd`` (prctl) so local discovery finds it like a real OSD, binds 8
listeners in Ceph's order (public, cluster, hb_front, hb_back; v2 then v1), sends the real
banners, and keeps heartbeat connections to its peers. Failures are real: fd exhaustion
under its own lowered RLIMIT_NOFILE makes accept() fail with EMFILE, and, as SimpleMessenger's
accepter did, a messenger gives up after more than 4 consecutive accept errors, either closing
its listeners or leaving them open and unserviced. Commands arrive as lines on stdin; replies
and events leave as JSON lines on stdout. EOF on stdin ends the process.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from watchdog.model import BANNERS, Msgr

V2_BANNER = BANNERS[Msgr.V2] + bytes([0x10, 0, 1, 0]) + bytes(14)  # 26 bytes, as in ceph-samples
V1_BANNER = BANNERS[Msgr.V1] + bytes(272)  # 281 bytes; only the first 9 are stable
ROLES = ("public", "cluster", "hb_front", "hb_back")
MAX_ACCEPT_FAILURES = 4  # ms_max_accept_failures: more than this many in a row and it gives up
PING_INTERVAL = 1.0
PR_SET_NAME, PR_SET_PDEATHSIG = 15, 1


def emit(**fields: Any) -> None:  # noqa: ANN401 - JSON values
    """Write one JSON line to the parent."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def name_process(name: str) -> None:
    """Set comm (what ps and psutil show) and die with the parent."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, 15, 0, 0, 0)


@dataclass
class Messenger:
    """One messenger: a v2 and a v1 listener served by one accept loop."""

    role: str
    host: str
    backlog: int
    listeners: list[socket.socket] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    failures: int = 0
    state: str = "accepting"  # accepting | stalled | gave_up

    def bind(self) -> None:
        """Bind both listeners (again on the same ports after a heal)."""
        ports = self.ports or [0, 0]
        self.listeners = []
        for port in ports:
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            sock.listen(self.backlog)
            sock.setblocking(False)
            self.listeners.append(sock)
        self.ports = [s.getsockname()[1] for s in self.listeners]


class SimOsd:
    """The event loop of one simulated OSD."""

    def __init__(self, osd_id: int, host: str, backlog: int) -> None:
        self.osd_id = osd_id
        self.sel = selectors.DefaultSelector()
        self.messengers = [Messenger(role, host, backlog) for role in ROLES]
        self.give_up = "leave_open"  # SimpleMessenger's accepter exited; nobody closed the fd
        self.slow_seconds = 0.0
        self.leak_rate = 0.0
        self.exhausted = False  # once at the limit, every fd that comes free is leaked again
        self.leaked: list[int] = []
        self.pending: list[tuple[float, socket.socket, bytes]] = []
        self.peers: list[socket.socket] = []
        self.last_ping = 0.0
        self.last_leak = time.monotonic()
        self.running = True

    def start(self) -> None:
        """Bind in Ceph's order and announce the ports."""
        for messenger in self.messengers:
            messenger.bind()
            self._watch(messenger)
        self.sel.register(sys.stdin, selectors.EVENT_READ, ("control", None, None))
        ports = {m.role: m.ports for m in self.messengers}
        emit(event="ready", pid=os.getpid(), ports=ports, limit=self._limit())

    def _watch(self, messenger: Messenger) -> None:
        for sock, banner in zip(messenger.listeners, (V2_BANNER, V1_BANNER), strict=True):
            self.sel.register(sock, selectors.EVENT_READ, ("listen", messenger, banner))

    def _unwatch(self, messenger: Messenger, *, close: bool) -> None:
        for sock in messenger.listeners:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(sock)
            if close:
                sock.close()

    @staticmethod
    def _limit() -> int:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]

    def run(self) -> None:
        """Serve until told to exit or stdin closes."""
        while self.running:
            for key, _ in self.sel.select(timeout=0.05):
                kind, messenger, banner = key.data
                if kind == "listen":
                    self._accept(messenger, key.fileobj, banner)  # type: ignore[arg-type]
                elif kind == "control":
                    self._control()
                else:
                    self._drain(key.fileobj)  # type: ignore[arg-type]
            self._timers(time.monotonic())

    def _accept(self, messenger: Messenger, sock: socket.socket, banner: bytes) -> None:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return
        except OSError as exc:
            messenger.failures += 1
            emit(
                event="accept_error", role=messenger.role, errno=errno.errorcode.get(exc.errno or 0)
            )
            if messenger.failures > MAX_ACCEPT_FAILURES:
                self._unwatch(messenger, close=self.give_up == "close")
                messenger.state = "gave_up"
                emit(event="gave_up", role=messenger.role, at=time.time(), how=self.give_up)
            return
        messenger.failures = 0
        conn.setblocking(False)
        if self.slow_seconds > 0:
            self.pending.append((time.monotonic() + self.slow_seconds, conn, banner))
        else:
            self._greet(conn, banner)

    def _greet(self, conn: socket.socket, banner: bytes) -> None:
        try:
            conn.send(banner)
            self.sel.register(conn, selectors.EVENT_READ, ("conn", None, None))
        except OSError:
            conn.close()

    def _drain(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()

    def _timers(self, now: float) -> None:
        due = [p for p in self.pending if p[0] <= now]
        self.pending = [p for p in self.pending if p[0] > now]
        for _, conn, banner in due:
            self._greet(conn, banner)
        if now - self.last_ping >= PING_INTERVAL:
            self.last_ping = now
            for peer in self.peers:
                with contextlib.suppress(OSError):
                    peer.send(b"ping")
        if self.exhausted:
            # A real leak does not stop at the limit: fds that come free (a client hanging
            # up) are taken again, so accept() keeps failing instead of recovering by luck.
            self._fill()
        elif self.leak_rate > 0:
            for _ in range(int((now - self.last_leak) * self.leak_rate)):
                if not self._leak_one():
                    break
            if (now - self.last_leak) * self.leak_rate >= 1:
                self.last_leak = now

    def _leak_one(self) -> bool:
        try:
            self.leaked.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            if not self.exhausted:
                self.exhausted = True
                emit(event="fds_exhausted", at=time.time(), leaked=len(self.leaked))
            return False
        return True

    def _fill(self) -> None:
        while self._leak_one():
            pass

    def _control(self) -> None:
        line = sys.stdin.readline()
        if not line:
            self.running = False
            return
        words = line.split()
        try:
            reply = self.command(words[0], words[1:]) if words else {}
        except (OSError, ValueError, IndexError) as exc:
            emit(reply="error", error=f"{type(exc).__name__}: {exc}")
            return
        emit(reply="ok", **reply)

    def command(self, name: str, args: list[str]) -> dict[str, Any]:  # noqa: C901 - a dispatch table
        """Apply one control command; returns fields for the reply."""
        if name == "peers":
            for address in args:
                host, _, port = address.rpartition(":")
                self.peers.append(socket.create_connection((host, int(port)), timeout=5))
        elif name == "give_up":
            if args[0] not in {"close", "leave_open"}:
                raise ValueError(f"give_up takes close or leave_open, not {args[0]!r}")
            self.give_up = args[0]
        elif name == "exhaust":
            self._fill()
        elif name == "leak":
            self.leak_rate, self.last_leak = float(args[0]), time.monotonic()
        elif name == "stall":
            self._unwatch(self.messengers[0], close=False)
            self.messengers[0].state = "stalled"
        elif name == "slow":
            self.slow_seconds = float(args[0])
        elif name == "heal":
            self._heal()
        elif name == "exit":
            self.running = False
        elif name != "status":
            raise ValueError(f"unknown command {name!r}")
        return self.status()

    def _heal(self) -> None:
        """What a restart of the messenger would give: fds back, listeners serviced again."""
        for fd in self.leaked:
            os.close(fd)
        self.leaked, self.leak_rate, self.slow_seconds = [], 0.0, 0.0
        self.exhausted = False
        for messenger in self.messengers:
            if messenger.state == "accepting":
                continue
            if messenger.listeners[0].fileno() == -1:
                messenger.bind()
            messenger.failures, messenger.state = 0, "accepting"
            self._watch(messenger)

    def status(self) -> dict[str, Any]:
        """Fields every reply carries."""
        try:
            open_fds = len(os.listdir("/proc/self/fd")) - 1  # noqa: PTH208 - hot, str is enough
        except OSError:  # listing needs an fd of its own: at the limit, that is the answer
            open_fds = self._limit()
        return {
            "open_fds": open_fds,
            "limit": self._limit(),
            "states": {m.role: m.state for m in self.messengers},
            "peers": len(self.peers),
        }


def main() -> None:
    """Parse arguments the way ceph-osd takes them, then serve."""
    parser = argparse.ArgumentParser(prog="ceph-osd (simulated)")
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--cluster", default="sim")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--nofile", type=int, default=0, help="lower the soft fd limit to this")
    parser.add_argument("--backlog", type=int, default=512)
    args = parser.parse_args()
    name_process("ceph-osd")
    if args.nofile:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, hard))
    osd = SimOsd(args.id, args.host, args.backlog)
    osd.start()
    osd.run()


if __name__ == "__main__":
    main()
