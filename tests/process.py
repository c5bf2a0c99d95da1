"""The watchdog daemon as a child process the tests start, read and stop by pid."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``osd-watchdog ARGS...`` as a child process, run to its end (bounded), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "watchdog", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, cluster: str, port: int, interval: float = 0.25) -> None:
    path.write_text(
        f"[loop]\ninterval_seconds = {interval}\nprobe_timeout_seconds = 0.5\n"
        f'[web]\nlisten_address = "127.0.0.1:{port}"\n'
        f'[discovery]\nclusters = ["{cluster}"]\n'
        '[cluster]\nsource = "none"\n'
        f'[act]\nstate_dir = "{path.parent / "state"}"\n'
    )


class Daemon:
    def __init__(
        self,
        config: Path,
        env: dict[str, str] | None = None,
        prefix: list[str] | None = None,
        argv: list[str] | None = None,
    ) -> None:
        # prefix: run it through another command, e.g. ["ip", "netns", "exec", NAME] (which
        # execs it, so the pid is the watchdog's own). argv: another whole command line that
        # runs the daemon (an installed copy in a root), instead of this checkout's.
        own = [sys.executable, "-m", "watchdog", "run", "--config", str(config)]
        self.proc = subprocess.Popen(
            [*(prefix or []), *(argv or own)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.arrived: list[float] = []  # monotonic time each line was read
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line)
                self.arrived.append(time.monotonic())
                self.changed.notify_all()

    def wait_for_log(self, text: str, timeout: float = 15, after: float = 0.0) -> str:
        """The first line containing ``text`` read after monotonic time ``after``."""
        return self.wait_for_line(text, timeout, after)[0]

    def wait_for_line(
        self, text: str, timeout: float = 15, after: float = 0.0
    ) -> tuple[str, float]:
        """Like wait_for_log, with the monotonic time the line arrived."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line, at in zip(self.lines, self.arrived, strict=True):
                    if text in line and at >= after:
                        return line, at
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    pytest.fail(f"never logged {text!r}; got:\n{''.join(self.lines)}")
                self.changed.wait(left)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by pid: never leave it behind
            self.proc.wait(timeout=5)
            raise
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code
