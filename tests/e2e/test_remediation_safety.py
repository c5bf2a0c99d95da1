"""Remediation you can trust, on a real Ceph cluster: each defect of issue 12, reproduced.

* an operator's flag set a second before the fault is honoured (the map is read again);
* a reload mid-remediation lets it finish; a stop or a crash mid-way is resumed next start;
* the guards' history survives a restart of the watchdog;
* an OSD this watchdog is restarting counts as failing; fences elsewhere in the cluster and
  Ceph's own ok-to-stop are respected;
* a second watchdog on the same state_dir does not act.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time

import pytest

from tests.conftest import wait_for
from tests.e2e.faults import unmute_listeners
from tests.e2e.test_real_ceph import HEALTHY, map_says_up, mute_public
from tests.e2e.test_remediation import audit, osd_entry

pytestmark = pytest.mark.integration


def restart_command(ceph, down_seconds: float = 0.0) -> list[str]:
    """The test cluster's restart, optionally slow (the OSD stays stopped that long)."""
    return [
        sys.executable,
        "-m",
        "tests.e2e.restart_osd",
        str(ceph.root),
        "{id}",
        str(down_seconds),
    ]


def noup_osds(ceph) -> set[str]:
    return {
        f"osd.{o['osd']}" for o in ceph.ceph_json("osd", "dump")["osds"] if "noup" in o["state"]
    }


def healed(ceph, watch, daemon: str, after: float) -> None:
    """The whole remediation ran and the OSD is back: up, no noup, nothing fenced."""
    for step in ("fence", "restart", "verify", "unfence"):
        watch.daemon.wait_for_log(f"{daemon}: {step} done", timeout=90, after=after)
    ceph.wait(lambda: osd_entry(ceph, daemon)["up"], 60, f"{daemon} up again")
    assert "noup" not in osd_entry(ceph, daemon)["state"]
    assert json.loads((watch.state_dir / "fences.json").read_text()) == {}


def fence_osd1(ceph, watch_factory, down_seconds: float = 0.0, **act: object):
    """An acting watchdog on a healthy, clean cluster, osd.1 muted and fenced by it.

    The restart takes ``down_seconds`` more: a remediation in progress to act upon.
    Returns the watch, the time of the fault, and the [act] settings it runs with.
    """
    act = {"dry_run": False, "restart_command": restart_command(ceph, down_seconds)} | act
    watch = watch_factory(ceph, act=act, source="rados")
    watch.wait_states(HEALTHY)
    ceph.wait_clean()
    started = time.monotonic()
    mute_public(ceph, "osd.1")
    watch.daemon.wait_for_log("osd.1: fence done", timeout=30, after=started)
    return watch, started, act


def refused_osd1(ceph, watch_factory):
    """An acting watchdog, osd.1 muted; returns the watch and its line refusing to act."""
    watch = watch_factory(ceph, act={"dry_run": False}, source="rados")
    watch.wait_states(HEALTHY)
    ceph.wait_clean()
    faulted = time.monotonic()
    mute_public(ceph, "osd.1")
    return watch, watch.daemon.wait_for_log("osd.1: not acting", timeout=20, after=faulted)


# Flags set with `ceph osd set/add-...`, what undoes them, and the guard that must refuse.
FLAGS = [
    *[(("set", "nodown"), ("unset", "nodown"), "nodown: the cluster flag nodown is set")] * 5,
    (("add-nodown", "osd.1"), ("rm-nodown", "osd.1"), "nodown: osd.1 has the nodown flag"),
    (("set", "noup"), ("unset", "noup"), "noup: the cluster flag noup is set"),
]


def test_a_flag_set_a_second_before_the_fault_is_honoured_every_time(ceph, watch_factory):
    # The CLI and a 30 s refresh: the loop's own map is old when the zombie is called.
    act = {"dry_run": False, "cooldown_seconds": 0.0}
    watch = watch_factory(ceph, act=act, source="cli", refresh_seconds=30.0, timeout_seconds=5.0)
    watch.wait_states(HEALTHY)
    ceph.wait_clean()
    for (verb, what), (undo, _), refusal in FLAGS:
        ceph.ceph("osd", verb, what)
        flagged = time.monotonic()
        threading.Event().wait(1.0)  # the operator's flag, one second before the fault
        pid, epolls = mute_public(ceph, "osd.1")
        line = watch.daemon.wait_for_log("osd.1: not acting", timeout=20, after=flagged)
        assert refusal in line
        unmute_listeners(pid, epolls)
        watch.daemon.wait_for_log("osd.1: zombie -> healthy", timeout=20, after=flagged)
        ceph.ceph("osd", undo, what)
        assert map_says_up(ceph, "osd.1")
        assert noup_osds(ceph) == set()
    assert [r["result"] for r in audit(watch)] == ["refused"] * len(FLAGS)


def test_a_reload_mid_restart_lets_the_remediation_finish_and_the_loop_goes_on(ceph, watch_factory):
    watch, started, _ = fence_osd1(ceph, watch_factory, 6.0)
    loops = watch.metrics()["osd_watchdog_loops_total"][0][1]
    watch.reload(step_timeout_seconds=45.0)  # while the restart step runs
    # The loop went on cycling while the remediation ran (it never joins it).
    wait_for(lambda: watch.metrics()["osd_watchdog_loops_total"][0][1] >= loops + 4, 5,
             "four more cycles of the loop during the reload", every=0.25)  # fmt: skip
    healed(ceph, watch, "osd.1", started)
    assert not any("verify failed" in line for line in watch.daemon.lines)
    watch.wait_states(HEALTHY, timeout=60)
    assert watch.metrics().get("osd_watchdog_fenced", []) == []


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "crashed"])
def test_a_watchdog_ended_mid_remediation_is_resumed_by_the_next_start(ceph, watch_factory, how):
    # Stopped, it waits up to 5 s for steps to record where they are: the restart outlasts it.
    first, _, act = fence_osd1(ceph, watch_factory, 8.0 if how is signal.SIGTERM else 3.0)
    first.daemon.proc.send_signal(how)  # mid-restart
    first.daemon.proc.wait(timeout=15)
    fences = json.loads((first.state_dir / "fences.json").read_text())
    assert fences["osd.1"]["steps_left"] == ["restart", "verify", "unfence"]
    assert "noup" in osd_entry(ceph, "osd.1")["state"]
    second = watch_factory(ceph, act=act | {"state_dir": str(first.state_dir)}, source="rados")
    line = second.daemon.wait_for_log("osd.1: resuming the remediation", timeout=30)
    assert "restart, verify, unfence" in line
    for step in ("restart", "verify", "unfence"):
        second.daemon.wait_for_log(f"osd.1: {step} done", timeout=90)
    ceph.wait(lambda: osd_entry(ceph, "osd.1")["up"], 60, "osd.1 up again")
    assert noup_osds(ceph) == set()
    assert json.loads((second.state_dir / "fences.json").read_text()) == {}
    second.wait_states(HEALTHY, timeout=60)


def test_a_restarted_watchdog_keeps_the_cooldown_of_the_one_before(ceph, watch_factory):
    first, started, act = fence_osd1(ceph, watch_factory)
    healed(ceph, first, "osd.1", started)
    first.wait_states(HEALTHY, timeout=60)
    assert first.stop() == 0
    second = watch_factory(ceph, act=act | {"state_dir": str(first.state_dir)}, source="rados")
    second.wait_states(HEALTHY)
    faulted = time.monotonic()
    mute_public(ceph, "osd.1")
    line = second.daemon.wait_for_log("osd.1: not acting", timeout=20, after=faulted)
    assert "cooldown: acted on osd.1" in line
    assert map_says_up(ceph, "osd.1")
    assert noup_osds(ceph) == set()


def test_an_osd_being_restarted_counts_as_failing_so_a_second_one_is_not_fenced(
    ceph, watch_factory
):
    # Two at a time allowed: only the mass-failure guard stands between osd.2 and a fence.
    watch, started, _ = fence_osd1(
        ceph, watch_factory, 8.0, max_concurrent=2, max_fenced_in_cluster=3
    )
    mute_public(ceph, "osd.2")  # while osd.1 is down with noup, being restarted
    line = watch.daemon.wait_for_log("osd.2: not acting", timeout=20, after=started)
    assert "mass_failure: 2 of 3 OSDs on this host fail at once" in line
    assert "osd.2" not in noup_osds(ceph)
    healed(ceph, watch, "osd.1", started)
    assert "osd.2" not in noup_osds(ceph)


def test_one_remediation_at_a_time_on_a_host(ceph, watch_factory):
    watch, started, _ = fence_osd1(ceph, watch_factory, 4.0, mass_failure_share=1.0)
    mute_public(ceph, "osd.2")
    line = watch.daemon.wait_for_log("osd.2: waiting", timeout=20, after=started)
    assert "already running on this host (osd.1)" in line
    both: list[set[str]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # polled through both remediations; bounded
        held = noup_osds(ceph)
        if len(held) > 1:
            both.append(held)
        if any("osd.2: unfence done" in x or "osd.2: not acting" in x for x in watch.daemon.lines):
            break
        threading.Event().wait(0.25)
    assert both == []  # never two fenced at once
    assert any("osd.1: unfence done" in x for x in watch.daemon.lines)


def test_a_fence_elsewhere_in_the_cluster_means_no_second_one(ceph, watch_factory):
    ceph.ceph("osd", "add-noup", "osd.0")  # another host's watchdog, or an operator, holds it
    watch, line = refused_osd1(ceph, watch_factory)
    assert "cluster_fences: 1 OSD(s) in the cluster already carry noup (osd.0)" in line
    assert noup_osds(ceph) == {"osd.0"}
    watch.wait_sample("osd_watchdog_guard_refusals_total", ({"guard": "cluster_fences"}, 1.0))


def test_a_zombie_holding_the_last_copy_is_not_fenced_ceph_says_why(ceph, watch_factory):
    ceph.ceph("config", "set", "global", "mon_allow_pool_size_one", "true")
    ceph.ceph("osd", "pool", "create", "single", "16")
    ceph.ceph("osd", "pool", "set", "single", "size", "1", "--yes-i-really-mean-it")
    _, line = refused_osd1(ceph, watch_factory)
    assert "ok_to_stop: stopping osd.1 would make PGs inactive: unsafe to stop osd(s)" in line
    assert map_says_up(ceph, "osd.1")
    assert noup_osds(ceph) == set()


def test_a_second_watchdog_on_the_same_state_dir_does_not_act(ceph, watch_factory):
    act = {"dry_run": False, "restart_command": restart_command(ceph)}
    first = watch_factory(ceph, act=act, source="rados")
    first.wait_states(HEALTHY)
    ceph.wait_clean()
    second = watch_factory(ceph, act=act | {"state_dir": str(first.state_dir)}, source="rados")
    line = second.daemon.wait_for_log("remediation is off: another watchdog", timeout=15)
    assert f"(pid {first.daemon.proc.pid})" in line
    second.wait_states(HEALTHY)
    started = time.monotonic()
    mute_public(ceph, "osd.1")
    healed(ceph, first, "osd.1", started)
    refused = second.daemon.wait_for_log("osd.1: not acting", timeout=20, after=started)
    assert "lock: another watchdog" in refused
    started_records = [r for r in audit(first) if r["result"] == "started"]
    assert len(started_records) == 1  # one fence, by the holder of the lock
