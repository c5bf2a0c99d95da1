"""Every guard refuses for its reason, and only then; the first refusal names itself."""

from dataclasses import replace

import pytest

from watchdog.act.guards import History, Situation, refuse
from watchdog.config import ActConfig
from watchdog.model import (
    ClusterMap,
    Incarnation,
    MapOsd,
    Observation,
    OsdReport,
    OsdStatus,
    State,
    Target,
)

NOW = 10_000.0
QUIET = History(last_action={}, actions=(), markdowns={})
CONFIG = ActConfig(dry_run=False)


def report(daemon: str, state: State) -> OsdReport:
    target = Target(daemon, "ceph", Incarnation(1, 1.0))
    return OsdReport(Observation(target, True), OsdStatus(state, 0.0, ""))


def situation(**changes) -> Situation:
    osds = {f"osd.{i}": MapOsd(f"osd.{i}", up=True, in_=True) for i in range(4)}
    base = Situation(
        daemon="osd.1",
        now=NOW,
        reports=[report(f"osd.{i}", State.ZOMBIE if i == 1 else State.HEALTHY) for i in range(4)],
        cluster_map=ClusterMap(epoch=7, osds=osds),
        canary_ok=True,
    )
    return replace(base, **changes)


def test_a_lone_zombie_on_a_calm_host_passes_every_guard():
    assert refuse(situation(), QUIET, CONFIG) == ""


@pytest.mark.parametrize(
    ("changes", "history", "guard"),
    [
        ({}, History({"osd.1": NOW - 60}, (), {}), "cooldown"),
        ({}, History({}, (NOW - 100, NOW - 200, NOW - 300), {}), "rate_limit"),
        (
            {"reports": [report(f"osd.{i}", State.SUSPECT) for i in range(4)]},
            QUIET,
            "mass_failure",
        ),
        ({"canary_ok": False}, QUIET, "canary"),
        ({"cluster_map": None}, QUIET, "no_map"),
        ({"cluster_map": ClusterMap(epoch=7, flags=frozenset({"nodown"}))}, QUIET, "no_map"),
        (
            {
                "cluster_map": ClusterMap(
                    epoch=7,
                    flags=frozenset({"nodown"}),
                    osds={"osd.1": MapOsd("osd.1", up=True, in_=True)},
                )
            },
            QUIET,
            "nodown",
        ),
        (
            {
                "cluster_map": ClusterMap(
                    7, osds={"osd.1": MapOsd("osd.1", True, True, nodown=True)}
                )
            },
            QUIET,
            "nodown",
        ),
        (
            {"cluster_map": ClusterMap(7, osds={"osd.1": MapOsd("osd.1", up=False, in_=True)})},
            QUIET,
            "already_down",
        ),
        (
            {},
            History({}, (), {"osd.1": (NOW - 10, NOW - 20, NOW - 30, NOW - 40)}),
            "markdown_limit",
        ),
    ],
)
def test_each_guard_refuses_with_its_name(changes, history, guard):
    assert refuse(situation(**changes), history, CONFIG).split(":")[0] == guard


def test_old_history_does_not_count():
    long_ago = NOW - 7200
    history = History({"osd.1": long_ago}, (long_ago,) * 10, {"osd.1": (long_ago,) * 10})
    assert refuse(situation(), history, CONFIG) == ""


def test_steps_that_do_not_mark_down_need_no_map():
    webhook_only = ActConfig(steps=["webhook"], webhook_url="http://127.0.0.1:1/")
    assert refuse(situation(cluster_map=None), QUIET, webhook_only) == ""


def test_half_of_the_host_failing_is_still_acted_on_but_more_is_not():
    two_of_four = [report(f"osd.{i}", State.ZOMBIE if i < 2 else State.HEALTHY) for i in range(4)]
    assert refuse(situation(reports=two_of_four), QUIET, CONFIG) == ""
    three = [report(f"osd.{i}", State.ZOMBIE if i < 3 else State.HEALTHY) for i in range(4)]
    assert refuse(situation(reports=three), QUIET, CONFIG).startswith("mass_failure: 3 of 4")
