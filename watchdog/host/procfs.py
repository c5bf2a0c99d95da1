"""Shared host reader, process side: small readers of ``/proc/PID`` with an injectable root.

Each reader raises ``PermissionError`` when we may not look and ``ProcessLookupError`` when
the process is gone; callers turn those into outcomes. ``/proc/PID/limits`` is world-readable,
``/proc/PID/fd`` needs the process's uid or CAP_DAC_READ_SEARCH (design.md section 3).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

UNLIMITED = -1
COMM_LEN = 15  # the kernel keeps the first 15 bytes of a process's name (TASK_COMM_LEN - 1)


def _gone_or_denied(exc: OSError, pid: int) -> OSError:
    if isinstance(exc, FileNotFoundError):
        return ProcessLookupError(f"process {pid} is gone")
    return exc


@functools.cache
def _size_is_count(proc_root: Path) -> bool:
    """Linux >= 6.2 gives the number of open fds as the size of /proc/PID/fd.

    That is one stat() instead of listing every fd (0.6 us each: 60 ms at 100,000 fds, see
    bench/RESULTS.md). Checked once against a listing of our own fds; a fixture tree or an
    older kernel keeps the listing.
    """
    own = proc_root / "self" / "fd"
    try:
        size = own.stat().st_size
        listed = len(os.listdir(own))  # includes the fd the listing itself holds
    except OSError:
        return False
    return size > 0 and size in {listed - 1, listed}


def count_fds(proc_root: Path, pid: int) -> int:
    """Number of open fds of ``pid``; access denied when we may not list them."""
    fd_dir = proc_root / str(pid) / "fd"
    try:
        # stat() would answer even for another user's process; keep that an access denial,
        # as the listing would be, so "cannot look" never reads as a number.
        if _size_is_count(proc_root) and os.access(fd_dir, os.R_OK | os.X_OK):
            size = fd_dir.stat().st_size
            if size > 0:
                return size
        with os.scandir(fd_dir) as entries:
            return sum(1 for _ in entries)
    except OSError as exc:
        raise _gone_or_denied(exc, pid) from exc


def socket_inodes(proc_root: Path, pid: int) -> dict[int, int]:
    """Map socket inode -> fd number for every socket ``pid`` holds."""
    found: dict[int, int] = {}
    fd_dir = proc_root / str(pid) / "fd"
    try:
        names = os.listdir(fd_dir)
    except OSError as exc:
        raise _gone_or_denied(exc, pid) from exc
    for name in names:
        try:
            link = os.readlink(fd_dir / name)
        except FileNotFoundError:  # closed between listdir and readlink
            continue
        except OSError as exc:
            raise _gone_or_denied(exc, pid) from exc
        if link.startswith("socket:[") and name.isdigit():
            found[int(link[8:-1])] = int(name)
    return found


def soft_nofile_limit(proc_root: Path, pid: int) -> int:
    """The soft RLIMIT_NOFILE of ``pid`` from ``/proc/PID/limits``; UNLIMITED if so."""
    try:
        text = (proc_root / str(pid) / "limits").read_text(encoding="ascii")
    except OSError as exc:
        raise _gone_or_denied(exc, pid) from exc
    for line in text.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files") :].split()[0]
            return UNLIMITED if soft == "unlimited" else int(soft)
    msg = f"no 'Max open files' line in {proc_root}/{pid}/limits"
    raise ValueError(msg)


def systemd_unit(proc_root: Path, pid: int) -> str | None:
    """The systemd service ``pid`` runs in, from its cgroup path, or None outside one.

    cephadm names an OSD's unit ``ceph-<fsid>@osd.<id>.service`` and packages
    ``ceph-osd@<id>.service``; the cgroup says which, with nothing to configure.
    """
    try:
        text = (proc_root / str(pid) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _gone_or_denied(exc, pid) from exc
    for line in text.splitlines():
        hierarchy, _, path = line.partition(":")
        controllers, _, path = path.partition(":")
        if hierarchy != "0" and controllers != "name=systemd":
            continue  # the unified hierarchy (v2), or systemd's own under v1
        units = [part for part in path.split("/") if part.endswith(".service")]
        if units:
            return units[-1]
    return None


def listen_overflows(proc_root: Path) -> int | None:
    """Host-wide ``TcpExt: ListenOverflows`` (connections dropped by full accept queues).

    None when this kernel has no such counter; an unreadable file raises OSError, which the
    caller reports (``probe_run_success{probe="netstat"}``) instead of the metric vanishing.
    """
    lines = (proc_root / "net" / "netstat").read_text(encoding="ascii").splitlines()
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            row = dict(zip(header.split()[1:], values.split()[1:], strict=False))
            value = row.get("ListenOverflows")
            return int(value) if value is not None else None
    return None


def processes_named(proc_root: Path, names: Iterable[str]) -> list[int]:
    """Pids whose name (``/proc/PID/comm``, 15 bytes at most) is one of ``names``.

    One small read per process, with bare os calls: asking psutil for every process's name
    and command line cost nine times as much (3.8 ms against 0.42 ms for 64 processes,
    bench/RESULTS.md), and a host runs hundreds. A longer name matches on its first 15
    bytes here; the caller checks the whole name on the few that match.
    """
    wanted = {name.encode()[:COMM_LEN] + b"\n" for name in names}
    root = str(proc_root)
    found = []
    for entry in os.listdir(root):
        if not entry.isdigit():
            continue
        try:
            fd = os.open(f"{root}/{entry}/comm", os.O_RDONLY)
        except OSError:
            continue  # gone since the listing, or hidden from us
        try:
            name = os.read(fd, 64)
        except OSError:
            continue
        finally:
            os.close(fd)
        if name in wanted:
            found.append(int(entry))
    return found
