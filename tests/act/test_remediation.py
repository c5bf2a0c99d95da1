"""The remediation thread: a failed step or an unrecordable fence ends it cleanly, recorded."""

from __future__ import annotations

import time

from watchdog.act.remediation import Remediator
from watchdog.act.steps import Event
from watchdog.config import ActConfig


class RecordingMon:
    """A monitor client that records what it was asked to change."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []

    def command(self, prefix: str, timeout: float) -> dict[str, object]:  # noqa: ARG002
        return {}

    def send(self, prefix: str, ids: list[str], timeout: float) -> str:  # noqa: ARG002
        self.sent.append((prefix, ids))
        return ""


def remediate(config: ActConfig, mon: RecordingMon) -> Remediator:
    remediator = Remediator(config, mon, lambda: None, probe_timeout=0.5)
    remediator._start(Event("osd.3", "zombie", "client accept path dead", 4242, time.time()))
    for thread in list(remediator._running.values()):
        thread.join(timeout=30)
    return remediator


def test_a_fence_that_cannot_be_recorded_is_never_set(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the state directory cannot be created: fences cannot be saved
    marker = tmp_path / "ran"
    config = ActConfig(
        dry_run=False,
        steps=["fence", "exec"],
        exec_command=["touch", str(marker)],
        state_dir=blocker,
        audit_log=tmp_path / "audit.jsonl",
    )
    mon = RecordingMon()
    remediator = remediate(config, mon)
    assert mon.sent == []  # noup never set: nobody would have known to lift it
    assert not marker.exists()  # and nothing after it ran
    counts = remediator.counts()
    assert counts["fenced"] == ()
    assert counts["step_failures_total"] == {("osd.3", "fence"): 1}
    assert counts["actions_total"] == {("fence_exec", "failed"): 1}
    (record,) = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert '"result": "failed"' in record
    assert "not-a-directory" in record


def test_all_steps_run_in_order_and_the_fence_is_lifted(tmp_path):
    config = ActConfig(dry_run=False, steps=["fence", "unfence"], state_dir=tmp_path, canary=False)
    mon = RecordingMon()
    remediator = remediate(config, mon)
    assert mon.sent == [("osd add-noup", ["osd.3"]), ("osd down", ["3"]),
                        ("osd rm-noup", ["osd.3"])]  # fmt: skip
    assert remediator.counts()["fenced"] == ()
    assert remediator.counts()["actions_total"] == {("fence_unfence", "done"): 1}
