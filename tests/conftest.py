"""Shared fixtures: real listeners on 127.0.0.1, simulated OSDs, and a watchdog to drive."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

from watchdog.config import Config, parse_config
from watchdog.sim.cluster import SimCluster

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from watchdog.daemon import Watchdog
    from watchdog.model import Snapshot

IN_CI = os.environ.get("CI") == "true"
CHECKOUT = Path(__file__).resolve().parents[1]
# Where watchdogs under test keep fences and the audit file: never /var/lib.
STATE_DIR = Path(tempfile.gettempdir()) / f"osd-watchdog-tests-{os.getpid()}"


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: skip on a laptop, fail under CI=true."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_root(why: str) -> None:
    """Root, or the test is ``unavailable``."""
    if os.geteuid() != 0:
        unavailable(why)


def require_tool(name: str) -> str:
    """Path of a system tool, or the test is ``unavailable``."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (the README's test command installs it)")
    return path


@pytest.fixture(scope="session")
def release_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a release ships, built once from this checkout (scripts/build-release.sh): the
    sdist, the wheel and the two .debs (lintian clean, or the build fails)."""
    for tool in ("git", "dpkg-buildpackage", "dh_python3", "lintian"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [str(CHECKOUT / "scripts" / "build-release.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if built.returncode != 0:
        pytest.fail(f"scripts/build-release.sh failed:\n{built.stdout}{built.stderr}")
    return out


class Server:
    """A loopback listener whose behaviour per connection is a function of the socket."""

    def __init__(self, handle: Callable[[socket.socket], None] | None, backlog: int = 16) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        if handle is not None:
            self.sock.settimeout(0.05)
            self._thread = threading.Thread(target=self._serve, args=(handle,), daemon=True)
            self._thread.start()

    def _serve(self, handle: Callable[[socket.socket], None]) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            try:
                handle(conn)
            except OSError:  # the prober hung up first (a reset, a timeout): its result says so
                continue

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for conn in self.conns:
            conn.close()


@pytest.fixture
def server() -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def make(handle: Callable[[socket.socket], None] | None, backlog: int = 16) -> Server:
        made.append(Server(handle, backlog))
        return made[-1]

    yield make
    for item in made:
        item.close()


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sim() -> Iterator[SimCluster]:
    with SimCluster(3, nofile=256) as cluster:
        yield cluster


def fast_config(cluster: str, **assess: object) -> Config:
    """A config watching only the given simulated cluster, cycling quickly."""
    return parse_config(
        {
            "loop": {"interval_seconds": 0.25, "probe_timeout_seconds": 0.5},
            "discovery": {"clusters": [cluster]},
            "cluster": {"source": "none"},  # simulated OSDs have no monitors
            "act": {"state_dir": str(STATE_DIR)},
            "assess": assess,
        }
    )


def wait_for(
    condition: Callable[[], object], timeout: float, what: str, every: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds.

    Tests wait for what they are about, never for a fixed time that is usually enough.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a wait that a signal cannot cut short
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        pause.wait(every)


def cycle_until(
    watchdog: Watchdog, done: Callable[[Snapshot], bool], max_cycles: int = 40
) -> Snapshot:
    """Run cycles at the configured pace until ``done`` holds; fail after ``max_cycles``."""
    pause = threading.Event()
    for _ in range(max_cycles):
        snapshot = watchdog.cycle()
        if done(snapshot):
            return snapshot
        pause.wait(watchdog.config.loop.interval_seconds)
    pytest.fail(f"condition not reached in {max_cycles} cycles; last: {snapshot.osds}")


def state_of(snapshot: Snapshot, daemon: str) -> str:
    for report in snapshot.osds:
        if report.observation.target.daemon == daemon:
            return report.status.state.value
    return "absent"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that starts simulated OSDs is an integration test: ``make unit`` stays fast."""
    unmarked = [
        item.nodeid
        for item in items
        if "sim" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("integration") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests using the sim fixture must be marked integration: " + ", ".join(unmarked)
        )
