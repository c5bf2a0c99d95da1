"""A banner farm for benchmarks: N loopback listeners that answer like Ceph OSD ports.

    python bench/farm.py N HOLES

The first HOLES listeners are black holes (listening, never accepted from: connects complete
into the accept queue and no banner ever comes, the zombie's signature). The rest accept and
send msgr2's banner at once. Prints {"ports": [...], "holes": [...]} on one line, then serves
until stdin closes.
"""

from __future__ import annotations

import json
import selectors
import socket
import sys

BANNER = b"ceph v2\n" + bytes([0x10, 0, 1, 0]) + bytes(14)


def main(count: int, holes: int) -> None:
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
    print(json.dumps({"ports": ports[holes:], "holes": ports[:holes]}), flush=True)
    while True:
        for key, _ in sel.select():
            if key.data == "stdin":
                if not sys.stdin.readline():
                    return
                continue
            if key.data == "conn":
                conn = key.fileobj
                try:
                    data = conn.recv(4096)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(conn)
                    conn.close()  # type: ignore[union-attr]
                continue
            try:
                conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            conn.setblocking(False)
            try:
                conn.send(BANNER)
            except OSError:
                conn.close()
                continue
            sel.register(conn, selectors.EVENT_READ, "conn")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
