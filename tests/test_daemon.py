"""The daemon as a real process: serves, reloads on SIGHUP, keeps a good config, stops cleanly."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, cluster: str, port: int, interval: float = 0.25) -> None:
    path.write_text(
        f"[loop]\ninterval_seconds = {interval}\nprobe_timeout_seconds = 0.5\n"
        f'[web]\nlisten_address = "127.0.0.1:{port}"\n'
        f'[discovery]\nclusters = ["{cluster}"]\n'
    )


class Daemon:
    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "run", "--config", str(config)],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()

    def wait_for_log(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    pytest.fail(f"never logged {text!r}; got:\n{''.join(self.lines)}")
                self.changed.wait(left)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self.proc.stderr.close()
        return code


def test_the_daemon_serves_reloads_and_stops_cleanly(sim, tmp_path):
    port = free_port()
    config = tmp_path / "watchdog.toml"
    write_config(config, sim.cluster, port)
    daemon = Daemon(config)
    try:
        daemon.wait_for_log("osd.2: starting -> healthy")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b'ceph_daemon="osd.2",state="healthy"} 1.0' in response.read()
        config.write_text("[loop]\nbogus = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        line = daemon.wait_for_log("reload failed, keeping the previous configuration")
        assert "loop.bogus: unknown key" in "".join(daemon.lines)
        write_config(config, sim.cluster, port, interval=0.5)
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for_log(f"configuration reloaded from {config}")
        sim.command(1, "stall")
        line = daemon.wait_for_log("osd.1: suspect -> zombie")
        assert "the process lives and its heartbeats still flow" in line
        daemon.wait_for_log("dry-run: would fence osd.1")
    finally:
        code = daemon.stop()
    assert code == 0
    assert "INFO watchdog: stopped" in "".join(daemon.lines)


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "watchdog.toml"
        write_config(config, "none", port)
        out = subprocess.run(
            [sys.executable, "-m", "watchdog", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


def test_sigint_stops_the_daemon_too(tmp_path):
    config = tmp_path / "watchdog.toml"
    write_config(config, "none", free_port())
    daemon = Daemon(config)
    daemon.wait_for_log("serving on http://")
    os.kill(daemon.proc.pid, signal.SIGINT)
    assert daemon.stop() == 0
