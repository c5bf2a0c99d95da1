"""The check command's verdict: Nagios exit codes, one line, standard performance data."""

import re

import pytest

from watchdog.model import (
    FdOutcome,
    FdSample,
    Incarnation,
    Observation,
    OsdReport,
    OsdStatus,
    Snapshot,
    State,
    Target,
)
from watchdog.report import CRITICAL, OK, UNKNOWN, WARNING, check_result, summary_line

# 'label'=value[UOM];[warn];[crit];[min];[max], per the Monitoring Plugins guidelines.
PERFDATA = re.compile(r"^'?[^'=]+'?=-?[\d.]+[a-zA-Z%]*(;[\d.]*){0,4}$")


def report(daemon: str, state: State, cause: str = "because", ratio: float = 0.1) -> OsdReport:
    target = Target(daemon, "ceph", Incarnation(100, 1.0))
    fds = FdSample(FdOutcome.OK, open_fds=int(ratio * 1000), limit=1000)
    return OsdReport(Observation(target, True, fds=fds), OsdStatus(state, 0.0, cause))


def snapshot(*reports: OsdReport) -> Snapshot:
    return Snapshot(taken_at=100.0, monotonic_at=10.0, cycle_seconds=0.1, cycles=3, osds=reports)


@pytest.mark.parametrize(
    ("states", "code"),
    [
        ([State.HEALTHY, State.HEALTHY], OK),
        ([State.HEALTHY, State.FD_PRESSURE], WARNING),
        ([State.SUSPECT, State.STARTING], WARNING),
        ([State.HEALTHY, State.UNOBSERVABLE], UNKNOWN),
        ([State.ZOMBIE, State.UNOBSERVABLE], CRITICAL),
        ([State.DOWN, State.HEALTHY], CRITICAL),
    ],
)
def test_the_worst_osd_decides_the_exit_code(states, code):
    reports = [report(f"osd.{i}", s) for i, s in enumerate(states)]
    assert check_result(snapshot(*reports), "none")[0] == code


def test_the_line_names_each_worst_osd_and_its_cause():
    reports = (
        report("osd.0", State.HEALTHY),
        report("osd.1", State.ZOMBIE, "client accept path dead for 2 cycle(s)"),
        report("osd.2", State.SUSPECT, "refused"),
    )
    code, line = check_result(snapshot(*reports), "none", fd_warn=0.8)
    assert code == CRITICAL
    text, _, perf = line.partition(" | ")
    assert text == "OSD-WATCHDOG CRITICAL - ZOMBIE osd.1: client accept path dead for 2 cycle(s)"
    fields = perf.split(" ")
    assert all(PERFDATA.match(f) for f in fields), fields
    assert "zombie=1;;;0" in fields
    assert "'osd.1_fd_ratio'=0.1000;0.8;1;0;1" in fields


def test_no_osds_is_unknown_with_the_reason():
    assert check_result(snapshot(), "no OSDs found on this host") == (
        UNKNOWN,
        "OSD-WATCHDOG UNKNOWN - no OSDs found on this host",
    )


def test_the_status_line_counts_osds_by_state():
    reports = (report("osd.0", State.HEALTHY), report("osd.1", State.ZOMBIE))
    assert summary_line(snapshot(*reports)) == "2 OSD(s): 1 healthy, 1 zombie"
    assert summary_line(snapshot()) == "no OSDs found"
