"""A report is checked whole before anything of it is kept; and what the watchdog sends is
what the module takes."""

import json
import time

import pytest

from tests.mgr.helpers import report_text, verdict
from tests.mgr.logic import report
from watchdog.config import parse_config
from watchdog.daemon import Watchdog
from watchdog.export_mgr import MgrReporter


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "the report is not JSON"),
        ("[]", "the report must be a JSON object"),
        ('{"version": 2}', "report version 2 is not supported"),
        (report_text(osds=[verdict(daemon="mon.a")]), "osds[0]: daemon 'mon.a' is not osd.N"),
        (report_text(osds=[verdict(state="sad")]), "osds[0]: state 'sad' is not one of starting"),
        (report_text(osds=[{"daemon": "osd.1"}]), "osds[0]: state is missing"),
        (
            report_text(osds=[verdict(open_fds="many")]),
            "osds[0]: open_fds must be an integer or null",
        ),
        (report_text(osds=[verdict(since=True)]), "osds[0]: since must be an integer or a number"),
        (report_text(host=""), "report: host '' is not a host name"),
        (report_text(host="a/b"), "report: host 'a/b' is not a host name"),
        (report_text(host="x" * 300), "report: host is longer than 253 characters"),
        (report_text(events=[{"time": 1}]), "events[0]: message is missing"),
        # Python's JSON parser takes NaN and Infinity: a report must not.
        (report_text(osds=[verdict(since=float("nan"))]), "osds[0]: since must be a finite number"),
        (report_text(osds=[verdict(since=float("inf"))]), "osds[0]: since must be a finite number"),
        (report_text(osds=[verdict(since=-5)]), "osds[0]: since must be a finite number from 0"),
        (report_text(interval=float("nan")), "report: interval must be a finite number"),
        (report_text(interval=86400), "report: interval must be at most 3600 s, not 86400"),
        (
            report_text(events=[{"time": float("-inf"), "message": "x"}]),
            "events[0]: time must be a finite",
        ),
        (
            report_text(osds=[verdict(fd_exhaustion_seconds=float("inf"))]),
            "osds[0]: fd_exhaustion_seconds must be a finite",
        ),
        (
            report_text(osds=[verdict(open_fds=-1)]),
            "osds[0]: open_fds must be from 0 to 2147483647",
        ),
        (
            report_text(osds=[verdict(max_fds=2**40)]),
            "osds[0]: max_fds must be from 0 to 2147483647",
        ),
        (report_text(osds=[verdict(daemon="osd.99999999999")]), "is not osd.N"),
        (report_text(osds=[verdict(cause="x" * 1001)]), "osds[0]: cause is longer than 1000"),
        (report_text(osds=[verdict(), verdict()]), "report: an OSD is named twice"),
        (
            report_text(remote=[{"daemon": "osd.1", "ok": "yes", "detail": ""}]),
            "remote[0]: ok must be true",
        ),
        (report_text(osds=[verdict()] * 4097), "report: at most 4096 OSDs"),
    ],
)
def test_a_bad_report_is_refused_with_what_was_wrong(text, message):
    with pytest.raises(report.ReportError) as caught:
        report.parse_report(text)
    assert message in str(caught.value)


@pytest.mark.integration
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
    taken = report.parse_report(json.dumps(body))
    assert taken.host == "a"
    assert {v.daemon for v in taken.osds} == {r.observation.target.daemon for r in snapshot.osds}
    assert len(taken.osds) == sim.count
    assert [e.message for e in taken.events] == [
        "remediation of osd.1 refused: ok_to_stop: PGs would go inactive because dead"
    ]
