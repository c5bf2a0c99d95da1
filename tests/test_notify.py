"""systemd's notify protocol, spoken by the real daemon to a datagram socket the test owns."""

import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.process import Daemon, unused_port
from watchdog.notify import Notifier

NETSTAT = "TcpExt: ListenOverflows ListenDrops\nTcpExt: 0 0\n"


class NotifySocket:
    """What systemd would hold: a datagram socket, and every message received on it."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []

    def collect(self, seconds: float) -> list[dict[str, str]]:
        """Messages received in the next ``seconds``."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            got.append(fields)
        return got

    def wait_for(self, key: str, timeout: float = 15) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for fields in self.collect(0.1):
                if key in fields:
                    return fields
        pytest.fail(f"no {key} within {timeout}s")


def release(netstat: Path) -> None:
    """Feed a reader blocked on the FIFO, then put a plain file back."""
    if not netstat.is_fifo():
        return
    try:
        fd = os.open(netstat, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:  # ENXIO: nobody is reading it
        pass
    else:
        with os.fdopen(fd, "w") as pipe:
            pipe.write(NETSTAT)
    replacement = netstat.with_name("netstat.new")
    replacement.write_text(NETSTAT)
    replacement.replace(netstat)


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.integration
def test_ready_then_keepalives_that_stop_while_the_loop_hangs(tmp_path):
    # The loop reads <proc_root>/net/netstat every cycle. Swapping that file for a FIFO makes
    # the read block: a genuinely hung loop in a live process, no test hook in the daemon.
    proc_root = tmp_path / "proc"
    (proc_root / "net").mkdir(parents=True)
    netstat = proc_root / "net" / "netstat"
    netstat.write_text(NETSTAT)
    port = unused_port()
    config = tmp_path / "watchdog.toml"
    config.write_text(
        "[loop]\ninterval_seconds = 0.2\nprobe_timeout_seconds = 0.2\n"
        f'[web]\nlisten_address = "127.0.0.1:{port}"\nstall_after_seconds = 1.0\n'
        f'[discovery]\nlocal = false\nproc_root = "{proc_root}"\n[cluster]\nsource = "none"\n'
        f'[act]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    systemd = NotifySocket(tmp_path / "notify")
    daemon = Daemon(config, {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"})
    try:
        ready = systemd.wait_for("READY")
        assert ready["READY"] == "1"
        assert ready["MAINPID"] == str(daemon.proc.pid)
        assert ready["STATUS"] == "no OSDs found"
        assert sum("WATCHDOG" in m for m in systemd.collect(1.0)) >= 3

        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        fifo.replace(netstat)
        systemd.collect(0.5)  # the cycle under way may still finish
        assert not any("WATCHDOG" in m for m in systemd.collect(1.5))
        assert healthz(port) == 503  # the HTTP thread lives and says the loop is stuck
        assert daemon.proc.poll() is None

        # Unblock the read: the loop goes on and so do the keep-alives.
        release(netstat)
        systemd.wait_for("WATCHDOG")
        assert healthz(port) == 200
    finally:
        release(netstat)  # never leave the daemon blocked on the FIFO
        code = daemon.stop()
        stopping = systemd.collect(0.3)
        systemd.sock.close()
    assert code == 0
    assert any(m.get("STOPPING") == "1" for m in stopping)


def test_no_notify_socket_means_nothing_is_sent():
    notifier = Notifier({})
    assert not notifier.enabled
    notifier.ready("x")  # a no-op, not an error
    assert notifier.keepalive_seconds is None


def test_abstract_socket_names_and_keepalive_period():
    name = f"@osd-watchdog-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name[1:])
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "30000000"})
        assert notifier.keepalive_seconds == 15.0
        notifier.alive("3 OSD(s): 3 healthy")
        assert sock.recv(100) == b"WATCHDOG=1\nSTATUS=3 OSD(s): 3 healthy"
        notifier.close()


def test_a_watchdog_meant_for_another_pid_is_ignored():
    notifier = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.keepalive_seconds is None
