"""Fences survive the watchdog's restarts; every decision lands in the audit file."""

import json

from watchdog.act.ledger import Ledger


def test_a_fence_is_remembered_by_the_next_ledger_and_forgotten_once_lifted(tmp_path):
    first = Ledger(tmp_path, tmp_path / "audit.jsonl")
    first.set_fence("osd.3", pid=4242)
    second = Ledger(tmp_path, tmp_path / "audit.jsonl")  # the watchdog restarted
    assert second.fenced()["osd.3"]["pid"] == 4242
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
