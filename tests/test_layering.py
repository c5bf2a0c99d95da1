"""The package's imports follow the data flow: discover -> probe -> assess -> act -> export.

A stage may use the shared pieces (data types, config, the host readers, the monitor client)
and any stage before it, never one after it. Every import counts, those made only for type
checking too: a type from a later stage is a dependency on it all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "watchdog"

# The lowest rank whose prefix names the module wins; every module must be covered.
RANKS = {
    # Shared data, config and errors: no stage.
    "watchdog": 0,
    "watchdog.model": 0,
    "watchdog.errors": 0,
    "watchdog.schema": 0,
    "watchdog.credentials": 0,
    "watchdog.config": 0,
    # Shared readers every stage may use: /proc, sock_diag, the monitors, systemd.
    "watchdog.host": 1,
    "watchdog.monitor": 1,
    "watchdog.notify": 1,
    "watchdog.sim": 1,  # simulated OSDs: processes to look at, used by the demo and tests
    # The stages, in order.
    "watchdog.discover": 2,
    "watchdog.probes": 3,
    "watchdog.assess": 4,
    "watchdog.memory": 4,  # the state machine's memory across cycles
    "watchdog.act": 5,
    "watchdog.export": 6,
    "watchdog.export_cluster": 6,
    "watchdog.export_mgr": 6,
    "watchdog.exposition": 6,
    "watchdog.webauth": 6,
    "watchdog.report": 6,
    # What wires them: the loop, the CLI.
    "watchdog.daemon": 7,
    "watchdog.demo": 8,
    "watchdog.cli": 9,
    "watchdog.__main__": 9,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int:
    best = None
    for prefix, value in RANKS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, value)
    assert best is not None, f"{module} has no place in RANKS: decide its stage"
    return best[1]


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found.update(n if _is_module(n) else node.module for n in names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name == "watchdog" or name.startswith("watchdog.")}


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_a_later_stage(path):
    me = module_name(path)
    later = sorted(dep for dep in imports(path) if rank(dep) > rank(me))
    assert later == [], f"{me} (rank {rank(me)}) imports later stages: {later}"


def test_the_check_itself_catches_an_import_against_the_flow(tmp_path):
    """A probe importing the state machine is what this test exists to refuse."""
    probe = tmp_path / "probe.py"
    probe.write_text("from watchdog.assess import step\nfrom watchdog.model import Target\n")
    assert {d for d in imports(probe) if rank(d) > rank("watchdog.probes.tcp")} == {
        "watchdog.assess"
    }
