"""The docs name tests as evidence: every test they name exists."""

import dataclasses
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def named_tests(doc: Path) -> list[tuple[str, str]]:
    return NAMED.findall(doc.read_text())


@pytest.mark.parametrize("doc", ["docs/fault-matrix.md"])
def test_every_test_a_doc_names_exists(doc):
    named = named_tests(ROOT / doc)
    assert len(named) >= 30  # the matrix has not been emptied
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert missing == []


def exported_families() -> set[str]:
    """The watchdog's own families, as a scrape of a snapshot that has every part shows them."""
    from prometheus_client.parser import text_string_to_metric_families  # noqa: PLC0415

    from tests.test_export import BUILD, golden_snapshot  # noqa: PLC0415
    from watchdog.export import SnapshotMetrics  # noqa: PLC0415
    from watchdog.exposition import render  # noqa: PLC0415
    from watchdog.model import RemoteResult, ReportStatus  # noqa: PLC0415

    report = ReportStatus(
        attempts=3, failures=1, last_ok=True, last_seconds=0.01, keepalive_seconds=120.0
    )
    remote = (RemoteResult("osd.9", ok=False, detail="v2:10.0.0.9:6800 timeout"),)
    snapshot = dataclasses.replace(golden_snapshot(), report_status=report, remote=remote)
    text = render(SnapshotMetrics(BUILD).families(snapshot)).decode()
    # The parser names a counter's family without _total; the README names what is scraped.
    return {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(text)
        if family.name.startswith("osd_watchdog_")
    }


def test_the_readme_metrics_table_names_every_family_the_exporter_makes():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(osd_watchdog_\w+)`", table))
    exported = exported_families()
    assert len(exported) >= 30  # the snapshot still has every part
    assert exported - documented == set(), "exported but not in the README's table"
    assert documented - exported == set(), "in the README's table but not exported"


def test_every_test_the_release_table_names_exists():
    # The table is "release x deployment -> the test that proves it": a renamed or deleted
    # test must not leave a row that proves nothing.
    proofs = (ROOT / "docs" / "proofs.md").read_text()
    section = proofs.split("## On a real Ceph cluster", 1)[1].split("\n## ", 1)[0]
    files = set(re.findall(r"(tests/[\w/]+\.py)", section))
    names = set(re.findall(r"(?:::|…)(test_\w+)", section))
    assert len(files) >= 8
    assert len(names) >= 10
    assert [f for f in sorted(files) if not (ROOT / f).is_file()] == []
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE))
    assert sorted(names - defined) == []


def test_the_readmes_key_has_exactly_the_caps_the_cephclient_ships():
    """One key for every deployment: the README's command and Rook's CephClient agree."""
    from tests.shipped import key_caps  # noqa: PLC0415

    readme = (ROOT / "README.md").read_text()
    command = readme.split("ceph auth get-or-create client.osd-watchdog", 1)[1].split("-o ", 1)[0]
    caps = re.findall(r"(mon|mgr) '([^']*)'", command)
    assert [part for pair in caps for part in pair] == key_caps()
