"""Act stage, lock: one acting watchdog per ``state_dir``.

A second copy started by mistake (a unit and a container, two units) would keep a history and
fences of its own and double every guard's budget. Only the holder of ``state_dir/lock`` acts;
the other keeps observing, refuses with the holder's pid, and takes over when the lock frees.
The kernel drops an ``flock`` when its holder dies, however it dies, so a crash leaves no stale
lock behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


class StateLock:
    """``try_take`` until it holds; ``release`` on shutdown."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "lock"
        self._fd: int | None = None
        self._said = ""
        self._mutex = threading.Lock()  # the loop (resume) and jobs (decisions) both ask

    @property
    def held(self) -> bool:
        """Whether this process holds it."""
        return self._fd is not None

    def try_take(self) -> str:
        """'' when held (now or already); otherwise why not, logged once per reason."""
        with self._mutex:
            if self._fd is not None:
                return ""
            reason = self._take()
            if reason and reason != self._said:
                log.error("remediation is off: %s", reason)
            elif not reason and self._said:
                log.info("took %s: this watchdog acts again", self.path)
            self._said = reason
            return reason

    def _take(self) -> str:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            return f"cannot open {self.path}: {exc}"
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            return f"another watchdog (pid {holder}) holds {self.path}"
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return ""

    def release(self) -> None:
        """Let another watchdog act (the lock file stays; only the lock is dropped)."""
        with self._mutex:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
