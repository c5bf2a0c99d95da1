"""The exporter: metric values by name, a golden /metrics, promtool, and /healthz."""

import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import cycle_until, fast_config, require_tool, state_of
from watchdog.daemon import Watchdog
from watchdog.export import Health, SnapshotMetrics, serve
from watchdog.exposition import Family, render
from watchdog.model import (
    BannerResult,
    ClusterMap,
    Endpoint,
    FdOutcome,
    FdSample,
    Incarnation,
    Listener,
    ListenSample,
    MapOsd,
    MapStatus,
    Msgr,
    Observation,
    OpsOutcome,
    OpsSample,
    OsdReport,
    OsdStatus,
    Outcome,
    ProbeRun,
    Role,
    Snapshot,
    State,
    Target,
)

GOLDEN = Path(__file__).parent / "fixtures" / "metrics.golden.txt"
BUILD = {"version": "1.2.3", "python_version": "3.11.7"}


MAP_OSD = MapOsd("osd.1", up=True, in_=True)


def golden_snapshot() -> Snapshot:
    public = Endpoint("127.0.0.1", 6800, Msgr.V2, Role.PUBLIC)
    beat = Endpoint("127.0.0.1", 6804, Msgr.V2, Role.HB_FRONT)
    target = Target(
        "osd.1",
        "ceph",
        Incarnation(4242, 100.0),
        (Listener(public, 11, present=False), Listener(beat, 12)),
    )
    observation = Observation(
        target,
        alive=True,
        banners=(
            BannerResult(public, Outcome.REFUSED, 0.0002),
            BannerResult(beat, Outcome.OK, 0.0004, connect_seconds=0.0001, banner_seconds=0.0003),
        ),
        fds=FdSample(FdOutcome.OK, open_fds=250, limit=256, seconds_to_exhaustion=12.5),
        ops=OpsSample(OpsOutcome.OK, in_flight=2, oldest_seconds=0.25, completed=77),
        listens=(ListenSample(beat, queue=0, backlog=512),),
        heartbeat_connections=4,
        map_osd=MAP_OSD,
    )
    status = OsdStatus(
        State.ZOMBIE, since=990.0, cause="client accept path dead", incarnation=target.incarnation
    )
    report = OsdReport(
        observation,
        status,
        {State.STARTING: 1, State.HEALTHY: 1, State.SUSPECT: 1, State.ZOMBIE: 1},
        restarts=0,
    )
    return Snapshot(
        taken_at=1_800_000_000.0,
        monotonic_at=1000.0,
        cycle_seconds=0.012,
        cycles=42,
        osds=(report,),
        listen_overflows=7,
        probe_runs=(ProbeRun("banner", 0.01), ProbeRun("fds", 0.001, "PermissionError: x")),
        actions_total={("fence_restart_verify_unfence", "failed"): 1},
        refusals_total={"cooldown": 2},
        step_failures_total={("osd.1", "restart"): 1},
        fenced=("osd.1",),
        map_status=MapStatus(
            source="rados",
            cluster_map=ClusterMap(
                epoch=17, flags=frozenset({"nodown", "sortbitwise"}), osds={"osd.1": MAP_OSD}
            ),
            fetched_at=995.0,
            last_ok=True,
            last_seconds=0.0023,
            attempts=9,
            failures=2,
        ),
    )


def exposition(snapshot) -> str:
    return render(SnapshotMetrics(BUILD).families(snapshot)).decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every series of an exposition, as prometheus_client's own parser reads it."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_match_the_golden_file():
    assert exposition(golden_snapshot()) == GOLDEN.read_text()


def test_values_are_exported_under_their_names_and_labels():
    parsed = samples(exposition(golden_snapshot()))

    def value(name, labels=None):
        return parsed.get((name, frozenset((labels or {}).items())))

    daemon = {"ceph_daemon": "osd.1"}
    assert value("osd_watchdog_osd_state", {**daemon, "state": "zombie"}) == 1
    assert value("osd_watchdog_osd_state", {**daemon, "state": "healthy"}) == 0
    assert value("osd_watchdog_osd_ops_observable", daemon) == 1
    assert value("osd_watchdog_osd_ops_in_flight", daemon) == 2
    assert value("osd_watchdog_osd_oldest_op_seconds", daemon) == 0.25
    assert value("osd_watchdog_osd_state_since_timestamp_seconds", daemon) == 1_800_000_000.0 - 10
    assert value("osd_watchdog_osd_transitions_total", {**daemon, "state": "zombie"}) == 1
    labels = {**daemon, "role": "public", "protocol": "v2", "address": "v2:127.0.0.1:6800"}
    assert value("osd_watchdog_probe_outcome", {**labels, "outcome": "ok"}) is None
    assert value("osd_watchdog_probe_outcome", {**labels, "outcome": "refused"}) == 1
    assert value("osd_watchdog_listener_vanished", labels) == 1
    beat = {**labels, "role": "hb_front", "address": "v2:127.0.0.1:6804"}
    assert value("osd_watchdog_listener_vanished", beat) is None  # still there: no series
    assert value("osd_watchdog_osd_fd_ratio", daemon) == pytest.approx(250 / 256)
    assert value("osd_watchdog_osd_fd_exhaustion_seconds", daemon) == 12.5
    assert value("osd_watchdog_osd_heartbeat_connections", daemon) == 4
    assert value("osd_watchdog_probe_run_success", {"probe": "fds"}) == 0
    assert (
        value(
            "osd_watchdog_actions_total",
            {"action": "fence_restart_verify_unfence", "result": "failed"},
        )
        == 1
    )


def test_label_values_and_help_texts_are_escaped_as_the_parser_expects():
    odd = 'a "quoted" back\\slash\nnew line'
    family = Family("osd_watchdog_odd", "help with \\ and\nnewline", "counter", ("where",))
    family.add_metric([odd], 3.0)
    family.add_metric(["inf"], float("inf"))
    (parsed,) = text_string_to_metric_families(render([family]).decode())
    assert (parsed.name, parsed.type, parsed.documentation) == (
        "osd_watchdog_odd",
        "counter",
        "help with \\ and\nnewline",
    )
    assert [(s.name, s.labels["where"], s.value) for s in parsed.samples] == [
        ("osd_watchdog_odd_total", odd, 3.0),
        ("osd_watchdog_odd_total", "inf", float("inf")),
    ]


def test_an_osd_that_leaves_the_snapshot_leaves_the_metrics():
    empty = Snapshot(taken_at=1.0, monotonic_at=1.0, cycle_seconds=0.1, cycles=1)
    text = exposition(empty)
    assert "osd.1" not in text
    assert "osd_watchdog_loops_total 1.0" in text


def test_the_golden_file_passes_promtool_check_metrics():
    promtool = require_tool("promtool")
    out = subprocess.run(
        [promtool, "check", "metrics"],
        input=GOLDEN.read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_health_fails_once_the_loop_stalls():
    snapshot = golden_snapshot()
    health = Health(lambda: snapshot, stall_after=4.0)
    assert health.check(snapshot.taken_at + 1) == (True, "ok: last cycle ended 1.0s ago")
    assert health.check(snapshot.taken_at + 9) == (
        False,
        "stalled: last cycle ended 9.0s ago (limit 4.0s)",
    )


@pytest.mark.integration
def test_a_live_scrape_of_the_simulator_passes_promtool_and_shows_a_zombie(sim):
    promtool = require_tool("promtool")
    watchdog = Watchdog(fast_config(sim.cluster), acting=False)
    server = serve(SnapshotMetrics(), Health(watchdog.latest, 60), ("127.0.0.1", 0))
    port = server.server_address[1]
    try:
        cycle_until(watchdog, lambda s: len(s.osds) == 3 and state_of(s, "osd.0") == "healthy")
        sim.command(0, "stall")
        cycle_until(watchdog, lambda s: state_of(s, "osd.0") == "zombie")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=5)
        missing.value.close()
    finally:
        server.shutdown()
        server.server_close()
    assert 'osd_watchdog_osd_state{ceph_daemon="osd.0",state="zombie"} 1.0' in body
    out = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_healthz_answers_503_when_nothing_has_run_for_too_long():
    health = Health(lambda: None, stall_after=0.001)
    server = serve(SnapshotMetrics(), health, ("127.0.0.1", 0))
    threading.Event().wait(0.01)
    try:
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(
                f"http://127.0.0.1:{server.server_address[1]}/healthz", timeout=5
            )
        assert failed.value.code == 503
        assert failed.value.read().decode().startswith("stalled: last cycle ended")
        failed.value.close()
    finally:
        server.shutdown()
        server.server_close()
