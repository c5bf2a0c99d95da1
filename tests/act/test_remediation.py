"""The remediator with real threads and real files, against a small recording monitor.

The monitor is the one fake here (a real one is in tests/e2e): it answers ``osd dump``,
``osd metadata`` and ``ok-to-stop`` from a dict the test changes, records what it was asked
to change, and can be held at a gate to show that the loop never waits for it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest

from tests.conftest import wait_for
from watchdog.act.job import Settings
from watchdog.act.remediation import Remediator
from watchdog.config import ActConfig, parse_config
from watchdog.model import (
    BannerResult,
    Endpoint,
    Incarnation,
    Observation,
    OsdReport,
    OsdStatus,
    Outcome,
    Snapshot,
    State,
    Target,
    Transition,
)
from watchdog.monitor import Answer

HOST = socket.gethostname()
FSID = "5d4c1f6a-0000-4000-8000-000000000001"


class RecordingMon:
    """A monitor client whose map the test sets; it records every change asked of it."""

    name = "recording"

    def __init__(self, osds: int = 4) -> None:
        self.flags: set[str] = set()
        self.osd_state: dict[str, dict[str, Any]] = {
            f"osd.{i}": {"up": True, "state": ["exists", "up"]} for i in range(osds)
        }
        self.ok_to_stop = True
        self.sent: list[tuple[str, list[str]]] = []
        self.gate = threading.Event()
        self.gate.set()  # clear it to hold every question at the gate
        self.asked = threading.Event()

    def command(self, prefix: str, timeout: float) -> object:
        self.asked.set()
        self.gate.wait(timeout=30 + timeout)
        if prefix == "osd metadata":
            return [{"id": int(d[4:]), "hostname": HOST} for d in self.osd_state]
        if prefix == "fsid":
            return {"fsid": FSID}
        osds = [
            {"osd": int(d[4:]), "up": int(s["up"]), "in": 1, "state": s["state"]}
            for d, s in self.osd_state.items()
        ]
        return {"epoch": 9, "flags": ",".join(sorted(self.flags)), "osds": osds}

    def send(self, prefix: str, ids: list[str], timeout: float) -> str:  # noqa: ARG002
        self.sent.append((prefix, ids))
        return ""

    def ask(self, prefix: str, ids: list[str], timeout: float) -> Answer:  # noqa: ARG002
        said = json.dumps({"ok_to_stop": self.ok_to_stop, "osds": [int(i) for i in ids]})
        return Answer(0 if self.ok_to_stop else -16, said.encode(), "")

    def mgr_ask(self, prefix: str, inbuf: bytes, timeout: float, fmt: str = "json") -> Answer:  # noqa: ARG002
        return Answer(-95, b"", "no mgr here")  # EOPNOTSUPP: a remediation asks no module

    def close(self) -> None:
        pass


def report(daemon: str, state: State, pid: int = 4242, banners: bool = False) -> OsdReport:
    target = Target(daemon, "ceph", Incarnation(pid, 1.0))
    answered = (BannerResult(Endpoint("127.0.0.1", 6800), Outcome.OK, 0.001),) if banners else ()
    return OsdReport(Observation(target, True, banners=answered), OsdStatus(state, 0.0, ""))


def snapshot(*reports: OsdReport) -> Snapshot:
    return Snapshot(taken_at=time.time(), monotonic_at=time.monotonic(), cycle_seconds=0.01,
                    cycles=1, osds=reports)  # fmt: skip


def zombie(daemon: str) -> Transition:
    return Transition(
        daemon, State.SUSPECT, State.ZOMBIE, time.monotonic(), "client accept path dead"
    )


def settings(tmp_path, **act) -> Settings:
    config = ActConfig(
        **({"dry_run": False, "canary": False, "state_dir": tmp_path / "state"} | act)
    )
    return Settings(config, probe_timeout=0.5, map_timeout=2.0, hostnames=frozenset({HOST}))


def steps_left(remediator: Remediator, daemon: str) -> tuple[str, ...] | None:
    """What the journal says is left for a fenced OSD (None: not fenced by us)."""
    fence = remediator.ledger.fenced().get(daemon)
    return fence.steps_left if fence is not None else None


def finish(remediator: Remediator, timeout: float = 30) -> None:
    """Wait (bounded) for every job to end."""
    assert remediator.wait_idle(timeout), f"jobs still running: {remediator.running()}"


def audit(tmp_path) -> list[dict]:
    path = tmp_path / "state" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def remediators():
    made: list[Remediator] = []

    def make(settings_: Settings, mon: RecordingMon) -> Remediator:
        made.append(Remediator(settings_, mon))
        return made[-1]

    yield make
    for remediator in made:
        remediator.stop(wait=2)


FOUR = (report("osd.0", State.HEALTHY), report("osd.1", State.ZOMBIE),
        report("osd.2", State.HEALTHY), report("osd.3", State.HEALTHY))  # fmt: skip


def test_all_steps_run_in_order_and_the_fence_is_lifted(tmp_path, remediators):
    mon = RecordingMon()
    remediator = remediators(settings(tmp_path, steps=["fence", "unfence"]), mon)
    remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(remediator)
    assert mon.sent == [("osd add-noup", ["osd.1"]), ("osd down", ["1"]),
                        ("osd rm-noup", ["osd.1"])]  # fmt: skip
    assert remediator.counts()["fenced"] == ()
    assert remediator.counts()["actions_total"] == {("fence_unfence", "done"): 1}
    assert [r["result"] for r in audit(tmp_path)] == ["started", "done", "done"]


def test_a_flag_set_after_the_loop_read_its_map_is_honoured(tmp_path, remediators):
    mon = RecordingMon()
    remediator = remediators(settings(tmp_path, steps=["fence"]), mon)
    mon.flags.add("nodown")  # set by an operator a moment ago: only a fresh read sees it
    remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(remediator)
    assert mon.sent == []
    assert remediator.counts()["refusals_total"] == {"nodown": 1}
    assert audit(tmp_path)[-1]["guard"] == "nodown: the cluster flag nodown is set"
    assert remediator.ledger.history().actions == ()  # a refusal spends no budget


def test_ceph_saying_stopping_would_make_pgs_inactive_means_no_fence(tmp_path, remediators):
    mon = RecordingMon()
    mon.ok_to_stop = False
    remediator = remediators(settings(tmp_path, steps=["fence"]), mon)
    remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(remediator)
    assert mon.sent == []
    assert remediator.counts()["refusals_total"] == {"ok_to_stop": 1}
    ignoring = remediators(settings(tmp_path / "b", steps=["fence"], ok_to_stop="ignore"), mon)
    ignoring.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(ignoring)
    assert mon.sent[0] == ("osd add-noup", ["osd.1"])


def test_the_loop_never_waits_for_the_monitors(tmp_path, remediators):
    mon = RecordingMon()
    mon.gate.clear()  # every question to the monitors now hangs until the test opens it
    remediator = remediators(settings(tmp_path, steps=["fence"]), mon)
    remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
    assert mon.asked.wait(10)  # the job is asking, and hanging...
    remediator.consider(snapshot(*FOUR), [])  # ...while the loop goes on: this returned
    assert mon.sent == []
    mon.gate.set()
    finish(remediator)
    assert mon.sent[0] == ("osd add-noup", ["osd.1"])


def test_one_remediation_at_a_time_and_the_next_waits_its_turn(tmp_path, remediators):
    mon = RecordingMon()
    gate = tmp_path / "gate"
    hold = ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]
    remediator = remediators(
        settings(tmp_path, steps=["fence", "exec", "unfence"], exec_command=hold), mon
    )
    two = (report("osd.0", State.HEALTHY), report("osd.1", State.ZOMBIE),
           report("osd.2", State.ZOMBIE), report("osd.3", State.HEALTHY))  # fmt: skip
    remediator.consider(snapshot(*two), [zombie("osd.1"), zombie("osd.2")])
    wait_for(lambda: ("osd down", ["1"]) in mon.sent, 10, "osd.1 marked down")
    remediator.consider(snapshot(*two), [])
    assert remediator.running() == {"osd.1"}  # osd.2 waits while osd.1 is held
    assert all(ids != ["osd.2"] for _, ids in mon.sent)
    gate.write_text("")
    finish(remediator)
    # osd.1 done; osd.2 still a zombie this cycle: its turn. With osd.1 no longer ours,
    # 1 of 4 fails: the mass-failure guard lets it through.
    remediator.consider(snapshot(*two), [])
    finish(remediator)
    assert ("osd add-noup", ["osd.2"]) in mon.sent


def test_an_osd_healed_while_waiting_is_not_acted_on(tmp_path, remediators):
    mon = RecordingMon()
    gate = tmp_path / "gate"
    hold = ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done"]
    remediator = remediators(settings(tmp_path, steps=["exec"], exec_command=hold), mon)
    remediator.consider(snapshot(*FOUR), [zombie("osd.1"), zombie("osd.3")])
    healed = (*FOUR[:3], report("osd.3", State.HEALTHY))
    remediator.consider(snapshot(*healed), [])
    gate.write_text("")
    finish(remediator)
    remediator.consider(snapshot(*healed), [])
    assert remediator.running() == set()
    assert [r["ceph_daemon"] for r in audit(tmp_path) if r["result"] == "started"] == ["osd.1"]


def test_a_second_watchdog_on_the_same_state_dir_does_not_act(tmp_path, remediators):
    mon = RecordingMon()
    first = remediators(settings(tmp_path, steps=["fence"]), mon)
    second = remediators(settings(tmp_path, steps=["fence"]), mon)
    second.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(second)
    assert mon.sent == []
    assert second.counts()["refusals_total"] == {"lock": 1}
    assert "holds" in audit(tmp_path)[-1]["guard"]
    first.stop()  # the first one goes away: the second takes over
    second.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(second)
    assert mon.sent[0] == ("osd add-noup", ["osd.1"])


def test_a_fence_that_cannot_be_recorded_is_never_set(tmp_path, remediators):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "fences.tmp").mkdir()  # fences.json cannot be written
    marker = tmp_path / "ran"
    mon = RecordingMon()
    config = settings(tmp_path, steps=["fence", "exec"], exec_command=["touch", str(marker)])
    remediator = remediators(config, mon)
    remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(remediator)
    assert mon.sent == []  # noup never set: nobody would have known to lift it
    assert not marker.exists()  # and nothing after it ran
    counts = remediator.counts()
    assert counts["fenced"] == ()
    assert counts["step_failures_total"] == {("osd.1", "fence"): 1}
    assert counts["actions_total"] == {("fence_exec", "failed"): 1}
    assert "fences.tmp" in audit(tmp_path)[-1]["detail"]


def test_a_reload_mid_remediation_lets_it_finish_under_its_own_settings(tmp_path):
    mon = RecordingMon()
    act = {"dry_run": False, "canary": False, "state_dir": str(tmp_path / "state"),
           "restart_command": ["true"], "step_timeout_seconds": 30.0}  # fmt: skip
    config = parse_config({"cluster": {"source": "none"}, "act": act})
    remediator = Remediator(Settings.from_config(config), mon, config.cluster)
    try:
        remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
        wait_for(lambda: steps_left(remediator, "osd.1") == ("verify", "unfence"), 10,
                 "osd.1's job in verify")  # fmt: skip
        # SIGHUP: a new step timeout, while the job waits in verify; the reload returns.
        shorter = act | {"step_timeout_seconds": 1.0}
        remediator.reconfigure(parse_config({"cluster": {"source": "none"}, "act": shorter}))
        assert remediator.settings.act.step_timeout_seconds == 1.0
        threading.Event().wait(1.5)  # past the new timeout: the job keeps its own 30 s
        restarted = (*FOUR[:1], report("osd.1", State.HEALTHY, pid=5000, banners=True), *FOUR[2:])
        remediator.consider(snapshot(*restarted), [])
        finish(remediator)
    finally:
        remediator.stop(wait=2)
    assert mon.sent[-1] == ("osd rm-noup", ["osd.1"])
    assert remediator.counts()["fenced"] == ()
    assert remediator.counts()["actions_total"] == {("fence_restart_verify_unfence", "done"): 1}


def test_a_shutdown_mid_remediation_is_resumed_by_the_next_start(tmp_path, remediators):
    mon = RecordingMon()
    config = settings(tmp_path, steps=["fence", "restart", "verify", "unfence"],
                      restart_command=["true"])  # fmt: skip
    first = remediators(config, mon)
    first.consider(snapshot(*FOUR), [zombie("osd.1")])
    wait_for(lambda: steps_left(first, "osd.1") == ("verify", "unfence"), 10,
             "osd.1's job in verify")  # fmt: skip
    first.stop()  # SIGTERM while verify waits
    assert first.counts()["actions_total"] == {("fence_restart_verify_unfence", "interrupted"): 1}
    assert [r["result"] for r in audit(tmp_path)][-1] == "interrupted"
    second = remediators(config, mon)  # the next start, same state_dir
    second.resume()
    restarted = (*FOUR[:1], report("osd.1", State.HEALTHY, pid=5000, banners=True), *FOUR[2:])
    second.consider(snapshot(*restarted), [])
    finish(second)
    assert mon.sent[-1] == ("osd rm-noup", ["osd.1"])
    assert second.counts()["fenced"] == ()
    assert mon.sent.count(("osd add-noup", ["osd.1"])) == 1  # resumed, not started over


def recording_systemctl(tmp_path):
    """A real program in systemctl's place that writes down how it was called."""
    script = tmp_path / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "calls"}\n')
    script.chmod(0o755)
    return str(script)


def test_a_resumed_restart_uses_the_unit_recorded_with_the_fence(tmp_path, remediators):
    # cephadm: {unit} is read from the OSD's cgroup; after a watchdog restart the old process
    # is gone, so the unit must come from the fence record, never from a pid now another's.
    mon = RecordingMon()
    config = settings(tmp_path, steps=["fence", "restart", "verify", "unfence"],
                      restart_unit_template="{unit}",
                      systemctl_command=recording_systemctl(tmp_path))  # fmt: skip
    remediator = remediators(config, mon)
    unit = f"ceph-{FSID}@osd.1.service"
    remediator.ledger.set_fence("osd.1", 999_999_999, ["restart", "verify", "unfence"], unit)
    remediator.resume()
    restarted = (*FOUR[:1], report("osd.1", State.HEALTHY, pid=5000, banners=True), *FOUR[2:])
    remediator.consider(snapshot(*restarted), [])
    finish(remediator)
    assert (tmp_path / "calls").read_text() == f"restart {unit}\n"
    assert mon.sent == [("osd rm-noup", ["osd.1"])]


def test_fsid_in_the_unit_comes_from_the_monitors(tmp_path, remediators):
    mon = RecordingMon()
    config = settings(tmp_path, steps=["fence", "restart", "verify", "unfence"],
                      restart_unit_template="ceph-{fsid}@osd.{id}",
                      systemctl_command=recording_systemctl(tmp_path))  # fmt: skip
    remediator = remediators(config, mon)
    remediator.consider(snapshot(*FOUR), [zombie("osd.1")])
    wait_for((tmp_path / "calls").exists, 10, "the restart through systemctl")
    assert (tmp_path / "calls").read_text() == f"restart ceph-{FSID}@osd.1\n"
    remediator.stop(wait=2)


def test_a_stop_while_fencing_lifts_the_fence_next_time_and_judges_afresh(tmp_path, remediators):
    mon = RecordingMon()
    config = settings(tmp_path, steps=["fence", "restart", "verify", "unfence"])
    # What a crash between "recorded" and "fence done" leaves.
    remediator = remediators(config, mon)
    remediator.ledger.set_fence("osd.1", 4242, ["fence", "restart", "verify", "unfence"])
    remediator.resume()
    finish(remediator)
    assert mon.sent == [("osd rm-noup", ["osd.1"])]
    assert remediator.counts()["fenced"] == ()


def test_a_restart_does_not_reset_the_cooldown(tmp_path, remediators):
    mon = RecordingMon()
    config = settings(tmp_path, steps=["fence", "unfence"])
    first = remediators(config, mon)
    first.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(first)
    first.stop()
    second = remediators(config, mon)  # restarted, same state_dir
    second.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(second)
    assert second.counts()["refusals_total"] == {"cooldown": 1}
    assert mon.sent.count(("osd add-noup", ["osd.1"])) == 1


def test_dry_runs_need_no_lock_and_never_take_it(tmp_path, remediators):
    mon = RecordingMon()
    acting = remediators(settings(tmp_path, steps=["fence"]), mon)
    watching = remediators(settings(tmp_path, steps=["fence"], dry_run=True), mon)
    watching.consider(snapshot(*FOUR), [zombie("osd.1")])
    finish(watching)
    assert watching.counts()["actions_total"] == {("fence", "dry_run"): 1}
    assert not watching.lock.held
    assert acting.lock.held
    assert mon.sent == []
