"""The package's imports follow the data flow: discover -> probe -> assess -> act -> export.

A stage may use the shared pieces (data types, config, the host readers, the monitor client)
and any stage before it, never one after it. Every import counts, relative ones and those
made only for type checking too: a type from a later stage is a dependency on it all the
same. The mgr module (``mgr/osd_watchdog``) runs inside ceph-mgr, on its Python, apart from
the watchdog: it follows its own flow (a report is parsed, judged against the map, kept) and
imports nothing but the standard library and the mgr's own API.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent
PACKAGE = CHECKOUT / "watchdog"
MGR = CHECKOUT / "mgr" / "osd_watchdog"

# The longest prefix that names the module gives its rank; every module must be covered
# ("watchdog" itself names only the package's __init__, not everything under it).
RANKS = {
    # Shared data, config and errors: no stage.
    "watchdog": 0,
    "watchdog.model": 0,
    "watchdog.errors": 0,
    "watchdog.schema": 0,
    "watchdog.credentials": 0,
    "watchdog.config": 0,
    "watchdog.stepkinds": 0,  # what each remediation step is: config and act read it
    # Shared readers every stage may use: /proc, sock_diag, the monitors, systemd.
    "watchdog.host": 1,
    "watchdog.monitor": 1,
    "watchdog.notify": 1,
    "watchdog.worker": 1,  # the background thread the map watcher and the reporter share
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


# The mgr module's own flow.
MGR_RANKS = {
    "osd_watchdog.report": 0,  # a watchdog's report, parsed and checked
    "osd_watchdog.view": 0,  # the OSD map, as the module judges against it
    "osd_watchdog.text": 1,  # the words of the checks
    "osd_watchdog.book": 2,  # every host's states, judged: the checks
    "osd_watchdog.store": 3,  # the book kept in the mgr's store
    "osd_watchdog.module": 4,  # what ceph-mgr loads
    "osd_watchdog": 5,  # the package: exports Module
}
MGR_API = {"mgr_module"}  # ceph-mgr's own, beside the module on its path


def module_name(path: Path, top: Path = PACKAGE) -> str:
    parts = path.relative_to(top.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str, ranks: dict[str, int] = RANKS) -> int:
    best = None
    for prefix, value in ranks.items():
        top = prefix.count(".") == 0  # the package's own name ranks its __init__ only
        if (module == prefix or (not top and module.startswith(prefix + "."))) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, value)
    assert best is not None, f"{module} has no place in the ranks: decide its stage"
    return best[1]


def imports(path: Path, top: Path = PACKAGE, everything: bool = False) -> set[str]:
    """The package's modules ``path`` imports (``everything``: every top-level name too)."""
    me = module_name(path, top).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module.split(".") if node.module else []
            if node.level:  # relative: from the importing module's package
                base = package[: len(package) - node.level + 1] + base
            module = ".".join(base)
            names = [f"{module}.{a.name}" for a in node.names]
            found.update(n if _is_module(n, top) else module for n in names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    if everything:
        return found
    return {name for name in found if name == top.name or name.startswith(top.name + ".")}


def _is_module(name: str, top: Path = PACKAGE) -> bool:
    path = top.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or path.is_dir()


MODULES = sorted(PACKAGE.rglob("*.py"))
MGR_MODULES = sorted(MGR.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_module_imports_a_later_stage(path):
    me = module_name(path)
    later = sorted(dep for dep in imports(path) if rank(dep) > rank(me))
    assert later == [], f"{me} (rank {rank(me)}) imports later stages: {later}"


def test_the_check_itself_catches_an_import_against_the_flow(tmp_path):
    """A probe importing the state machine is what this test exists to refuse."""
    probe = tmp_path / "watchdog" / "probes" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("from watchdog.assess import step\nfrom watchdog.model import Target\n")
    found = imports(probe, tmp_path / "watchdog")
    assert {d for d in found if rank(d) > rank("watchdog.probes.probe")} == {"watchdog.assess"}


def test_every_module_has_a_rank_of_its_own():
    unranked = []
    for path in MODULES:
        try:
            rank(module_name(path))
        except AssertionError:
            unranked.append(module_name(path))
    assert unranked == []
    with pytest.raises(AssertionError, match="no place in the ranks"):
        rank("watchdog.newstage")  # the package's rank does not cover what is under it


def test_a_relative_import_counts(tmp_path):
    probes = tmp_path / "watchdog" / "probes"
    probes.mkdir(parents=True)
    (tmp_path / "watchdog" / "assess.py").write_text("")
    (probes / "tcp.py").write_text("")
    probe = probes / "probe.py"
    probe.write_text("from ..assess import step\nfrom . import tcp\n")
    assert imports(probe, tmp_path / "watchdog") == {"watchdog.assess", "watchdog.probes.tcp"}


@pytest.mark.parametrize("path", MGR_MODULES, ids=lambda p: module_name(p, MGR))
def test_the_mgr_module_follows_its_flow_and_needs_nothing_but_the_mgr(path):
    me = module_name(path, MGR)
    later = sorted(d for d in imports(path, MGR) if rank(d, MGR_RANKS) > rank(me, MGR_RANKS))
    assert later == [], f"{me} imports later parts: {later}"
    outside = {name.split(".")[0] for name in imports(path, MGR, everything=True)}
    foreign = outside - {"osd_watchdog", *MGR_API, *sys.stdlib_module_names}
    assert foreign == set(), f"{me} needs {foreign}: ceph-mgr's Python has only its own"
