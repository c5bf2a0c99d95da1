"""One error family: every error the watchdog raises on purpose is defined in errors.py."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from watchdog import errors
from watchdog.config import ClusterConfig
from watchdog.credentials import RESTFUL_KEY_ENV
from watchdog.errors import MonitorError, WatchdogError
from watchdog.monitor import RestfulClient

PACKAGE = Path(__file__).resolve().parent.parent / "watchdog"
BUILTIN_ERRORS = {"Exception", "ValueError", "RuntimeError", "OSError", "LookupError"}


def _defined_errors(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if bases & BUILTIN_ERRORS or node.name.endswith("Error"):
                found.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    return found


def test_no_module_but_errors_defines_an_exception():
    elsewhere = [
        line
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "errors.py"
        for line in _defined_errors(path)
    ]
    assert elsewhere == [], "define errors in watchdog/errors.py, under WatchdogError"


def test_every_error_is_a_watchdog_error_and_keeps_its_builtin_base():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, WatchdogError), cls
    # Callers that caught the built-in base before still do.
    assert issubclass(errors.AsokError, OSError)
    assert issubclass(errors.SockDiagError, OSError)
    assert issubclass(errors.MapParseError, ValueError)
    assert errors.SockDiagError(5, "dump failed").errno == 5


def test_the_restful_source_says_it_cannot_send_a_module_command(monkeypatch):
    monkeypatch.setenv(RESTFUL_KEY_ENV, "k")
    client = RestfulClient(ClusterConfig(source="restful", restful_url="https://127.0.0.1:1"))
    try:
        with pytest.raises(MonitorError, match="restful source cannot send mgr module commands"):
            client.mgr_ask("osd-watchdog report", b"{}", 1.0)
    finally:
        client.close()
