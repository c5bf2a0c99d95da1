"""Shared host reader, the OSD's admin socket: find it, ask it one command, under a timeout.

Every Ceph daemon listens on a UNIX socket (``$run_dir/$cluster-$name.asok``; cephadm's run
dir is ``/var/run/ceph/<fsid>``, a container's own path) and answers JSON commands on it
without cephx: the local, cheap view of what the daemon is doing. It keeps answering when the
daemon's messengers or op threads are stuck, since it has a thread of its own.

Found from the process itself, not from configuration: the OSD holds the socket's listening
fd, whose inode ``/proc/PID/net/unix`` maps to the path as the OSD's mount namespace sees it;
``/proc/PID/root`` + that path reaches it from the host, whatever the deployment (bare,
cephadm's containers, a Rook pod). Connecting needs write permission on the socket file:
the OSD's uid, or root.

The protocol (Ceph's ``ceph daemon``): the command as JSON and a NUL byte; the answer is a
4-byte big-endian length and that many bytes of JSON.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from watchdog.errors import AsokError
from watchdog.host import procfs

if TYPE_CHECKING:
    from pathlib import Path

MAX_ANSWER = 16 * 1024 * 1024  # bytes: far above any answer we ask for
LISTENING = 1 << 16  # __SO_ACCEPTCON in /proc/net/unix's Flags


def find(proc_root: Path, pid: int) -> Path:
    """The OSD's admin socket, as the host reaches it (through ``/proc/PID/root``)."""
    inodes = procfs.socket_inodes(proc_root, pid)
    try:
        table = (proc_root / str(pid) / "net" / "unix").read_text(
            encoding="utf-8", errors="replace"
        )
    except OSError as exc:
        raise AsokError(f"cannot read {proc_root}/{pid}/net/unix: {exc}") from exc
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or not fields[6].isdigit():
            continue
        flags, inode, path = int(fields[3], 16), int(fields[6]), fields[7]
        if flags & LISTENING and inode in inodes and path.endswith(".asok"):
            return proc_root / str(pid) / "root" / path.lstrip("/")
    raise AsokError(f"pid {pid} listens on no admin socket (.asok)")


def ask(path: Path, command: dict[str, Any], timeout: float) -> Any:  # noqa: ANN401 - JSON
    """One command, its JSON answer parsed; raises AsokError, TimeoutError on the deadline."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except PermissionError as exc:
            raise AsokError(
                f"connecting to {path}: access denied (the OSD's uid, or root)"
            ) from exc
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AsokError(f"connecting to {path}: {exc.strerror}") from exc
        sock.sendall(json.dumps(command).encode() + b"\0")
        size = struct.unpack(">I", _read(sock, 4, deadline))[0]
        if size > MAX_ANSWER:
            raise AsokError(f"{path}: an answer of {size} bytes")
        body = _read(sock, size, deadline)
    try:
        return json.loads(body)
    except ValueError as exc:
        raise AsokError(f"{path} answered {command.get('prefix')!r} with no JSON") from exc


def _read(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks, got = [], 0
    while got < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the admin socket did not answer in time")
        sock.settimeout(left)
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise AsokError(f"the admin socket closed after {got} of {size} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
