"""Fences survive the watchdog's restarts; every decision lands in the audit file."""

import json
import logging
import time

from watchdog.act.ledger import Ledger


def test_a_fence_is_remembered_by_the_next_ledger_and_forgotten_once_lifted(tmp_path):
    first = Ledger(tmp_path, tmp_path / "audit.jsonl")
    first.set_fence("osd.3", pid=4242, steps_left=["fence", "restart"])
    second = Ledger(tmp_path, tmp_path / "audit.jsonl")  # the watchdog restarted
    assert second.fenced()["osd.3"].pid == 4242
    second.progress("osd.3", ["restart"])
    assert Ledger(tmp_path, tmp_path / "audit.jsonl").fenced()["osd.3"].steps_left == ("restart",)
    second.clear_fence("osd.3")
    assert Ledger(tmp_path, tmp_path / "audit.jsonl").fenced() == {}
    assert not (tmp_path / "fences.tmp").exists()


def test_a_corrupt_fence_file_is_reported_not_fatal(tmp_path, caplog):
    (tmp_path / "fences.json").write_text("{not json")
    assert Ledger(tmp_path, tmp_path / "audit.jsonl").fenced() == {}
    assert "earlier fences may be unknown" in caplog.text


def test_the_audit_file_is_append_only_json_lines(tmp_path):
    ledger = Ledger(tmp_path / "state", tmp_path / "state" / "audit.jsonl")
    ledger.audit(ceph_daemon="osd.1", result="refused", guard="nodown: set")
    ledger.audit(ceph_daemon="osd.1", result="dry_run")
    lines = (tmp_path / "state" / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["result"] for r in records] == ["refused", "dry_run"]
    assert all(isinstance(r["time"], float) for r in records)


def test_history_counts_what_was_started(tmp_path):
    ledger = Ledger(tmp_path, tmp_path / "audit.jsonl")
    ledger.started("osd.1", marks_down=True)
    ledger.started("osd.2", marks_down=False)
    history = ledger.history()
    assert set(history.last_action) == {"osd.1", "osd.2"}
    assert len(history.actions) == 2
    assert len(history.markdowns["osd.1"]) == 1
    assert "osd.2" not in history.markdowns


def test_the_guard_history_survives_a_restart(tmp_path):
    Ledger(tmp_path, tmp_path / "audit.jsonl").started("osd.1", marks_down=True)
    history = Ledger(tmp_path, tmp_path / "audit.jsonl").history()  # the watchdog restarted
    assert set(history.last_action) == {"osd.1"}
    assert len(history.markdowns["osd.1"]) == 1
    assert history.unknown_before is None


def test_without_a_history_file_the_audit_trail_rebuilds_it(tmp_path, caplog):
    audit = tmp_path / "audit.jsonl"
    records = [
        {"time": 1000.0, "ceph_daemon": "osd.1", "result": "started", "action": "fence_restart"},
        {"time": 1001.0, "ceph_daemon": "osd.1", "result": "done", "step": "fence"},
        {"time": 1002.0, "ceph_daemon": "osd.2", "result": "started", "action": "webhook"},
        {"time": 1003.0, "ceph_daemon": "osd.2", "result": "refused"},
    ]
    audit.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"time": 10')  # cut short
    with caplog.at_level(logging.INFO, logger="watchdog.act.ledger"):
        history = Ledger(tmp_path, audit).history()
    assert history.last_action == {"osd.1": 1000.0, "osd.2": 1002.0}
    assert history.markdowns == {"osd.1": (1000.0,)}
    assert "guard history rebuilt from" in caplog.text


def test_a_corrupt_history_refuses_for_a_while_and_says_so_never_resets(tmp_path, caplog):
    (tmp_path / "history.json").write_text('{"started": [{"daemon": "osd.1"}]}')
    before = time.time()
    history = Ledger(tmp_path, tmp_path / "audit.jsonl").history()
    assert history.unknown_before is not None
    assert history.unknown_before >= before
    assert "is unreadable" in caplog.text
    # The time it was found lost is kept, so a restart does not extend the wait.
    again = Ledger(tmp_path, tmp_path / "audit.jsonl").history()
    assert again.unknown_before == history.unknown_before
