"""Shared by the deployment tests: where the files are, and what the watchdog exports."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GOLDEN = ROOT / "tests" / "fixtures" / "metrics.golden.txt"
METRIC = re.compile(r"\bosd_watchdog_[a-z_]+\b")


def exported_metrics() -> set[str]:
    """Every sample name the exporter produces (the golden file is checked against it)."""
    names = set()
    for line in GOLDEN.read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def referenced_metrics(expr: str) -> set[str]:
    """The watchdog's metric names a PromQL expression uses."""
    return set(METRIC.findall(expr))
