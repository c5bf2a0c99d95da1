"""The module's book: health checks from every host's latest report, kept incrementally and
bounded by the OSD map."""

import pytest

from tests.mgr.helpers import NOW, book_with, make_view, remote, report_text, verdict
from tests.mgr.logic import report


def take(kept, text, at=NOW):
    return kept.accept(report.parse_report(text), at)


def test_a_zombie_that_the_map_keeps_up_is_an_error_naming_osd_and_host():
    kept = book_with(report_text(osds=[verdict(), verdict("osd.0", "healthy")]))
    checks = kept.health_checks()
    assert list(checks) == ["OSD_ACCEPT_DEAD"]
    check = checks["OSD_ACCEPT_DEAD"]
    assert check["severity"] == "error"
    assert check["summary"] == "1 OSD(s) up but refusing client connections"
    assert check["count"] == 1
    (line,) = check["detail"]
    assert line.startswith("osd.1 on a: client accept path dead: public v2 no_banner")
    assert "(since " in line


def test_a_zombie_the_map_says_is_down_is_left_to_cephs_own_osd_down():
    kept = book_with(report_text(osds=[verdict()]))
    kept.set_view(make_view({0: "a", 1: "a", 2: "b"}, down=(1,)))
    assert "OSD_ACCEPT_DEAD" not in kept.health_checks()


def test_a_lasting_zombies_line_does_not_change_with_its_cycle_count():
    """Each report of a lasting zombie says "dead for N cycle(s)" with a new N: the check
    must stay the same, or every report would set it again."""
    first = verdict(cause="client accept path dead for 2 cycle(s): public v2 no_banner")
    kept = book_with(report_text(osds=[first]))
    before = kept.health_checks()
    later = verdict(cause="client accept path dead for 11 cycle(s): public v2 no_banner")
    take(kept, report_text(osds=[later]), NOW + 10)
    assert kept.health_checks() == before
    assert "for 2 cycle(s)" in before["OSD_ACCEPT_DEAD"]["detail"][0]
    # The status shows the latest words; a new state makes a new line.
    assert kept.status(NOW + 10)[1]["cause"].startswith("client accept path dead for 11")
    again = verdict(since=NOW + 5, cause="client accept path dead for 2 cycle(s): refused")
    take(kept, report_text(osds=[again]), NOW + 12)
    assert "refused" in kept.health_checks()["OSD_ACCEPT_DEAD"]["detail"][0]


def test_stuck_ops_are_an_error_naming_the_osd_and_the_oldest_ops_age():
    cause = "ops stuck: 3 in flight, the oldest 3.4s old (queued for pg), none finished for 3.1s"
    kept = book_with(report_text(osds=[verdict("osd.0", "stalled", cause=cause)]))
    check = kept.health_checks()["OSD_OPS_STUCK"]
    assert check["severity"] == "error"
    assert check["summary"] == "1 OSD(s) up but finishing no ops"
    (line,) = check["detail"]
    assert line.startswith(f"osd.0 on a: {cause} (since ")


def test_fd_pressure_is_a_warning_with_the_count_and_the_time_left():
    pressed = verdict("osd.0", "fd_pressure", open_fds=900, max_fds=1000, fd_exhaustion_seconds=42)
    check = book_with(report_text(osds=[pressed])).health_checks()["OSD_FD_PRESSURE"]
    assert check["severity"] == "warning"
    (line,) = check["detail"]
    assert line.startswith("osd.0 on a: 900 of 1000 fds open (90%), the limit in about 42s")


def test_a_verdict_for_an_osd_on_another_host_is_refused_and_the_rest_kept():
    kept = book_with()
    accepted, refused, _ = take(
        kept, report_text(osds=[verdict("osd.2"), verdict("osd.1"), verdict("osd.7")])
    )
    assert accepted == ["osd.1"]
    assert refused == ["osd.2 is on b", "osd.7 is not in the OSD map"]
    (line,) = kept.health_checks()["OSD_ACCEPT_DEAD"]["detail"]
    assert line.startswith("osd.1 on a:")


def test_a_report_from_a_host_that_owns_no_osd_is_refused_and_nothing_kept():
    kept = book_with()
    with pytest.raises(report.ReportError, match="no OSD in the OSD map is on z"):
        take(kept, report_text("z", osds=[verdict("osd.1")], remote=[remote("osd.0", ok=False)]))
    assert kept.reports == {}
    assert kept.parts == {}
    assert kept.health_checks() == {}


def test_the_book_never_holds_more_than_the_map_justifies():
    """A thousand reporters that own nothing, and one that names OSDs the map lacks."""
    kept = book_with()
    for index in range(1000):
        with pytest.raises(report.ReportError):
            take(kept, report_text(f"intruder{index}", osds=[verdict("osd.1")]))
    foreign = range(3, 500)
    verdicts = [verdict(f"osd.{i}") for i in foreign]
    take(
        kept,
        report_text("a", osds=verdicts, remote=[remote(f"osd.{i}", ok=False) for i in foreign]),
    )
    assert set(kept.reports) == {"a"}
    assert kept.reports["a"].report.osds == ()
    assert kept.reports["a"].report.remote == ()


def test_each_event_is_handed_out_once_however_often_it_is_sent():
    events = [{"time": NOW - 2, "message": "osd.1 is a zombie"}]
    kept = book_with()
    first = take(kept, report_text(events=events))[2]
    again = take(kept, report_text(events=events), NOW + 10)[2]
    newer = [*events, {"time": NOW + 5, "message": "remediation of osd.1 started"}]
    last = take(kept, report_text(events=newer), NOW + 20)[2]
    assert [e.message for e in first] == ["osd.1 is a zombie"]
    assert again == []
    assert [e.message for e in last] == ["remediation of osd.1 started"]


def test_a_silent_host_with_up_osds_is_reported_after_max_age_and_its_verdicts_age_out():
    kept = book_with(report_text(host="a", osds=[verdict()]), report_text(host="b"))
    kept.tick(NOW + 59)
    assert "OSD_WATCHDOG_DOWN" not in kept.health_checks()
    take(kept, report_text(host="b"), NOW + 59)
    kept.tick(NOW + 61)
    checks = kept.health_checks()
    assert "OSD_ACCEPT_DEAD" not in checks  # a stale report is no evidence
    (line,) = checks["OSD_WATCHDOG_DOWN"]["detail"]
    assert line.startswith("a: no watchdog report since ")
    assert line.endswith(", limit 60s (2 OSD(s) up: osd.0, osd.1)")
    # The line does not age with every tick: the check is not set again and again.
    kept.tick(NOW + 90)
    assert kept.health_checks()["OSD_WATCHDOG_DOWN"]["detail"] == [line]
    # A report clears it at once.
    take(kept, report_text(host="a"), NOW + 91)
    assert "OSD_WATCHDOG_DOWN" not in kept.health_checks()


def test_a_host_that_declares_a_long_keepalive_is_given_two_of_them_before_it_is_silent():
    # A watchdog with report.keepalive_seconds = 60 sends an unchanged report every 60 s:
    # with max_report_age at 60 s it would read as silent between two reports.
    kept = book_with(report_text(host="a", osds=[verdict()], interval=60))
    kept.tick(NOW + 119)
    checks = kept.health_checks()
    assert "OSD_WATCHDOG_DOWN" not in checks
    assert "OSD_ACCEPT_DEAD" in checks  # its verdict still counts
    kept.tick(NOW + 121)
    checks = kept.health_checks()
    assert "OSD_ACCEPT_DEAD" not in checks
    (line,) = checks["OSD_WATCHDOG_DOWN"]["detail"]
    assert ", limit 120s (" in line


def test_the_module_paces_keepalives_by_the_hosts_it_knows_in_steps_of_30_s():
    hosts = {osd: f"h{osd:04d}" for osd in range(1000)}
    kept = book_with(on=make_view(hosts), keepalive_rate=10.0)
    assert kept.pace() == 0.0  # nobody reports yet: nothing to ask
    for count, wanted in ((1, 1.0), (291, 30.0), (300, 30.0), (301, 60.0), (1000, 120.0)):
        while len(kept.reports) < count:
            take(kept, report_text(host=hosts[len(kept.reports)]), NOW)
        assert kept.pace() == wanted, count  # 1,000 hosts / 10 a second: 100 s, so 120
    kept.keepalive_rate = 0.1
    assert kept.pace() == 3600.0  # never more than a report may declare
    kept.keepalive_rate = 0.0  # below the option's minimum (the mgr refuses it): no error
    assert kept.pace() == 3600.0


def test_a_host_is_not_silent_before_two_of_the_keepalives_the_module_asks_for():
    # The host declared 10 s, and learnt from the reply to that report to wait 120 s: the
    # module must not call it silent at 2 x 10 s (max_report_age 60 s) before its next one.
    hosts = {osd: f"h{osd:04d}" for osd in range(1000)}
    kept = book_with(on=make_view(hosts), keepalive_rate=10.0)
    for osd, host in hosts.items():
        take(kept, report_text(host=host, osds=[verdict(f"osd.{osd}", "healthy")]), NOW)
    assert kept.pace() == 120.0
    kept.tick(NOW + 239)
    assert "OSD_WATCHDOG_DOWN" not in kept.health_checks()
    kept.tick(NOW + 241)
    assert len(kept.health_checks()["OSD_WATCHDOG_DOWN"]["detail"]) == 1000


def test_a_staged_rollout_is_quiet_hosts_that_never_reported_raise_nothing():
    kept = book_with(report_text(host="a", osds=[verdict("osd.0", "healthy")]))
    kept.tick(NOW + 3600)
    (line,) = kept.health_checks()["OSD_WATCHDOG_DOWN"]["detail"]
    assert line.startswith("a: no watchdog report since")  # b never reported: not named


def test_with_warn_unreported_a_host_that_never_reported_counts_from_the_modules_start():
    kept = book_with(warn_unreported=True, at=NOW + 5)
    kept.tick(NOW + 60)
    assert kept.health_checks() == {}
    kept.tick(NOW + 61)
    lines = kept.health_checks()["OSD_WATCHDOG_DOWN"]["detail"]
    assert lines == [
        "a: no watchdog report since the module started (2 OSD(s) up: osd.0, osd.1)",
        "b: no watchdog report since the module started (1 OSD(s) up: osd.2)",
    ]


def test_a_host_that_left_the_map_and_went_silent_is_forgotten():
    kept = book_with(report_text("a", osds=[verdict()]), report_text("b"))
    kept.set_view(make_view({0: "a", 1: "a"}))  # b's OSD was removed from the map
    assert kept.tick(NOW + 30) == []  # still fresh: kept for now
    assert kept.tick(NOW + 61) == ["b"]
    assert set(kept.reports) == {"a"}


VIEW3 = make_view({0: "a", 1: "b", 2: "c"})


def judged(*texts):
    return book_with(*texts, on=VIEW3).health_checks()


def test_an_osd_its_host_sees_answering_but_two_others_cannot_reach_is_unreachable():
    checks = judged(
        report_text("a", osds=[verdict("osd.0", "healthy")]),
        report_text("b", remote=[remote("osd.0", ok=False)]),
        report_text("c", remote=[remote("osd.0", ok=False)]),
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
        report_text("a", osds=[verdict("osd.0", "healthy")]),
        report_text("b", remote=[remote("osd.0", ok=False)]),
        report_text("c", remote=[remote("osd.0", ok=True)]),
    )
    assert checks == {}


def test_a_dead_accept_path_seen_from_everywhere_is_one_accept_dead_not_unreachable():
    checks = judged(
        report_text("a", osds=[verdict("osd.0", "zombie")]),
        report_text("b", remote=[remote("osd.0", ok=False)]),
        report_text("c", remote=[remote("osd.0", ok=False)]),
    )
    assert list(checks) == ["OSD_ACCEPT_DEAD"]
    assert checks["OSD_ACCEPT_DEAD"]["detail"][0].endswith("; 2 other host(s) agree")


def test_a_host_cannot_vouch_remotely_for_its_own_osd():
    checks = judged(
        report_text("a", osds=[verdict("osd.0", "healthy")], remote=[remote("osd.0", ok=False)]),
        report_text("b", remote=[remote("osd.0", ok=False)]),
    )
    assert checks == {}


def test_a_vantage_points_new_report_replaces_its_old_remote_results():
    kept = book_with(
        report_text("a", osds=[verdict("osd.0", "healthy")]),
        report_text("b", remote=[remote("osd.0", ok=False)]),
        report_text("c", remote=[remote("osd.0", ok=False)]),
        on=VIEW3,
    )
    take(kept, report_text("c", remote=[remote("osd.0", ok=True)]), NOW + 10)
    assert kept.health_checks() == {}


def test_status_has_every_osd_of_the_map_with_its_reporter_and_the_age_of_its_report():
    kept = book_with(report_text(osds=[verdict(), verdict("osd.0", "healthy")]))
    rows = {r["osd"]: r for r in kept.status(NOW + 3)}
    assert rows["osd.1"]["state"] == "zombie"
    assert rows["osd.1"]["watchdog"] == "osd-watchdog on a"
    assert rows["osd.1"]["report_age"] == 3.0
    assert rows["osd.2"]["state"] == "unreported"
    assert rows["osd.2"]["host"] == "b"


def test_a_report_costs_its_own_size_not_the_clusters():
    """Judging one host's report touches that host's part only: at 1,000 hosts, the checks
    are put together from the lines that exist (a few), not from every host."""
    hosts = {osd: f"h{osd // 10}" for osd in range(10_000)}
    kept = book_with(on=make_view(hosts))
    for host in range(1000):
        osds = [verdict(f"osd.{host * 10 + i}", "healthy") for i in range(10)]
        take(kept, report_text(f"h{host}", osds=osds))
    rest = [verdict(f"osd.{i}", "healthy") for i in range(71, 80)]
    take(kept, report_text("h7", osds=[verdict("osd.70"), *rest]))
    assert len(kept._lines["OSD_ACCEPT_DEAD"]) == 1  # the one line, not 10,000 verdicts
    assert kept.health_checks()["OSD_ACCEPT_DEAD"]["count"] == 1
