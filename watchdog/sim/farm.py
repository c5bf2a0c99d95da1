"""A banner farm: N loopback listeners that answer like OSD ports, for load tests and benchmarks.

    python -m watchdog.sim.farm N HOLES

The first HOLES listeners are black holes (listening, never accepted from: connects complete
into the accept queue and no banner ever comes, the zombie's signature). The rest accept and
send msgr2's banner at once. Prints {"ports": [...], "holes": [...]} on one line, then serves
until its stdin closes. One process and one selector for all of them, so thousands of
listeners cost a few MiB and no thread each.
"""

from __future__ import annotations

import json
import resource
import selectors
import socket
import subprocess
import sys

from watchdog.sim.cluster import end_child
from watchdog.sim.osd import V2_BANNER


def serve(count: int, holes: int) -> None:
    """Listen on ``count`` loopback ports until stdin closes."""
    # One fd per listener plus the connections being served: raise the soft limit as far as
    # the hard one allows (a login shell's 1,024 would stop a big farm half-way).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    sel = selectors.DefaultSelector()
    listeners = []
    for index in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(512)
        sock.setblocking(False)
        listeners.append(sock)
        if index >= holes:
            sel.register(sock, selectors.EVENT_READ, "listen")
    sel.register(sys.stdin, selectors.EVENT_READ, "stdin")
    ports = [s.getsockname()[1] for s in listeners]
    sys.stdout.write(json.dumps({"ports": ports[holes:], "holes": ports[:holes]}) + "\n")
    sys.stdout.flush()
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                if not sys.stdin.readline():
                    return
            elif key.data == "conn":
                _drain(sel, key.fileobj)  # type: ignore[arg-type]
            else:
                _accept(sel, key.fileobj)  # type: ignore[arg-type]


def _accept(sel: selectors.BaseSelector, listener: socket.socket) -> None:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    conn.setblocking(False)
    try:
        conn.send(V2_BANNER)
    except OSError:
        conn.close()
        return
    sel.register(conn, selectors.EVENT_READ, "conn")


def _drain(sel: selectors.BaseSelector, conn: socket.socket) -> None:
    """Read until the prober hangs up, then close our end."""
    try:
        data = conn.recv(4096)
    except OSError:
        data = b""
    if not data:
        sel.unregister(conn)
        conn.close()


class Farm:
    """The farm as a child process; ``close`` stops it by closing its stdin."""

    def __init__(self, count: int, holes: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchdog.sim.farm", str(count), str(holes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None  # noqa: S101 - set by stdout=PIPE
        info = json.loads(self.proc.stdout.readline())
        self.ports: list[int] = info["ports"]
        self.holes: list[int] = info["holes"]

    @property
    def all_ports(self) -> list[int]:
        """Black holes first, then the answering ports."""
        return self.holes + self.ports

    def close(self) -> None:
        """Stop the child and wait for it (killed if it does not stop in 10 s)."""
        end_child(self.proc, grace=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
