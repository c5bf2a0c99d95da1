"""Network namespaces of other processes: which one a process is in, and reading inside it.

With Rook's default pod networking an OSD's sockets live in its pod's network namespace, and
the host's sock_diag dump does not hold them. The watchdog reads them where they are: a
thread of its own enters the OSD's namespace with setns(2) on /proc/PID/ns/net, takes the
sock_diag dump there, and ends; a network namespace is per thread, so nothing else of the
watchdog ever runs in the pod's namespace. setns into a network namespace needs
CAP_SYS_ADMIN; without it the OSD is reported unobservable with exactly that reason. Reading
/proc/PID/net/tcp instead would need no capability but costs a text parse that grows with
every connection in the pod, and would still not give the accept-queue limits.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
PROC = Path("/proc")
NEEDS = "CAP_SYS_ADMIN to enter it with setns(2)"

_libc: Any = None


def namespace_of(pid: int | str, proc_root: Path = PROC) -> int | None:
    """The network namespace's inode number (as in ``net:[N]``), or None if unreadable."""
    try:
        return (proc_root / str(pid) / "ns" / "net").stat().st_ino
    except OSError:
        return None


@functools.cache
def own() -> int | None:
    """The watchdog's own network namespace: read once, it never changes."""
    return namespace_of(os.getpid())


def run_in(pid: int, work: Callable[[], T], proc_root: Path = PROC) -> T:
    """``work()`` on a new thread inside the network namespace of ``pid``; its result.

    Raises PermissionError without the privilege to enter, OSError for other failures, or
    whatever ``work`` raised.
    """
    outcome: dict[str, Any] = {}

    def enter_and_work() -> None:
        global _libc  # noqa: PLW0603 - loaded once, on first use
        try:
            if _libc is None:
                _libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(proc_root / str(pid) / "ns" / "net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
            finally:
                os.close(fd)
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=enter_and_work, name=f"netns-{pid}", daemon=True)
    thread.start()
    thread.join()
    error = outcome.get("error")
    if isinstance(error, OSError) and error.errno in {errno.EPERM, errno.EACCES}:
        raise PermissionError(error.errno, f"{error.strerror}: needs {NEEDS}") from error
    if error is not None:
        raise error
    return outcome["value"]  # type: ignore[no-any-return]
