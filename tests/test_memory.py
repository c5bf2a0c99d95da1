"""The per-OSD memory beside the state machine: what one cycle hands to the next."""

from watchdog.config import AssessConfig
from watchdog.memory import OsdMemory
from watchdog.model import Incarnation, Observation, State, Target

POLICY = AssessConfig()


def seen(daemon: str, pid: int = 100, *, alive: bool = True) -> Observation:
    return Observation(Target(daemon, incarnation=Incarnation(pid, 1.0)), alive=alive)


def test_first_sight_starts_each_osd_and_reports_come_in_osd_number_order():
    memory = OsdMemory()
    transitions = memory.record([seen("osd.10"), seen("osd.2")], POLICY, now=1.0)
    assert [(t.daemon, t.old, t.new) for t in transitions] == [
        ("osd.10", None, State.STARTING),
        ("osd.2", None, State.STARTING),
    ]
    assert [r.observation.target.daemon for r in memory.reports()] == ["osd.2", "osd.10"]
    assert memory.record([seen("osd.2")], POLICY, now=2.0) == []  # nothing changed


def test_a_new_process_counts_as_a_restart_and_a_vanished_osd_stays_known():
    memory = OsdMemory()
    memory.record([seen("osd.1", pid=100)], POLICY, now=1.0)
    memory.record([seen("osd.1", pid=100, alive=False)], POLICY, now=2.0)
    memory.record([seen("osd.1", pid=200)], POLICY, now=3.0)
    (report,) = memory.reports()
    assert report.restarts == 1
    assert report.transitions == {State.STARTING: 2, State.DOWN: 1}
    assert report.observation.target.incarnation == Incarnation(200, 1.0)
    memory.record([], POLICY, now=4.0)  # an OSD missing from a cycle is not forgotten
    assert set(memory.known()) == {"osd.1"}
