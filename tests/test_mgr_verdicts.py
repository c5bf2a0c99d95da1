"""The mgr module's judging logic (mgr/osd_watchdog/verdicts.py), without a mgr, and the
contract between what the watchdog sends and what the module takes."""

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.discover.mapped import remote_sample
from watchdog.export_mgr import MgrReporter
from watchdog.model import ClusterMap, MapOsd

PATH = Path(__file__).resolve().parents[1] / "mgr" / "osd_watchdog" / "verdicts.py"
# The module's package imports mgr_module, which only ceph-mgr has: load this file alone.
_spec = importlib.util.spec_from_file_location("osd_watchdog_verdicts", PATH)
assert _spec is not None
assert _spec.loader is not None
verdicts = importlib.util.module_from_spec(_spec)
sys.modules["osd_watchdog_verdicts"] = verdicts
_spec.loader.exec_module(verdicts)

NOW = 1_800_000_000.0
VIEW = verdicts.ClusterView(up={0: True, 1: True, 2: True}, hosts={0: "a", 1: "a", 2: "b"})


def verdict(daemon="osd.1", state="zombie", **extra):
    return {
        "daemon": daemon,
        "state": state,
        "since": NOW - 30,
        "cause": "client accept path dead: public v2 no_banner; the OSD map still says up",
        "open_fds": None,
        "max_fds": None,
        "fd_exhaustion_seconds": None,
        **extra,
    }


def report(host="a", osds=(), events=(), remote=()):
    return json.dumps(
        {
            "version": 1,
            "host": host,
            "watchdog": f"osd-watchdog on {host}",
            "interval": 10,
            "osds": list(osds),
            "events": list(events),
            "remote": list(remote),
        }
    )


def book_with(*reports, at=NOW):
    book = verdicts.Book(max_age=60, started=at - 5)
    for text in reports:
        book.accept(verdicts.parse_report(text), VIEW, at)
    return book


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "the report is not JSON"),
        ("[]", "the report must be a JSON object"),
        ('{"version": 2}', "report version 2 is not supported"),
        (report(osds=[verdict(daemon="mon.a")]), "osds[0]: daemon 'mon.a' is not osd.N"),
        (report(osds=[verdict(state="sad")]), "osds[0]: state 'sad' is not one of starting"),
        (report(osds=[{"daemon": "osd.1"}]), "osds[0]: state is missing"),
        (report(osds=[verdict(open_fds="many")]), "osds[0]: open_fds must be an integer or null"),
        (report(osds=[verdict(since=True)]), "osds[0]: since must be an integer or a number"),
        (report(host=""), "report: host is empty"),
        (report(events=[{"time": 1}]), "events[0]: message is missing"),
    ],
)
def test_a_bad_report_is_refused_with_what_was_wrong(text, message):
    with pytest.raises(verdicts.ReportError) as caught:
        verdicts.parse_report(text)
    assert message in str(caught.value)


def test_a_zombie_that_the_map_keeps_up_is_an_error_naming_osd_and_host():
    book = book_with(report(osds=[verdict(), verdict("osd.0", "healthy")]))
    checks = book.health_checks(VIEW, NOW + 1)
    assert list(checks) == ["OSD_ACCEPT_DEAD"]
    check = checks["OSD_ACCEPT_DEAD"]
    assert check["severity"] == "error"
    assert check["summary"] == "1 OSD(s) up but refusing client connections"
    assert check["count"] == 1
    (line,) = check["detail"]
    assert line.startswith("osd.1 on a: client accept path dead: public v2 no_banner")
    assert "(since " in line


def test_a_zombie_the_map_says_is_down_is_left_to_cephs_own_osd_down():
    book = book_with(report(osds=[verdict()]))
    down = VIEW._replace(up={0: True, 1: False, 2: True})
    assert "OSD_ACCEPT_DEAD" not in book.health_checks(down, NOW + 1)


def test_fd_pressure_is_a_warning_with_the_count_and_the_time_left():
    pressed = verdict("osd.0", "fd_pressure", open_fds=900, max_fds=1000, fd_exhaustion_seconds=42)
    check = book_with(report(osds=[pressed])).health_checks(VIEW, NOW)["OSD_FD_PRESSURE"]
    assert check["severity"] == "warning"
    (line,) = check["detail"]
    assert line.startswith("osd.0 on a: 900 of 1000 fds open (90%), the limit in about 42s")


def test_a_verdict_for_an_osd_on_another_host_is_refused_and_the_rest_kept():
    book = verdicts.Book(max_age=60, started=NOW)
    kept, refused, _ = book.accept(
        verdicts.parse_report(report(osds=[verdict("osd.2"), verdict("osd.1"), verdict("osd.7")])),
        VIEW,
        NOW,
    )
    assert [v.daemon for v in kept.osds] == ["osd.1"]
    assert refused == ["osd.2 is on b, not a", "osd.7: no metadata names its host"]
    (line,) = book.health_checks(VIEW, NOW)["OSD_ACCEPT_DEAD"]["detail"]
    assert line.startswith("osd.1 on a:")


def test_each_event_is_handed_out_once_however_often_it_is_sent():
    events = [{"time": NOW - 2, "message": "osd.1 is a zombie"}]
    book = verdicts.Book(max_age=60, started=NOW)
    first = book.accept(verdicts.parse_report(report(events=events)), VIEW, NOW)[2]
    again = book.accept(verdicts.parse_report(report(events=events)), VIEW, NOW + 10)[2]
    newer = [*events, {"time": NOW + 5, "message": "remediation of osd.1 started"}]
    last = book.accept(verdicts.parse_report(report(events=newer)), VIEW, NOW + 20)[2]
    assert [e.message for e in first] == ["osd.1 is a zombie"]
    assert again == []
    assert [e.message for e in last] == ["remediation of osd.1 started"]


def test_a_silent_host_with_up_osds_is_reported_after_max_age_and_its_verdicts_age_out():
    book = book_with(report(host="a", osds=[verdict()]), report(host="b"))
    assert "OSD_WATCHDOG_DOWN" not in book.health_checks(VIEW, NOW + 59)
    book.accept(verdicts.parse_report(report(host="b")), VIEW, NOW + 59)
    checks = book.health_checks(VIEW, NOW + 61)
    assert "OSD_ACCEPT_DEAD" not in checks  # a stale report is no evidence
    (line,) = checks["OSD_WATCHDOG_DOWN"]["detail"]
    assert line == "a: last watchdog report 61s ago, limit 60s (2 OSD(s) up: osd.0, osd.1)"


def test_a_staged_rollout_is_quiet_hosts_that_never_reported_raise_nothing():
    book = book_with(report(host="a", osds=[verdict("osd.0", "healthy")]))
    assert book.health_checks(VIEW, NOW + 3600).keys() == {"OSD_WATCHDOG_DOWN"}
    (line,) = book.health_checks(VIEW, NOW + 3600)["OSD_WATCHDOG_DOWN"]["detail"]
    assert line.startswith("a: last watchdog report")  # b never reported: not named


def test_with_warn_unreported_a_host_that_never_reported_counts_from_the_modules_start():
    book = verdicts.Book(max_age=60, started=NOW, warn_unreported=True)
    assert book.health_checks(VIEW, NOW + 60) == {}
    lines = book.health_checks(VIEW, NOW + 61)["OSD_WATCHDOG_DOWN"]["detail"]
    assert lines[1] == "b: no watchdog report since the module started 61s ago (1 OSD(s) up: osd.2)"


def test_a_standby_that_loads_the_store_raises_the_same_checks_and_logs_nothing_again():
    events = [{"time": NOW - 2, "message": "osd.1 is a zombie"}]
    book = book_with(report(osds=[verdict()], events=events))
    standby = verdicts.Book(max_age=60, started=NOW + 100)
    standby.load(book.dump(), NOW + 100)
    assert standby.health_checks(VIEW, NOW + 101).keys() == {"OSD_ACCEPT_DEAD"}
    resent = standby.accept(verdicts.parse_report(report(events=events)), VIEW, NOW + 102)[2]
    assert resent == []


def test_status_has_every_osd_of_the_map_with_its_reporter_and_the_age_of_its_report():
    book = book_with(report(osds=[verdict(), verdict("osd.0", "healthy")]))
    rows = {r["osd"]: r for r in book.status(VIEW, NOW + 3)}
    assert rows["osd.1"]["state"] == "zombie"
    assert rows["osd.1"]["watchdog"] == "osd-watchdog on a"
    assert rows["osd.1"]["report_age"] == 3.0
    assert rows["osd.2"]["state"] == "unreported"
    table = verdicts.status_table(list(rows.values())).splitlines()
    assert table[0].split() == [
        "OSD",
        "HOST",
        "UP",
        "STATE",
        "SINCE",
        "REPORT",
        "AGE",
        "WATCHDOG",
        "CAUSE",
    ]
    assert table[2].split()[:4] == ["osd.1", "a", "up", "zombie"]


def test_what_the_watchdog_sends_is_what_the_module_takes(sim, tmp_path):
    config = parse_config(
        {
            "discovery": {"clusters": [sim.cluster]},
            "cluster": {"source": "cli", "hostname": "a"},
            "report": {"enabled": True},
            "act": {"state_dir": str(tmp_path)},
        }
    )
    watchdog = Watchdog(config, acting=False)
    snapshot = watchdog.cycle()
    reporter = MgrReporter(config)
    reporter.offer(snapshot)
    refused = {"ceph_daemon": "osd.1", "result": "refused", "evidence": "dead"}
    reporter.audited({**refused, "time": time.time(), "guard": "ok_to_stop: PGs would go inactive"})
    body = reporter.body(snapshot, list(reporter.events))
    taken = verdicts.parse_report(json.dumps(body))
    assert taken.host == "a"
    assert {v.daemon for v in taken.osds} == {r.observation.target.daemon for r in snapshot.osds}
    assert len(taken.osds) == sim.count
    assert [e.message for e in taken.events] == [
        "remediation of osd.1 refused: ok_to_stop: PGs would go inactive because dead"
    ]


def remote(daemon, ok, detail="v2:10.0.0.9:6800 timeout"):
    return {"daemon": daemon, "ok": ok, "detail": detail}


VIEW3 = verdicts.ClusterView(up={0: True, 1: True, 2: True}, hosts={0: "a", 1: "b", 2: "c"})


def judged(*reports, view=VIEW3):
    book = verdicts.Book(max_age=60, started=NOW)
    for text in reports:
        book.accept(verdicts.parse_report(text), view, NOW)
    return book.health_checks(view, NOW)


def test_an_osd_its_host_sees_answering_but_two_others_cannot_reach_is_unreachable():
    checks = judged(
        report("a", osds=[verdict("osd.0", "healthy")]),
        report("b", remote=[remote("osd.0", ok=False)]),
        report("c", remote=[remote("osd.0", ok=False)]),
    )
    assert list(checks) == ["OSD_UNREACHABLE"]
    (line,) = checks["OSD_UNREACHABLE"]["detail"]
    assert line == (
        "osd.0 on a: not reachable from 2 other host(s) (b, c: v2:10.0.0.9:6800 timeout) "
        "while a sees it healthy"
    )
    assert checks["OSD_UNREACHABLE"]["severity"] == "warning"


def test_one_vantage_point_failing_alone_is_ignored():
    checks = judged(
        report("a", osds=[verdict("osd.0", "healthy")]),
        report("b", remote=[remote("osd.0", ok=False)]),
        report("c", remote=[remote("osd.0", ok=True)]),
    )
    assert checks == {}


def test_a_dead_accept_path_seen_from_everywhere_is_one_accept_dead_not_unreachable():
    checks = judged(
        report("a", osds=[verdict("osd.0", "zombie")]),
        report("b", remote=[remote("osd.0", ok=False)]),
        report("c", remote=[remote("osd.0", ok=False)]),
    )
    assert list(checks) == ["OSD_ACCEPT_DEAD"]
    assert checks["OSD_ACCEPT_DEAD"]["detail"][0].endswith("; 2 other host(s) agree")


def test_a_host_cannot_vouch_remotely_for_its_own_osd():
    checks = judged(
        report("a", osds=[verdict("osd.0", "healthy")], remote=[remote("osd.0", ok=False)]),
        report("b", remote=[remote("osd.0", ok=False)]),
    )
    assert checks == {}


def test_the_remote_sample_covers_every_osd_by_that_many_other_hosts_and_no_more():
    hosts = [f"host{h:02d}" for h in range(7)]
    osds = {
        f"osd.{i}": MapOsd(f"osd.{i}", up=True, in_=True, hostname=hosts[i % 7]) for i in range(50)
    }
    cluster_map = ClusterMap(epoch=1, osds=osds)
    covered: dict[str, list[str]] = {}
    for me in hosts:
        for osd in remote_sample(cluster_map, me, vantages=2, limit=1000):
            assert osd.hostname != me
            covered.setdefault(osd.daemon, []).append(me)
    assert set(covered) == set(osds)
    assert {len(v) for v in covered.values()} == {2}
    # Each host's share is about 2/7 of the cluster, not all of it.
    shares = [len(remote_sample(cluster_map, me, vantages=2, limit=1000)) for me in hosts]
    assert max(shares) <= 2 * 8
    assert len(remote_sample(cluster_map, "host00", vantages=2, limit=5)) == 5
