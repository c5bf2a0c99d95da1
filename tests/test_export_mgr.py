"""Reporting to the mgr module never slows or stops probing, whatever the mgr does."""

import threading
import time

from tests.conftest import STATE_DIR
from watchdog.config import parse_config
from watchdog.daemon import Watchdog


def watchdog_reporting_through(sim, ceph_command: str) -> Watchdog:
    config = parse_config(
        {
            "loop": {"interval_seconds": 0.2, "probe_timeout_seconds": 0.5},
            "discovery": {"clusters": [sim.cluster]},
            "cluster": {"source": "cli", "ceph_command": ceph_command, "refresh_seconds": 60},
            "report": {"enabled": True, "interval_seconds": 0.2, "timeout_seconds": 1.0},
            "act": {"state_dir": str(STATE_DIR), "canary": False},
        }
    )
    return Watchdog(config)


def run_for(watchdog: Watchdog, seconds: float) -> None:
    loop = threading.Thread(target=watchdog.run)
    loop.start()
    time.sleep(seconds)
    watchdog.stop()
    loop.join(timeout=10)
    assert not loop.is_alive()


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


def test_a_missing_ceph_command_is_a_failed_report_and_probing_goes_on(sim):
    watchdog = watchdog_reporting_through(sim, "/nonexistent/ceph")
    run_for(watchdog, 1.5)
    snapshot = watchdog.latest()
    assert snapshot is not None
    assert snapshot.cycles >= 5
    assert snapshot.report_status is not None
    assert snapshot.report_status.failures >= 1
