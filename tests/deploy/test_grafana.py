"""The Grafana dashboard: well-formed, and its queries use only metrics the watchdog exports."""

import json
import re

import pytest

from tests.deploy.conftest import DEPLOY, exported_metrics, referenced_metrics

DASHBOARD = json.loads((DEPLOY / "grafana" / "osd-watchdog.json").read_text())
PANELS = DASHBOARD["panels"]


def queries() -> list[str]:
    found = [t["expr"] for p in PANELS for t in p["targets"]]
    found += [v["definition"] for v in DASHBOARD["templating"]["list"] if "definition" in v]
    return found


@pytest.mark.parametrize("expr", queries())
def test_every_query_uses_only_exported_metrics(expr):
    used = referenced_metrics(expr)
    assert used, expr
    assert used <= exported_metrics()


def test_the_dashboard_covers_what_on_call_needs():
    used = set().union(*(referenced_metrics(e) for e in queries()))
    for needed in (
        "osd_watchdog_osd_state",  # per-OSD state timeline
        "osd_watchdog_probe_outcome",
        "osd_watchdog_probe_duration_seconds",
        "osd_watchdog_osd_fd_ratio",
        "osd_watchdog_osd_fd_exhaustion_seconds",
        "osd_watchdog_listen_queue_length",
        "osd_watchdog_osd_listen_backlog",
        "osd_watchdog_actions_total",
    ):
        assert needed in used


def test_panels_have_unique_ids_titles_and_use_the_datasource_variable():
    assert len({p["id"] for p in PANELS}) == len(PANELS)
    assert len({p["title"] for p in PANELS}) == len(PANELS)
    for panel in PANELS:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["description"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_the_state_timeline_maps_every_state_to_a_name():
    timeline = next(p for p in PANELS if p["type"] == "state-timeline")
    names = {
        option["text"]
        for mapping in timeline["fieldConfig"]["defaults"]["mappings"]
        for option in mapping["options"].values()
    }
    states = set(re.findall(r'state="(\w+)"', timeline["targets"][0]["expr"]))
    assert (
        names
        == states
        == {
            "starting",
            "healthy",
            "fd_pressure",
            "suspect",
            "zombie",
            "down",
            "unobservable",
        }
    )
