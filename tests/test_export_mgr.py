"""Reporting to the mgr module never slows or stops probing, whatever the mgr does."""

import json
import threading
import time
from typing import cast

import pytest

from tests.conftest import STATE_DIR, wait_for
from watchdog.config import load_config, parse_config
from watchdog.daemon import Watchdog
from watchdog.discover.mapped import HostIdentity
from watchdog.export_mgr import MgrReporter, _audit_message
from watchdog.model import Incarnation, Observation, OsdReport, OsdStatus, Snapshot, State, Target
from watchdog.monitor import Answer, MonClient


def watchdog_reporting_through(sim, ceph_command: str, every: float = 0.2) -> Watchdog:
    config = parse_config(
        {
            "loop": {"interval_seconds": 0.2, "probe_timeout_seconds": 0.5},
            "discovery": {"clusters": [sim.cluster]},
            "cluster": {"source": "cli", "ceph_command": ceph_command, "refresh_seconds": 60},
            "report": {"enabled": True, "interval_seconds": every, "timeout_seconds": 1.0},
            "act": {"state_dir": str(STATE_DIR), "canary": False},
        }
    )
    return Watchdog(config)


def states(watchdog: Watchdog) -> set[str]:
    """The states of the last cycle's OSDs."""
    snapshot = watchdog.latest()
    return {r.status.state.value for r in snapshot.osds} if snapshot else set()


def run_for(watchdog: Watchdog, seconds: float) -> None:
    loop = threading.Thread(target=watchdog.run)
    loop.start()
    time.sleep(seconds)
    watchdog.stop()
    loop.join(timeout=10)
    assert not loop.is_alive()


@pytest.mark.integration
def test_a_mgr_that_never_answers_costs_the_loop_nothing(sim, tmp_path):
    hanging = tmp_path / "ceph"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")  # a CLI whose mgr never answers
    hanging.chmod(0o755)
    watchdog = watchdog_reporting_through(sim, str(hanging))
    run_for(watchdog, 3.0)
    snapshot = watchdog.latest()
    assert snapshot is not None
    # About one cycle per 0.2 s interval, although every report hangs for its 1 s timeout.
    assert snapshot.cycles >= 10
    assert snapshot.report_status is not None
    assert snapshot.report_status.attempts >= 1
    assert snapshot.report_status.failures == snapshot.report_status.attempts
    assert snapshot.report_status.last_ok is False
    assert {r.status.state.value for r in snapshot.osds} == {"healthy"}


@pytest.mark.integration
def test_a_missing_ceph_command_is_a_failed_report_and_probing_goes_on(sim):
    watchdog = watchdog_reporting_through(sim, "/nonexistent/ceph", every=1.0)
    run_for(watchdog, 2.5)
    snapshot = watchdog.latest()
    assert snapshot is not None
    assert snapshot.cycles >= 8
    assert snapshot.report_status is not None
    assert snapshot.report_status.failures >= 1
    # Failed reports are retried every interval, not every cycle: at most one at start (the
    # first states), one per state change (starting -> healthy), and one per interval.
    assert snapshot.report_status.attempts <= 5


@pytest.mark.integration
def test_a_reload_keeps_the_reporter_and_its_queue_and_turning_it_off_stops_it(sim, tmp_path):
    path = tmp_path / "watchdog.toml"
    on = (
        '[loop]\ninterval_seconds = 0.2\n[discovery]\nclusters = ["%s"]\n'
        '[cluster]\nsource = "cli"\nceph_command = "/nonexistent/ceph"\n'
        '[act]\nstate_dir = "%s"\ncanary = false\n'
        "[report]\nenabled = %s\ninterval_seconds = %s\n"
    )
    path.write_text(on % (sim.cluster, STATE_DIR, "true", 0.2))
    watchdog = Watchdog(load_config(path), path)
    reporter = watchdog.reporter
    assert reporter is not None
    reporter.audited({"time": time.time(), "ceph_daemon": "osd.0", "result": "dry_run"})
    loop = threading.Thread(target=watchdog.run)
    loop.start()
    try:
        wait_for(lambda: reporter.running, 5, "the reporter's thread")
        path.write_text(on % (sim.cluster, STATE_DIR, "true", 5.0))
        watchdog.request_reload()
        wait_for(lambda: reporter.config.report.interval_seconds == 5.0, 10, "the reload")
        assert watchdog.reporter is reporter  # same thread, same queue
        assert reporter.running
        assert reporter.events[0].message.startswith("dry run: would remediate")
        path.write_text(on % (sim.cluster, STATE_DIR, "false", 5.0))
        watchdog.request_reload()
        wait_for(lambda: watchdog.reporter is None, 10, "the reporter turned off")
        assert not any(t.name == "mgr-report" for t in threading.enumerate())
    finally:
        watchdog.stop()
        loop.join(timeout=10)


@pytest.mark.parametrize(
    ("record", "line"),
    [
        ({"ceph_daemon": "osd.3", "result": "refused", "guard": "cooldown: 12 s left",
          "evidence": "client accept path dead"},
         "remediation of osd.3 refused: cooldown: 12 s left because client accept path dead"),
        ({"ceph_daemon": "osd.3", "result": "started", "action": "fence_restart",
          "evidence": "dead"}, "remediation of osd.3 (fence_restart) started because dead"),
        ({"ceph_daemon": "osd.3", "step": "fence", "result": "done", "detail": "noup set"},
         "remediation of osd.3: step fence done: noup set"),
        ({"ceph_daemon": "osd.3", "step": "restart", "result": "failed", "detail": "exit 1"},
         "remediation of osd.3: step restart failed: exit 1"),
        ({"ceph_daemon": "osd.3", "result": "resumed", "steps": ["unfence"]}, None),
    ],
)  # fmt: skip
def test_each_audit_record_worth_it_becomes_one_cluster_log_line(record, line):
    assert _audit_message(record) == line


def module_answering(tmp_path):
    """A ceph CLI whose mgr module takes every report whole; each report leaves a line."""
    calls = tmp_path / "reports"
    cli = tmp_path / "ceph"
    cli.write_text(
        "#!/bin/sh\n"
        # Only the report: the key's name (client.osd-watchdog) is in every command line.
        'case "$*" in *"osd-watchdog report"*) ;; *) exit 1 ;; esac\n'
        # The body renamed into place: a test reading it never sees half of it.
        f"cat > {tmp_path}/body.tmp; mv {tmp_path}/body.tmp {tmp_path}/body.json\n"
        f"echo report >> {calls}\n"
        """echo '{"accepted": [], "refused": [], "events_through": 0}'\n"""
    )
    cli.chmod(0o755)
    return cli, calls


def reporting_every_cycle(sim, cli, keepalive: float) -> Watchdog:
    """A watchdog over ``sim`` that looks at its report every 0.2 s cycle, through ``cli``."""
    config = parse_config(
        {
            "loop": {"interval_seconds": 0.2, "probe_timeout_seconds": 0.5},
            "discovery": {"clusters": [sim.cluster]},
            "cluster": {"source": "cli", "ceph_command": str(cli), "refresh_seconds": 60},
            "report": {"enabled": True, "interval_seconds": 0.2, "timeout_seconds": 2.0,
                       "keepalive_seconds": keepalive},
            "act": {"state_dir": str(STATE_DIR), "canary": False},
        }
    )  # fmt: skip
    return Watchdog(config)


@pytest.mark.integration
@pytest.mark.parametrize(("keepalive", "fewest", "most"), [(1.0, 3, 7), (0.2, 10, 40)])
def test_an_unchanged_report_is_sent_again_only_at_the_keepalive(
    sim, tmp_path, keepalive, fewest, most
):
    cli, calls = module_answering(tmp_path)
    watchdog = reporting_every_cycle(sim, cli, keepalive)
    run_for(watchdog, 3.2)
    snapshot = watchdog.latest()
    assert snapshot is not None
    assert {r.status.state.value for r in snapshot.osds} == {"healthy"}
    assert snapshot.report_status is not None
    assert snapshot.report_status.failures == 0
    # Steady healthy OSDs for about 3 s: the first states, the change to healthy, then one
    # per keepalive (1 s) rather than one per 0.2 s interval.
    sent = len(calls.read_text().splitlines())
    assert fewest <= sent <= most


@pytest.mark.integration
def test_a_state_change_is_sent_at_once_even_inside_the_keepalive(sim, tmp_path):
    cli, _ = module_answering(tmp_path)
    watchdog = reporting_every_cycle(sim, cli, keepalive=60.0)
    loop = threading.Thread(target=watchdog.run)
    loop.start()
    try:
        body = tmp_path / "body.json"

        def told() -> dict[str, str]:
            """Each OSD's state in the last report the module took."""
            osds = json.loads(body.read_text())["osds"] if body.exists() else []
            return {o["daemon"]: o["state"] for o in osds}

        every = {f"osd.{i}" for i in range(sim.count)}
        wait_for(lambda: told() == dict.fromkeys(every, "healthy"), 10, "healthy reported")
        # Nothing changes now, and the keepalive is 60 s: only the change can be sent.
        sim.kill(0)
        wait_for(lambda: told().get("osd.0") != "healthy", 20, "a report of the exited OSD")
        # Without a map, this host reports under its short name, as Ceph records it.
        assert json.loads(body.read_text())["host"] == min(HostIdentity.of(None).names, key=len)
    finally:
        watchdog.stop()
        loop.join(timeout=10)


class PacingModule:
    """A mgr client whose module takes every report whole and asks for ``keepalive``."""

    name = "pacing"

    def __init__(self, keepalive: object) -> None:
        self.keepalive = keepalive
        self.bodies: list[dict] = []

    def mgr_ask(self, prefix: str, inbuf: bytes, timeout: float, fmt: str = "json") -> Answer:  # noqa: ARG002
        self.bodies.append(json.loads(inbuf))
        reply = {"accepted": [], "refused": [], "events_through": 0, "keepalive": self.keepalive}
        return Answer(0, json.dumps(reply).encode(), "")

    def close(self) -> None:
        pass


def steady_reporter(module: PacingModule, monkeypatch) -> tuple[MgrReporter, list[float]]:
    """A reporter (keepalive 60 s) with one healthy OSD, on a clock the test moves."""
    clock = [1000.0]
    monkeypatch.setattr("watchdog.export_mgr.time.monotonic", lambda: clock[0])
    config = parse_config({"report": {"enabled": True, "keepalive_seconds": 60.0},
                           "act": {"state_dir": str(STATE_DIR)}})  # fmt: skip
    reporter = MgrReporter(config, client=cast("MonClient", module))  # only mgr_ask is used
    target = Target("osd.0", "ceph", Incarnation(100, 1.0))
    osd = OsdReport(Observation(target, True), OsdStatus(State.HEALTHY, 5.0, "banners"))
    reporter.offer(Snapshot(taken_at=100.0, monotonic_at=10.0, cycle_seconds=0.1, cycles=3,
                            osds=(osd,), host="a"))  # fmt: skip
    return reporter, clock


def test_a_longer_keepalive_the_module_asks_for_is_kept_and_declared(monkeypatch):
    module = PacingModule(120.0)  # 1,000 hosts at keepalive_rate 10: 120 s
    reporter, clock = steady_reporter(module, monkeypatch)
    assert reporter.send(keepalive=True)
    assert module.bodies[-1]["interval"] == 60.0  # said before the module asked
    assert reporter.keepalive() == 120.0
    assert reporter.status.keepalive_seconds == 120.0  # osd_watchdog_mgr_report_keepalive_seconds
    clock[0] += 119
    assert reporter.send(keepalive=True)
    assert len(module.bodies) == 1  # unchanged, and inside the module's keepalive
    clock[0] += 2
    assert reporter.send(keepalive=True)
    assert len(module.bodies) == 2
    assert module.bodies[-1]["interval"] == 120.0  # the module gives two of these
    module.keepalive = 30.0  # a smaller cluster: our own 60 s is longer, and kept
    clock[0] += 121
    assert reporter.send(keepalive=True)
    assert reporter.keepalive() == 60.0


@pytest.mark.parametrize("asked", [float("nan"), -1.0, 7200.0, "120"])
def test_a_keepalive_the_reporter_cannot_honour_is_an_unexpected_reply(monkeypatch, asked):
    reporter, _ = steady_reporter(PacingModule(asked), monkeypatch)
    assert not reporter.send(keepalive=True)
    assert reporter.status.failures == 1
    assert reporter.keepalive() == 60.0
