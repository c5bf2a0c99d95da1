"""Faults injected into a live ceph-osd, without touching Ceph's code or its heartbeats.

``mute_listeners`` kills only the client accept path of a running OSD: it takes the OSD's
public listening sockets out of the messenger's epoll set, so they stay open (LISTEN) but are
never accepted from again, while every established connection (heartbeats among them) keeps
being served. It is the "listener left unserviced" failure of design.md section 1.

How: pidfd_getfd(2) (Linux >= 5.6, needs ptrace access: root, or the OSD's own uid with
ptrace_scope 0) gives this process a duplicate of the OSD's epoll fd and of a listening socket
(the same open files, not copies). An epoll registration is keyed by (open file, fd number),
so a helper process puts its duplicate of the socket on the OSD's own fd number and calls
EPOLL_CTL_DEL through its duplicate of the epoll fd. The kernel then removes the OSD's own
registration. Nothing in the OSD notices: it gets no event, logs nothing, and stays up.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Self

_HELPER = r"""
import ctypes, os, select, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD = 438  # x86_64 and aarch64 share the number

def getfd(pidfd, fd):
    got = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
    if got < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd({fd}): {os.strerror(err)}")
    return got

action, pid = sys.argv[1], int(sys.argv[2])
pairs = [tuple(map(int, p.split(":"))) for p in sys.argv[3:]]
pidfd = os.pidfd_open(pid)
for epfd, fd in pairs:
    try:
        os.fstat(fd)
    except OSError:
        pass
    else:
        sys.exit(f"fd {fd} is in use in the helper; cannot mirror the OSD's fd number")
    ep = select.epoll.fromfd(getfd(pidfd, epfd))
    sock = getfd(pidfd, fd)
    os.dup2(sock, fd)
    if action == "mute":
        ep.unregister(fd)
    else:  # as Ceph registers a listener: readable, edge-triggered, data = its fd number
        ep.register(fd, select.EPOLLIN | select.EPOLLET)
    os.close(fd)
    os.close(sock)
    ep.close()
"""


def epoll_holding(pid: int, fd: int, proc: Path = Path("/proc")) -> int:
    """The OSD's epoll fd in which ``fd`` is registered (read from /proc/PID/fdinfo)."""
    for entry in (proc / str(pid) / "fd").iterdir():
        try:
            if "eventpoll" not in str(entry.readlink()):
                continue
            info = (proc / str(pid) / "fdinfo" / entry.name).read_text()
        except OSError:
            continue
        if re.search(rf"^tfd:\s+{fd}\s", info, flags=re.MULTILINE):
            return int(entry.name)
    raise LookupError(f"fd {fd} of pid {pid} is in no epoll set")


def mute_listeners(pid: int, fds: list[int]) -> dict[int, int]:
    """Stop the OSD from ever accepting on these listening fds; they stay open.

    Returns {fd: epoll fd} for ``unmute_listeners``.
    """
    epolls = {fd: epoll_holding(pid, fd) for fd in fds}
    _run_helper("mute", pid, epolls)
    return epolls


def unmute_listeners(pid: int, epolls: dict[int, int]) -> None:
    """Register the listeners again, as Ceph did: the OSD accepts (and drains its queue)."""
    _run_helper("unmute", pid, epolls)


def _run_helper(action: str, pid: int, epolls: dict[int, int]) -> None:
    pairs = [f"{epfd}:{fd}" for fd, epfd in epolls.items()]
    out = subprocess.run(
        [sys.executable, "-c", _HELPER, action, str(pid), *pairs],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        close_fds=True,
    )
    if out.returncode != 0:
        raise OSError(f"{action} of fds {sorted(epolls)} of pid {pid} failed: {out.stderr.strip()}")


def listener_fds(pid: int, ports: set[int]) -> list[int]:
    """The fd numbers of the pid's listening sockets bound to these ports (via ss, in the
    pid's own network namespace: a pod's sockets are not in the host's)."""
    out = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "--", "ss", "-Hltnp"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    fds = []
    for line in out.splitlines():
        fields = line.split()
        port = int(fields[3].rsplit(":", 1)[1])
        match = re.search(rf"pid={pid},fd=(\d+)", line)
        if port in ports and match:
            fds.append(int(match.group(1)))
    return sorted(fds)


def nofile_limits(pid: int) -> tuple[int, int]:
    """The process's (soft, hard) open-files limits, from /proc (readable by root)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise LookupError(f"pid {pid} has no open-files limit in /proc/{pid}/limits")


def set_nofile_soft(pid: int, soft: int) -> None:
    """Set a running process's soft open-files limit; the hard one stays.

    prlimit(2) on a process of another uid (a container's 167) needs CAP_SYS_RESOURCE, which
    root here does not have; with the process's own uid and gid it needs nothing. So a helper
    takes them (setpriv) and sets it.
    """
    ids = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"Uid", "Gid"}:
            ids[key] = rest.split()[0]  # the real id: prlimit wants all of them to match
    code = (
        "import resource, sys; pid = int(sys.argv[1]); "
        "_, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE); "
        "resource.prlimit(pid, resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))"
    )
    out = subprocess.run(
        ["setpriv", f"--reuid={ids['Uid']}", f"--regid={ids['Gid']}", "--clear-groups",
         "/usr/bin/python3", "-c", code, str(pid), str(soft)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise OSError(f"setting pid {pid}'s open-files limit failed: {out.stderr.strip()}")


_STALL_HELPER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207
WALL = 0x40000000

def ptrace(request, tid):
    if libc.ptrace(request, tid, None, None) != 0:
        err = ctypes.get_errno()
        sys.exit(f"ptrace({request:#x}, {tid}): {os.strerror(err)}")

pid, names = int(sys.argv[1]), set(sys.argv[2].split(","))
tids = []
for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
    with open(f"/proc/{pid}/task/{tid}/comm") as comm:
        if comm.read().strip() in names:
            tids.append(int(tid))
if not tids:
    sys.exit(f"pid {pid} has no thread named {', '.join(sorted(names))}")
for tid in tids:
    ptrace(PTRACE_SEIZE, tid)
    ptrace(PTRACE_INTERRUPT, tid)
    os.waitpid(tid, WALL)  # until that thread has stopped
print(" ".join(map(str, tids)), flush=True)
sys.stdin.read()  # held until the test closes our stdin
for tid in tids:
    libc.ptrace(PTRACE_DETACH, tid, None, None)
"""


class StalledThreads:
    """Some threads of a live process stopped with ptrace, the others left running.

    ``StalledThreads(pid, ("tp_osd_tp",))`` stops an OSD's op worker threads: its messenger
    and heartbeat threads go on, so it accepts connections, answers its peers' pings and stays
    up, while every op queued for its PGs waits. (``PTRACE_SEIZE`` + ``PTRACE_INTERRUPT`` on
    those threads only, by a helper process that holds them until ``release()``; it needs
    ptrace rights over the OSD: root.) Releasing lets every held op run.
    """

    def __init__(self, pid: int, names: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _STALL_HELPER, str(pid), ",".join(names)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            _, err = self.proc.communicate(timeout=30)
            raise RuntimeError(f"stalling {names} of {pid}: {err}")
        self.tids = [int(t) for t in line.split()]

    def release(self) -> None:
        """Let the threads go (closing the helper's stdin), and reap the helper."""
        if self.proc.returncode is None:
            self.proc.communicate(timeout=30)  # closes its stdin, reads and closes its output

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
