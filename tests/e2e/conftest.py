"""Fixtures for end-to-end tests on a real Ceph cluster and a real watchdog daemon."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_root, require_tool, unavailable, wait_for
from tests.e2e.cluster import BINARIES, CephCluster
from tests.e2e.releases import HOST, Release, release
from tests.process import Daemon, unused_port

if TYPE_CHECKING:
    from collections.abc import Iterator


def require_ceph() -> None:
    """Ceph's binaries and root, or skip (fail under CI=true)."""
    for binary in BINARIES:
        require_tool(binary)
    # Injecting faults into a running OSD needs ptrace rights over it (pidfd_getfd).
    require_root("the end-to-end tests need root")


# Fixtures that are a cluster of one release, chosen by the test's ``releases`` mark.
BY_RELEASE = ("ceph", "installed_ceph")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test on the ``ceph`` (or ``installed_ceph``) fixture runs on each release its
    ``releases`` mark names (``@pytest.mark.releases("16", "18", "20")``); without the mark,
    on the host's 16 only."""
    for name in BY_RELEASE:
        if name not in metafunc.fixturenames:
            continue
        marker = metafunc.definition.get_closest_marker("releases")
        numbers = marker.args if marker else (HOST.number,)
        metafunc.parametrize(name, numbers, indirect=True, ids=[f"ceph{n}" for n in numbers])


def cluster_release(number: str) -> Release:
    """The release, built if need be; skip without it (fail under CI=true)."""
    require_ceph()
    found = release(number)
    if found is None:
        unavailable(f"no Debian root for Ceph {number} (scripts/ceph-roots.sh needs root and apt)")
    return found


@contextlib.contextmanager
def throwaway_cluster(**options: Any) -> Iterator[CephCluster]:
    """A 1 mon, 1 mgr, 3 OSD memstore cluster (``options``: CephCluster's fields) in a new
    directory; every daemon stopped and the directory removed afterwards."""
    # Short: admin socket paths must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="ceph-e2e-", dir="/tmp"))
    try:
        with CephCluster(root, **{"osds": 3, **options}) as cluster:
            yield cluster
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ceph(request: pytest.FixtureRequest) -> Iterator[CephCluster]:
    """A fresh cluster of one release."""
    with throwaway_cluster(release=cluster_release(getattr(request, "param", HOST.number))) as c:
        yield c


class Watched:
    """A running watchdog's /metrics on ``port``, and the states it gives."""

    port: int
    daemon: Daemon

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        return _samples(requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text)

    def states(self) -> dict[str, str]:
        found = {}
        for labels, value in self.metrics().get("osd_watchdog_osd_state", []):
            if value == 1.0:
                found[labels["ceph_daemon"]] = labels["state"]
        return found

    def wait_sample(
        self, name: str, sample: tuple[dict[str, str], float], timeout: float = 5
    ) -> None:
        """Poll until /metrics has the sample: a transition is logged during a cycle and
        published with the snapshot at its end."""
        wait_for(lambda: sample in self.metrics().get(name, []), timeout,
                 f"{name} to have {sample}", every=0.25)  # fmt: skip

    def wait_states(self, wanted: dict[str, str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            try:
                seen = self.states()
            except requests.ConnectionError:
                seen = {}
            if seen == wanted:
                return
            threading.Event().wait(0.25)  # polling the daemon's /metrics; bounded
        said = "".join(self.daemon.lines[-15:])  # why, in the watchdog's own words
        pytest.fail(f"states {seen} never became {wanted}; its last log lines:\n{said}")


class Watch(Watched):
    """The watchdog daemon watching the test cluster, and its metrics."""

    def __init__(
        self,
        cluster: CephCluster,
        workdir: Path,
        act: dict[str, object] | None = None,
        sections: dict[str, dict[str, object]] | None = None,
        prefix: list[str] | None = None,
        **cluster_view: object,
    ) -> None:
        self.port = unused_port()
        self.sections = sections or {}  # more of the config: {"report": {"enabled": True}}
        self.cluster = cluster
        self.acting = {"state_dir": str(workdir / "state")} | (act or {})
        self.state_dir = Path(str(self.acting["state_dir"]))
        self.view = {
            "source": "rados",
            "conf": str(cluster.conf),
            "keyring": str(cluster.keyring),
            "client_name": "client.admin",
            "refresh_seconds": 2.0,
            "timeout_seconds": 2.0,
        } | cluster_view
        if cluster.release.contained:
            # The watchdog uses the client of its cluster's release, as on a real host: the
            # host's librados binding (Ceph 16) cannot read a newer release's keys.
            self.view["ceph_command"] = cluster.ceph_command
            if self.view["source"] == "rados":
                self.view["source"] = "cli"
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "watchdog.toml"
        self.write_config()
        self.daemon = Daemon(self.config, prefix=prefix)

    def write_config(self, **act: object) -> None:
        """(Re)write the config file; ``act`` changes keys of [act]."""
        self.acting |= act
        base: dict[str, dict[str, object]] = {
            "loop": {"interval_seconds": 0.5, "probe_timeout_seconds": 0.5},
            "web": {"listen_address": f"127.0.0.1:{self.port}"},
            "discovery": {"clusters": [self.cluster.name]},
            "cluster": self.view,
            "assess": {"startup_grace_seconds": 10},
            "act": self.acting,
        }
        tables = {name: base.get(name, {}) | self.sections.get(name, {}) for name in
                  {**base, **self.sections}}  # fmt: skip
        self.config.write_text(
            "".join(
                f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in keys.items())
                for name, keys in tables.items()
            )
        )

    def reload(self, **act: object) -> float:
        """Change [act] and send SIGHUP; returns when the reload is logged (its time)."""
        self.write_config(**act)
        sent = time.monotonic()
        self.daemon.proc.send_signal(signal.SIGHUP)
        self.daemon.wait_for_log("configuration reloaded", timeout=15, after=sent)
        return sent

    def transitions(self, daemon: str) -> list[str]:
        """'old -> new' for every transition of one OSD logged so far."""
        prefix = f"{daemon}: "
        found = []
        for line in self.daemon.lines:
            _, _, rest = line.partition(prefix)
            if rest and " -> " in rest:
                old, _, tail = rest.partition(" -> ")
                found.append(f"{old} -> {tail.split(':', 1)[0]}")
        return found

    def stop(self) -> int:
        return self.daemon.stop()


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


@pytest.fixture
def watch_factory(tmp_path) -> Iterator[object]:
    started: list[Watch] = []

    def start(
        cluster: CephCluster,
        act: dict[str, object] | None = None,
        sections: dict[str, dict[str, object]] | None = None,
        prefix: list[str] | None = None,
        **cluster_view: object,
    ) -> Watch:
        workdir = tmp_path / f"watch{len(started)}"
        watch = Watch(cluster, workdir, act, sections, prefix, **cluster_view)
        started.append(watch)
        return watch

    yield start
    for watch in started:
        watch.stop()


# A client of the cluster's own release (the host's librados cannot talk to a newer one):
# 4 KiB writes and reads at RATE a second until the stop file appears, then a JSON summary.
_IO_CLIENT = r"""
import json, os, sys, time
import rados
conf, keyring, pool, rate, stop = sys.argv[1:6]
handle = rados.Rados(conffile=conf, conf={"keyring": keyring})
handle.connect()
ioctx = handle.open_ioctx(pool)
ops, errors, payload = 0, [], b"x" * 4096
deadline = time.monotonic() + 600
while not os.path.exists(stop) and time.monotonic() < deadline:
    name = f"obj-{ops % 16}"
    try:
        ioctx.write_full(name, payload)
        assert ioctx.read(name, 4096) == payload
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    ops += 1
    time.sleep(1 / float(rate))
ioctx.close()
handle.shutdown()
print(json.dumps({"ops": ops, "errors": errors}))
"""


class ClientIO:
    """Light client IO through librados: a few small writes and reads a second, bounded.

    A process of the cluster's release (the root's python3-rados in a container), so it is a
    real client of that release; it stops by itself after ten minutes at most.
    """

    def __init__(self, cluster: CephCluster, pool: str, rate: float = 20.0) -> None:
        # One stop file per client: another client of the pool, stopped before, must not
        # stop this one as it starts.
        self.stop_file = cluster.root / f"io-{pool}-{uuid.uuid4().hex[:8]}.stop"
        self.argv = cluster.release.command(
            cluster.root,
            [cluster.release.python, "-c", _IO_CLIENT, str(cluster.conf), str(cluster.keyring),
             pool, str(rate), str(self.stop_file)],
        )  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None
        self.ops = 0
        self.errors: list[str] = []

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def stop(self) -> None:
        assert self.proc is not None
        self.stop_file.touch()
        out, err = self.proc.communicate(timeout=60)
        if self.proc.returncode != 0:
            pytest.fail(f"the IO client failed ({self.proc.returncode}): {err.strip()}")
        summary = json.loads(out)
        self.ops, self.errors = summary["ops"], summary["errors"]
