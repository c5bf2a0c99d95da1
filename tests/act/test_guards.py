"""Every guard refuses for its reason, and only then; the first refusal names itself."""

from dataclasses import replace

import pytest

from watchdog.act.guards import (
    History,
    MapFacts,
    Situation,
    refuse_on_host,
    refuse_on_map,
    refuse_on_ok_to_stop,
)
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
HERE = frozenset({"host-a"})


def report(daemon: str, state: State) -> OsdReport:
    target = Target(daemon, "ceph", Incarnation(1, 1.0))
    return OsdReport(Observation(target, True), OsdStatus(state, 0.0, ""))


def situation(**changes) -> Situation:
    base = Situation(
        daemon="osd.1",
        now=NOW,
        reports=[report(f"osd.{i}", State.ZOMBIE if i == 1 else State.HEALTHY) for i in range(4)],
        busy=(),
        canary_ok=True,
    )
    return replace(base, **changes)


def osds(**flags) -> dict[str, MapOsd]:
    """Four OSDs on host-a, up and in; ``osd_1={"noup": True}`` changes one."""
    found = {}
    for i in range(4):
        changes = {"up": True, "in_": True, "hostname": "host-a"} | flags.get(f"osd_{i}", {})
        found[f"osd.{i}"] = MapOsd(f"osd.{i}", **changes)
    return found


def facts(cluster_map: ClusterMap | None = None, **changes) -> MapFacts:
    base = MapFacts(
        daemon="osd.1",
        cluster_map=ClusterMap(epoch=7, osds=osds()) if cluster_map is None else cluster_map,
        error="",
        hostnames=HERE,
        ours=(),
    )
    return replace(base, **changes)


def guard_of(refusal) -> str:
    return refusal.guard if refusal is not None else ""


def test_a_lone_zombie_on_a_calm_host_passes_every_guard():
    assert refuse_on_host(situation(), QUIET, CONFIG) is None
    assert refuse_on_map(facts(), CONFIG) is None
    assert refuse_on_ok_to_stop("osd.1", ok=True, detail="ok") is None


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
        (
            {},
            History({}, (), {"osd.1": (NOW - 10, NOW - 20, NOW - 30, NOW - 40)}),
            "markdown_limit",
        ),
        ({}, History({}, (), {}, unknown_before=NOW - 60), "history_lost"),
    ],
)
def test_each_host_guard_refuses_with_its_name(changes, history, guard):
    assert guard_of(refuse_on_host(situation(**changes), history, CONFIG)) == guard


@pytest.mark.parametrize(
    ("made", "guard"),
    [
        (replace(facts(), cluster_map=None, error="timed out"), "no_map"),
        (facts(ClusterMap(epoch=7, flags=frozenset({"nodown"}))), "no_map"),  # no osd.1 in it
        (facts(ClusterMap(7, flags=frozenset({"nodown"}), osds=osds())), "nodown"),
        (facts(ClusterMap(7, osds=osds(osd_1={"nodown": True}))), "nodown"),
        (facts(ClusterMap(7, flags=frozenset({"noup"}), osds=osds())), "noup"),
        (facts(ClusterMap(7, osds=osds(osd_1={"noup": True}))), "noup"),
        (facts(ClusterMap(7, osds=osds(osd_1={"up": False}))), "already_down"),
        (facts(ClusterMap(7, osds=osds(osd_1={"hostname": "host-b"}))), "not_here"),
        (facts(ClusterMap(7, osds=osds(osd_3={"noup": True}))), "cluster_fences"),
    ],
)
def test_each_map_guard_refuses_with_its_name(made, guard):
    assert guard_of(refuse_on_map(made, CONFIG)) == guard


def test_the_noup_this_watchdog_set_itself_is_not_someone_elses():
    mine = facts(ClusterMap(7, osds=osds(osd_1={"noup": True})), ours={"osd.1"})
    assert refuse_on_map(mine, CONFIG) is None


def test_fences_elsewhere_count_up_to_the_configured_limit():
    two = facts(ClusterMap(7, osds=osds(osd_2={"noup": True}, osd_3={"noup": True})))
    assert (
        guard_of(refuse_on_map(two, replace(CONFIG, max_fenced_in_cluster=2))) == "cluster_fences"
    )
    one = facts(ClusterMap(7, osds=osds(osd_3={"noup": True})))
    assert refuse_on_map(one, replace(CONFIG, max_fenced_in_cluster=2)) is None


def test_ceph_saying_no_or_not_answering_is_a_refusal():
    refused = refuse_on_ok_to_stop("osd.1", ok=False, detail="5 PGs would become offline")
    assert (
        str(refused)
        == "ok_to_stop: stopping osd.1 would make PGs inactive: 5 PGs would become offline"
    )
    unasked = refuse_on_ok_to_stop("osd.1", ok=None, detail="timed out")
    assert str(unasked) == "ok_to_stop: no answer whether osd.1 may stop: timed out"


def test_old_history_does_not_count():
    long_ago = NOW - 7200
    history = History({"osd.1": long_ago}, (long_ago,) * 10, {"osd.1": (long_ago,) * 10})
    assert refuse_on_host(situation(), history, CONFIG) is None
    lost_long_ago = History({}, (), {}, unknown_before=NOW - 7200)
    assert refuse_on_host(situation(), lost_long_ago, CONFIG) is None


def test_steps_that_do_not_stop_the_osd_need_no_map():
    webhook_only = ActConfig(steps=["webhook"], webhook_url="http://127.0.0.1:1/")
    assert refuse_on_map(replace(facts(), cluster_map=None), webhook_only) is None


def test_a_restart_alone_needs_the_map_for_placement_but_not_the_flags():
    restart_only = ActConfig(steps=["restart", "verify"])
    nodown = facts(ClusterMap(7, flags=frozenset({"nodown"}), osds=osds()))
    assert refuse_on_map(nodown, restart_only) is None
    elsewhere = facts(ClusterMap(7, osds=osds(osd_1={"hostname": "host-b"})))
    assert guard_of(refuse_on_map(elsewhere, restart_only)) == "not_here"


def test_half_of_the_host_failing_is_still_acted_on_but_more_is_not():
    two_of_four = [report(f"osd.{i}", State.ZOMBIE if i < 2 else State.HEALTHY) for i in range(4)]
    assert refuse_on_host(situation(reports=two_of_four), QUIET, CONFIG) is None
    three = [report(f"osd.{i}", State.ZOMBIE if i < 3 else State.HEALTHY) for i in range(4)]
    refused = refuse_on_host(situation(reports=three), QUIET, CONFIG)
    assert str(refused).startswith("mass_failure: 3 of 4")


def test_an_osd_we_fenced_counts_as_failing_though_it_is_down_now():
    # osd.0 is down because we fenced it; osd.2 zombie too: with osd.1, 3 of 4 fail.
    reports = [
        report("osd.0", State.DOWN),
        report("osd.1", State.ZOMBIE),
        report("osd.2", State.ZOMBIE),
        report("osd.3", State.HEALTHY),
    ]
    assert refuse_on_host(situation(reports=reports), QUIET, CONFIG) is None
    busy = refuse_on_host(situation(reports=reports, busy={"osd.0"}), QUIET, CONFIG)
    assert str(busy).startswith("mass_failure: 3 of 4")
