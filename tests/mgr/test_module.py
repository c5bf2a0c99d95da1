"""The module's start on a mgr taking over: what the previous active mgr kept stays raised.

ceph-mgr's own Python interface (``mgr_module``) exists only inside ceph-mgr, so these tests
give the module a small mgr of their own with the calls it makes; the real ceph-mgr runs it in
tests/e2e/test_mgr_module.py and, at 10,000 OSDs, in bench/bench_mgr.py.
"""

from __future__ import annotations

import enum
import errno
import json
import logging
import sys
import threading
import types
from importlib import import_module
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.mgr.helpers import book_with, report_text, verdict
from tests.mgr.logic import NAME, store

OSD_MAP = {
    "epoch": 7,
    "osds": [{"osd": 0, "up": 1, "up_from": 3}, {"osd": 1, "up": 1, "up_from": 3},
             {"osd": 2, "up": 1, "up_from": 3}],
}  # fmt: skip
TREE = {"nodes": [{"type": "host", "name": "a", "children": [0, 1]},
                  {"type": "host", "name": "b", "children": [2]}]}  # fmt: skip


class NotifyType(enum.Enum):
    osd_map = "osd_map"


class FakeMgrModule:
    """What the module calls of ceph-mgr's MgrModule, kept in memory and recorded."""

    class ClusterLogPrio(enum.IntEnum):
        WARN = 3

    def __init__(self, *_: object, **__: object) -> None:
        self.log = logging.getLogger("osd_watchdog")
        self.store: dict[str, str] = {}
        self.sent: list[dict[str, Any]] = []  # every set_health_checks, in order
        self.map_gate = threading.Event()  # get("osd_map") waits for it: a slow conversion
        self.map_gate.set()

    def get(self, what: str) -> Any:
        if what == "osd_map":
            self.map_gate.wait(30)
            return OSD_MAP
        return TREE

    def get_osdmap(self) -> Any:
        return types.SimpleNamespace(get_crush_version=lambda: 1)

    def get_metadata(self, _: str, osd: str) -> dict[str, str]:
        return {"hostname": "b" if osd == "2" else "a"}

    def get_module_option(self, name: str) -> object:
        # What ceph-mgr gives before any is set: the default the module declares.
        options = self.MODULE_OPTIONS  # type: ignore[attr-defined]
        return next(option["default"] for option in options if option["name"] == name)

    def get_store(self, key: str) -> str | None:
        return self.store.get(key)

    def set_store(self, key: str, value: str | None) -> None:
        if value is None:
            self.store.pop(key, None)
        else:
            self.store[key] = value

    def get_store_prefix(self, prefix: str) -> dict[str, str]:
        return {k: v for k, v in self.store.items() if k.startswith(prefix)}

    def set_health_checks(self, checks: dict[str, Any]) -> None:
        self.sent.append(json.loads(json.dumps(checks)))

    def cluster_log(self, *_: object) -> None:
        pass


@pytest.fixture
def module_class(monkeypatch):
    """The module's class, imported against the fake mgr."""
    fake = types.ModuleType("mgr_module")
    fake.MgrModule = FakeMgrModule  # type: ignore[attr-defined]
    fake.Option = dict  # type: ignore[attr-defined]
    fake.NotifyType = NotifyType  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mgr_module", fake)
    monkeypatch.delitem(sys.modules, f"{NAME}.module", raising=False)
    return import_module(f"{NAME}.module").Module


def kept_by_previous_mgr() -> dict[str, str]:
    """The store as an active mgr leaves it: host a's zombie osd.1, and the raised check."""
    kept = book_with(report_text("a", osds=[verdict("osd.1")]))
    values = store.host_values(kept, "a")
    entries = dict(zip(store.keys("a", len(values)), values, strict=True))
    entries[store.CHECKS_KEY] = store.checks_value(kept.health_checks())
    return entries


def test_the_kept_check_is_raised_first_and_never_dropped_while_the_module_starts(module_class):
    mgr = module_class()
    mgr.store.update(kept_by_previous_mgr())
    mgr.map_gate.clear()  # the first view of the map is slow (10,000 OSDs)
    serving = threading.Thread(target=mgr.serve, daemon=True)
    serving.start()
    try:
        wait_for(lambda: mgr.sent, 5, "the kept checks raised")
        assert "OSD_ACCEPT_DEAD" in mgr.sent[0]
        # A report that comes while the module loads waits for the load, then is judged
        # with every host's verdicts: host b's healthy report does not clear host a's check.
        answers: list[tuple[int, str, str]] = []
        healthy_b = report_text("b", osds=[verdict("osd.2", "healthy")])

        def send() -> None:
            answers.append(mgr.handle_command(healthy_b, {"prefix": "osd-watchdog report"}))

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        sender.join(0.3)
        assert answers == []  # still waiting for the load
        mgr.map_gate.set()
        sender.join(10)
        assert len(answers) == 1
        assert answers[0][0] == 0, answers
        # Two hosts at the default keepalive_rate: the module asks for a keepalive of 1 s at
        # least (0.2 s rounded up; the watchdog keeps its own 60 s).
        assert json.loads(answers[0][1])["keepalive"] == 1.0
        rows = json.loads(mgr.handle_command("", {"prefix": "osd-watchdog status",
                                                  "format": "json"})[1])  # fmt: skip
        assert {r["osd"]: r["state"] for r in rows} == {
            "osd.0": "unreported",
            "osd.1": "zombie",
            "osd.2": "healthy",
        }
    finally:
        mgr.shutdown()
        serving.join(10)
    assert all("OSD_ACCEPT_DEAD" in checks for checks in mgr.sent), mgr.sent
    assert "OSD_ACCEPT_DEAD" in json.loads(mgr.store[store.CHECKS_KEY])


def test_commands_are_answered_eagain_if_the_module_never_loads(module_class, monkeypatch):
    monkeypatch.setattr(sys.modules[f"{NAME}.module"], "LOAD_WAIT", 0.05)
    mgr = module_class()  # serve() never runs
    code, _, status = mgr.handle_command("", {"prefix": "osd-watchdog status"})
    assert code == -errno.EAGAIN
    assert "still loading" in status
    assert mgr.sent == []


def test_unreadable_kept_checks_are_ignored_and_judged_afresh(module_class):
    mgr = module_class()
    mgr.store.update(kept_by_previous_mgr())
    mgr.store[store.CHECKS_KEY] = "not json"
    serving = threading.Thread(target=mgr.serve, daemon=True)
    serving.start()
    try:
        wait_for(lambda: mgr.sent, 5, "checks judged from the loaded verdicts")
        assert "OSD_ACCEPT_DEAD" in mgr.sent[0]
    finally:
        mgr.shutdown()
        serving.join(10)
