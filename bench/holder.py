"""Holds K established loopback connections (both ends) until stdin closes.

python bench/holder.py K      -> prints "ready PORT" once all are established
"""

from __future__ import annotations

import socket
import sys


def main(count: int) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4096)
    port = server.getsockname()[1]
    held = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        held.append((client, accepted))
    print(f"ready {port}", flush=True)
    sys.stdin.readline()  # until the benchmark closes our stdin


if __name__ == "__main__":
    main(int(sys.argv[1]))
