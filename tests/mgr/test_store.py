"""What a standby needs: one store key per host, each value far below the monitors' limit,
and the same checks raised from them before any new report."""

import json

from tests.mgr.helpers import NOW, VIEW, book_with, make_view, report_text, verdict
from tests.mgr.logic import book, report, store

LIMIT = 65_536  # mon_config_key_max_entry_size (Ceph 16.2.15's default)


def saved(kept):
    """Every store key the module would write for the book, with its value."""
    found: dict[str, str] = {}
    for host in kept.reports:
        values = store.host_values(kept, host)
        found.update(zip(store.keys(host, len(values)), values, strict=True))
    return found


def standby_of(kept, on=VIEW, at=NOW + 100):
    taken = book.Book(max_age=60, started=at)
    taken.set_view(on)
    bad, shards = store.load(taken, saved(kept), at)
    assert bad == []
    return taken, shards


def test_a_standby_that_loads_the_store_raises_the_same_checks_and_logs_nothing_again():
    events = [{"time": NOW - 2, "message": "osd.1 is a zombie"}]
    kept = book_with(report_text(osds=[verdict()], events=events))
    standby, _ = standby_of(kept)
    assert standby.health_checks() == kept.health_checks()
    assert standby.health_checks().keys() == {"OSD_ACCEPT_DEAD"}
    resent = standby.accept(report.parse_report(report_text(events=events)), NOW + 102)[2]
    assert resent == []


def test_at_10000_osds_every_value_is_far_below_the_limit_and_failover_keeps_every_check():
    hosts = {osd: f"host{osd // 10:04d}" for osd in range(10_000)}
    on = make_view(hosts)
    long_cause = (
        "client accept path dead for 2 cycle(s): " + "public v2:10.0.0.1:6800 no_banner, " * 40
    )
    kept = book_with(on=on)
    for host in range(1000):
        osds = [verdict(f"osd.{host * 10 + i}", "zombie" if host % 100 == 0 else "healthy",
                        cause=long_cause[:1000]) for i in range(10)]  # fmt: skip
        kept.accept(report.parse_report(report_text(f"host{host:04d}", osds=osds)), NOW)
    values = saved(kept)
    assert len(values) == 1000  # one key per host
    assert max(len(v.encode()) for v in values.values()) < LIMIT // 4
    standby, _ = standby_of(kept, on)
    assert standby.health_checks() == kept.health_checks()
    assert standby.health_checks()["OSD_ACCEPT_DEAD"]["count"] == 100


def test_a_host_with_thousands_of_osds_is_split_into_values_under_the_limit():
    hosts = dict.fromkeys(range(4096), "big")
    on = make_view(hosts)
    osds = [verdict(f"osd.{i}", "zombie", cause="x" * 1000) for i in range(4096)]
    kept = book_with(report_text("big", osds=osds), on=on)
    values = store.host_values(kept, "big")
    assert len(values) > 1
    assert all(len(v.encode()) <= store.MAX_VALUE for v in values)
    standby, shards = standby_of(kept, on)
    assert shards == {"big": len(values)}
    assert standby.health_checks() == kept.health_checks()


def test_an_unreadable_host_value_is_left_out_and_the_others_load():
    kept = book_with(report_text("a", osds=[verdict()]), report_text("b"))
    values = saved(kept)
    values["host/b"] = "{not json"
    taken = book.Book(max_age=60, started=NOW)
    taken.set_view(VIEW)
    bad, _ = store.load(taken, values, NOW)
    assert bad == ["b"]
    assert set(taken.reports) == {"a"}


def test_the_single_value_of_older_versions_is_read_once():
    legacy = {
        "reports": {"a": {"host": "a", "watchdog": "osd-watchdog on a", "interval": 10,
                          "osds": [{**verdict(), "osd_id": 1}]}},
        "logged_through": {"a": NOW - 2},
    }  # fmt: skip
    taken = book.Book(max_age=60, started=NOW)
    taken.set_view(VIEW)
    store.load_legacy(taken, json.dumps(legacy), NOW)
    assert taken.health_checks().keys() == {"OSD_ACCEPT_DEAD"}
    assert taken.logged_through == {"a": NOW - 2}


def test_the_raised_checks_are_kept_whole_and_within_the_limit_whatever_their_length():
    one = {"OSD_ACCEPT_DEAD": {"severity": "error", "summary": "1 OSD(s) ...", "count": 1,
                               "detail": ["osd.1 on a: client accept path dead"]}}  # fmt: skip
    assert store.load_checks(store.checks_value(one)) == one

    # 1,000 hosts silent at once: far more lines than a value may hold.
    def line(host: int) -> str:
        osds = ", ".join(f"osd.{host * 10 + j}" for j in range(10))
        return (
            f"host{host:04d}: no watchdog report since 12:00:00, limit 60s (10 OSD(s) up: {osds})"
        )

    lines = [line(i) for i in range(1000)]
    many = {"OSD_WATCHDOG_DOWN": {"severity": "warning", "summary": "1000 host(s)", "count": 1000,
                                  "detail": lines}}  # fmt: skip
    value = store.checks_value(many)
    assert len(value.encode()) <= store.MAX_VALUE < LIMIT
    kept = store.load_checks(value)["OSD_WATCHDOG_DOWN"]
    assert kept["summary"] == "1000 host(s)"
    assert kept["detail"][0] == lines[0]
    assert kept["detail"][-1] == f"... and {1000 - (len(kept['detail']) - 1)} more"
