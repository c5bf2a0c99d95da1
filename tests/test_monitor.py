"""Monitor clients and the map watcher, against a real `ceph` CLI and unreachable monitors."""

import socket
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool, unavailable
from watchdog.config import load_config, parse_config
from watchdog.daemon import Watchdog
from watchdog.discover.mapwatch import MapWatcher
from watchdog.errors import MonitorError
from watchdog.monitor import CliClient, RadosClient, load_rados, make_client


def unreachable_conf(tmp_path):
    """A ceph.conf whose only monitor is a loopback port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon host = v2:127.0.0.1:{port}\nauth client required = none\n")
    return conf


def cluster_config(**cluster):
    return parse_config({"cluster": cluster}).cluster


def test_none_means_no_client_and_cli_means_the_cli():
    assert make_client(cluster_config(source="none")) is None
    assert isinstance(make_client(cluster_config(source="cli")), CliClient)


def test_auto_prefers_the_cli_and_falls_back_to_librados():
    require_tool("ceph")
    assert isinstance(make_client(cluster_config(source="auto")), CliClient)
    if load_rados() is None:
        unavailable("the librados binding (python3-rados) is not installed")
    without_cli = cluster_config(source="auto", ceph_command="/nonexistent/ceph")
    client = make_client(without_cli)
    assert isinstance(client, RadosClient)
    client.close()


def test_a_missing_ceph_command_is_a_clear_error():
    client = CliClient(cluster_config(ceph_command="/nonexistent/ceph"))
    with pytest.raises(MonitorError, match=r"/nonexistent/ceph not found: install ceph-common"):
        client.command("osd dump", timeout=2)


def test_an_unreachable_monitor_fails_within_the_timeout_through_the_cli(tmp_path):
    require_tool("ceph")
    client = CliClient(cluster_config(source="cli", conf=str(unreachable_conf(tmp_path))))
    with pytest.raises(MonitorError, match=r"ceph osd dump( exited \d+|: no answer within)"):
        client.command("osd dump", timeout=2)


def test_an_unreachable_monitor_fails_through_librados(tmp_path):
    if load_rados() is None:
        unavailable("the librados binding (python3-rados) is not installed")
    config = cluster_config(source="rados", conf=str(unreachable_conf(tmp_path)))
    client = make_client(config)
    assert client is not None
    with pytest.raises(MonitorError, match="librados connect"):
        client.command("osd dump", timeout=1)
    client.close()


def test_the_watcher_records_failures_and_keeps_no_map(tmp_path, caplog):
    require_tool("ceph")
    config = cluster_config(source="cli", conf=str(unreachable_conf(tmp_path)), timeout_seconds=2)
    watcher = MapWatcher(CliClient(config), config)
    first = watcher.refresh()
    second = watcher.refresh()
    assert (first.last_ok, second.attempts, second.failures) == (False, 2, 2)
    assert second.cluster_map is None
    assert second.fresh(now=0.0, max_age=60) is None
    assert second.last_error.startswith("ceph osd dump")
    # One warning for a failure that repeats, not one per attempt.
    warnings = [r for r in caplog.records if "cannot read the OSD map" in r.message]
    assert len(warnings) == 1


# A monitor that answers garbage cannot be arranged with a real Ceph: this small stand-in for
# the `ceph` command prints what a confused or truncated answer would look like.
GARBAGE = {
    "partial JSON": 'print(\'{"epoch": 5, "osds": [{"osd": 0\')',
    "not JSON at all": "print('Error EINVAL: something unexpected')",
    "the wrong JSON": "print('[1, 2, 3]')",
}


@pytest.mark.parametrize("answer", GARBAGE.values(), ids=GARBAGE.keys())
def test_a_monitor_answering_garbage_is_a_failed_refresh_not_a_crash(tmp_path, answer):
    fake = tmp_path / "ceph"
    fake.write_text(f"#!{sys.executable}\n{answer}\n")
    fake.chmod(0o755)
    config = cluster_config(source="cli", ceph_command=str(fake), timeout_seconds=5)
    status = MapWatcher(CliClient(config), config).refresh()
    assert status.last_ok is False
    assert status.cluster_map is None
    assert status.last_error  # says why: "not JSON" or "unexpected osd dump"


def sample_cli(tmp_path, name: str):
    """A `ceph` CLI that answers `osd dump` and `osd metadata` with the real samples."""
    samples = Path(__file__).resolve().parent / "fixtures" / "ceph-samples"
    fake = tmp_path / name
    fake.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"which = 'osd-metadata' if 'metadata' in sys.argv else 'osd-dump'\n"
        f"print(open(f'{samples}/{{which}}.json').read())\n"
    )
    fake.chmod(0o755)
    return fake


def test_a_reload_reconfigures_the_map_watcher_in_place(tmp_path):
    path = tmp_path / "watchdog.toml"

    def write(command: str, timeout: float, source: str = "cli") -> None:
        path.write_text(
            f'[cluster]\nsource = "{source}"\nceph_command = "{command}"\n'
            f"timeout_seconds = {timeout}\nrefresh_seconds = 3600\n"
            f'[act]\nstate_dir = "{tmp_path / "state"}"\n'
        )

    first, second = sample_cli(tmp_path, "ceph-a"), sample_cli(tmp_path, "ceph-b")
    write(str(first), 5)
    watchdog = Watchdog(load_config(path), path, acting=False)
    watcher = watchdog.map_watcher
    assert watcher is not None
    watchdog.refresh_map()
    held = watcher.status().cluster_map
    assert held is not None

    # Timings only: the same watcher, client, map and counters.
    client = watcher.client
    write(str(first), 7)
    assert watchdog.reload()
    assert watchdog.map_watcher is watcher
    assert watcher.client is client
    assert watcher.config.timeout_seconds == 7
    assert (watcher.status().attempts, watcher.status().cluster_map) == (1, held)

    # Another client: the map and counters stay; the new client is swapped in by the next
    # refresh (the watcher's own thread, in the daemon), never under a request in flight.
    write(str(second), 7)
    assert watchdog.reload()
    assert watchdog.map_watcher is watcher
    assert watcher.status().cluster_map is not None
    assert watcher.client is client
    watchdog.refresh_map()
    assert watcher.client is not client
    assert isinstance(watcher.client, CliClient)
    assert str(second) in watcher.client.argv
    assert (watcher.status().attempts, watcher.status().failures) == (2, 0)

    # No cluster view any more: the watcher goes.
    write(str(second), 7, source="none")
    assert watchdog.reload()
    assert watchdog.map_watcher is None
