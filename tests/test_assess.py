"""The pure state machine: tables for each rule, Hypothesis for the hysteresis properties."""

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.assess import serving, step
from watchdog.config import AssessConfig
from watchdog.model import (
    BannerResult,
    Endpoint,
    FdOutcome,
    FdSample,
    Incarnation,
    Listener,
    MapOsd,
    Msgr,
    Observation,
    OpsOutcome,
    OpsSample,
    Outcome,
    Role,
    State,
    Target,
)

POLICY = AssessConfig(startup_grace_seconds=0)
ME = Incarnation(pid=100, create_time=1.0)
PUBLIC = [
    Endpoint("127.0.0.1", 6800, Msgr.V2, Role.PUBLIC),
    Endpoint("127.0.0.1", 6801, Msgr.V1, Role.PUBLIC),
]
HB = [Endpoint("127.0.0.1", 6804, Msgr.V2, Role.HB_FRONT)]
TARGET = Target("osd.3", "ceph", ME, tuple(Listener(e, i) for i, e in enumerate(PUBLIC + HB)))
HEALTHY_FDS = FdSample(FdOutcome.OK, open_fds=100, limit=1000)


IDLE = OpsSample(OpsOutcome.OK, in_flight=0, completed=100)


def observe(  # noqa: PLR0913 - a whole observation, keyword by keyword
    public: Outcome = Outcome.OK,
    *,
    beats: int | None = 4,
    fds: FdSample = HEALTHY_FDS,
    alive: bool = True,
    target: Target = TARGET,
    ops: OpsSample = IDLE,
) -> Observation:
    banners = [BannerResult(e, public, 0.001) for e in PUBLIC] + [
        BannerResult(e, Outcome.OK, 0.001) for e in HB
    ]
    return Observation(target, alive, tuple(banners), fds, ops, heartbeat_connections=beats)


def held(oldest: float, done: int = 100, count: int = 1) -> OpsSample:
    """The OSD holds ``count`` ops, the oldest ``oldest`` s old; ``done`` ops finished so far."""
    return OpsSample(OpsOutcome.OK, count, oldest, "queued for pg", completed=done)


def run(observations, policy=POLICY, start=0.0):
    """Feed observations one per second; return the states after each and the transitions."""
    status, states, transitions = None, [], []
    for i, obs in enumerate(observations):
        status, transition = step(status, obs, policy, start + i)
        states.append(status.state)
        if transition:
            transitions.append(transition)
    return states, transitions


def test_a_new_process_starts_then_turns_healthy():
    states, transitions = run([observe(), observe()])
    assert states == [State.STARTING, State.HEALTHY]
    assert [(t.old, t.new) for t in transitions] == [
        (None, State.STARTING),
        (State.STARTING, State.HEALTHY),
    ]


def test_a_dead_client_path_with_flowing_heartbeats_is_suspect_then_zombie():
    states, transitions = run(
        [observe(), observe(), observe(Outcome.REFUSED), observe(Outcome.REFUSED)]
    )
    assert states == [State.STARTING, State.HEALTHY, State.SUSPECT, State.ZOMBIE]
    assert transitions[-1].cause == (
        "client accept path dead for 2 cycle(s): public v2:127.0.0.1:6800 refused, "
        "public v1:127.0.0.1:6801 refused; the process lives and its heartbeats still flow"
        " (no fresh OSD map: judged from local evidence)"
    )


@pytest.mark.parametrize("outcome", [o for o in Outcome if o.is_failure])
def test_every_failing_outcome_counts_against_the_client_path(outcome):
    states, _ = run([observe(), observe(), observe(outcome), observe(outcome)])
    assert states[-1] is State.ZOMBIE


def test_without_heartbeats_a_dead_osd_stays_suspect_not_zombie():
    states, transitions = run([observe(), observe()] + [observe(Outcome.TIMEOUT, beats=0)] * 4)
    assert states[-1] is State.SUSPECT
    assert transitions[-1].cause.endswith(
        "no heartbeat connections either (the monitors should mark it down)"
    )


def test_a_single_failed_sample_is_suspect_and_recovers_without_zombie():
    states, _ = run([observe(), observe(), observe(Outcome.NO_BANNER), observe(), observe()])
    assert states == [State.STARTING, State.HEALTHY, State.SUSPECT, State.SUSPECT, State.HEALTHY]


def test_our_own_errors_never_move_an_osd_towards_zombie():
    states, transitions = run([observe(), observe()] + [observe(Outcome.LOCAL_ERROR)] * 5)
    assert State.ZOMBIE not in states
    assert State.SUSPECT not in states
    assert states[-1] is State.UNOBSERVABLE
    assert transitions[-1].cause.startswith("watchdog's own probes failed")


def test_access_denied_is_unobservable_never_healthy():
    denied = FdSample(FdOutcome.ACCESS_DENIED, detail="access denied: [Errno 13] Permission denied")
    states, transitions = run([observe(fds=denied)] * 4)
    assert states[-1] is State.UNOBSERVABLE
    assert State.HEALTHY not in states
    assert transitions[-1].cause == "access denied: [Errno 13] Permission denied"


def test_a_process_that_exits_is_down_and_a_new_one_starts_over():
    other = replace(TARGET, incarnation=Incarnation(pid=200, create_time=9.0))
    states, transitions = run(
        [observe(), observe(), observe(alive=False), observe(target=other), observe(target=other)]
    )
    assert states == [State.STARTING, State.HEALTHY, State.DOWN, State.STARTING, State.HEALTHY]
    assert transitions[2].cause == "process exited"


def test_a_reused_pid_with_another_start_time_is_a_new_process_not_the_old_zombie():
    """The OSD restarted between two cycles and got the same pid back: its history is gone."""
    reborn = replace(TARGET, incarnation=Incarnation(pid=ME.pid, create_time=50.0))
    dead = Outcome.NO_BANNER
    states, transitions = run(
        [observe(), observe(), observe(dead), observe(dead), observe(dead, target=reborn)]
    )
    assert states[:4] == [State.STARTING, State.HEALTHY, State.SUSPECT, State.ZOMBIE]
    assert states[4] is State.STARTING
    assert transitions[-1].cause == f"new process pid {ME.pid}"


def test_a_crash_near_the_fd_limit_is_blamed_on_fd_exhaustion():
    full = FdSample(FdOutcome.OK, open_fds=255, limit=256)
    _, transitions = run([observe(), observe(fds=full), observe(alive=False)])
    assert transitions[-1].new is State.DOWN
    assert (
        transitions[-1].cause
        == "process exited with fds at 100% of its limit (likely fd exhaustion)"
    )


def test_fd_pressure_is_raised_at_the_ratio_and_cleared_below_the_clear_ratio():
    def fds(n):
        return FdSample(FdOutcome.OK, open_fds=n, limit=1000)

    states, _ = run(
        [observe(fds=fds(100)), observe(fds=fds(800)), observe(fds=fds(780)), observe(fds=fds(700))]
    )
    assert states == [State.STARTING, State.FD_PRESSURE, State.FD_PRESSURE, State.HEALTHY]


def test_a_growth_that_reaches_the_limit_soon_is_fd_pressure_below_the_ratio():
    soon = FdSample(FdOutcome.OK, open_fds=600, limit=1000, seconds_to_exhaustion=40)
    states, transitions = run([observe(), observe(fds=soon)])
    assert states[-1] is State.FD_PRESSURE
    assert (
        transitions[-1].cause
        == "600/1000 fds open (60%), limit reached in ~40s at the current rate"
    )


def test_startup_grace_holds_judgment_on_a_process_still_binding():
    policy = AssessConfig(startup_grace_seconds=10)
    states, _ = run([observe(Outcome.REFUSED)] * 5 + [observe()], policy)
    assert states == [State.STARTING] * 5 + [State.HEALTHY]


def test_startup_grace_counts_from_the_process_start_not_from_first_sight():
    # A process already running for an hour when the watchdog (or a one-shot check) first sees
    # it gets no grace: a dead accept path is judged at once.
    policy = AssessConfig(startup_grace_seconds=30)
    old = replace(observe(Outcome.REFUSED), process_age_seconds=3600.0)
    states, _ = run([old] * 3, policy)
    assert states == [State.STARTING, State.SUSPECT, State.ZOMBIE]


def test_startup_grace_ends_when_the_process_is_old_enough():
    policy = AssessConfig(startup_grace_seconds=30)
    ages = [25.0, 27.0, 29.0, 31.0, 33.0]
    observations = [replace(observe(Outcome.REFUSED), process_age_seconds=a) for a in ages]
    states, _ = run(observations, policy)
    assert states == [State.STARTING] * 3 + [State.SUSPECT, State.ZOMBIE]


def test_roles_unknown_means_every_listener_is_on_the_client_path():
    endpoint = Endpoint("127.0.0.1", 7000)
    target = Target("osd.9", incarnation=ME, listeners=(Listener(endpoint, 1),))
    obs = Observation(
        target,
        True,
        (BannerResult(endpoint, Outcome.REFUSED, 0.0),),
        HEALTHY_FDS,
        heartbeat_connections=2,
    )
    healthy = Observation(target, True, (BannerResult(endpoint, Outcome.OK, 0.0),), HEALTHY_FDS)
    states, _ = run([healthy, healthy, obs, obs])
    assert states[-1] is State.ZOMBIE


# --- properties -------------------------------------------------------------------------------

samples = st.lists(
    st.sampled_from([Outcome.OK, Outcome.REFUSED, Outcome.NO_BANNER, Outcome.LOCAL_ERROR]),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(samples)
def test_flapping_below_the_threshold_never_makes_a_zombie(outcomes):
    """No two failures in a row (local errors break nothing) means never zombie."""
    flapping, previous = [], Outcome.OK
    for drawn in outcomes:
        outcome = Outcome.OK if drawn.is_failure and previous.is_failure else drawn
        flapping.append(outcome)
        if outcome is not Outcome.LOCAL_ERROR:
            previous = outcome
    states, _ = run([observe(), observe()] + [observe(o) for o in flapping])
    assert State.ZOMBIE not in states


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=50), st.integers(min_value=0, max_value=20))
def test_a_sustained_failure_makes_exactly_one_zombie_transition(failures, healthy_before):
    _, transitions = run([observe()] * (healthy_before + 1) + [observe(Outcome.REFUSED)] * failures)
    assert sum(1 for t in transitions if t.new is State.ZOMBIE) == 1


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(Outcome)), st.sampled_from([None, 0, 3]), st.booleans()),
        max_size=40,
    )
)
def test_transitions_always_change_state_and_chain(events):
    observations = [observe(o, beats=b, alive=a) for o, b, a in events]
    _, transitions = run(observations)
    for transition in transitions:
        assert transition.old is not transition.new
    for earlier, later in itertools.pairwise(transitions):
        assert later.old is earlier.new


def test_every_state_is_reachable_and_can_be_left():
    """One scripted life that visits every state and leaves each one."""
    denied = FdSample(FdOutcome.ACCESS_DENIED, detail="denied")
    pressure = FdSample(FdOutcome.OK, open_fds=900, limit=1000)
    other = replace(TARGET, incarnation=Incarnation(pid=300, create_time=5.0))
    script = (
        [observe(), observe(), observe(fds=pressure), observe()]
        + [observe(ops=held(age)) for age in (1, 2, 3, 4)]
        + [observe()] * 2
        + [observe(Outcome.REFUSED)] * 2
        + [observe()] * 2
        + [observe(fds=denied)] * 2
        + [observe()] * 2
        + [observe(alive=False), observe(target=other), observe(target=other)]
    )
    _, transitions = run(script)
    entered = {t.new for t in transitions}
    left = {t.old for t in transitions if t.old is not None}
    assert entered == set(State)
    assert left == set(State)


UP = MapOsd("osd.3", up=True, in_=True)
DOWN = MapOsd("osd.3", up=False, in_=True)


def on_map(obs: Observation, osd: MapOsd | None) -> Observation:
    return replace(obs, map_osd=osd)


def test_with_the_map_a_zombie_is_one_the_monitors_still_call_up():
    failing = on_map(observe(Outcome.NO_BANNER), UP)
    states, transitions = run([on_map(observe(), UP), on_map(observe(), UP), failing, failing])
    assert states[-1] is State.ZOMBIE
    assert transitions[-1].cause.endswith("; the OSD map still says up")


def test_the_map_saying_down_makes_a_running_osd_down_not_zombie():
    failing = on_map(observe(Outcome.NO_BANNER), DOWN)
    states, transitions = run([observe(), observe(), failing, failing])
    assert states[-2:] == [State.DOWN, State.DOWN]
    assert transitions[-1].cause == "the process runs, but the OSD map says down"


def test_a_new_process_still_booting_stays_starting_while_the_map_says_down():
    policy = AssessConfig(startup_grace_seconds=30)
    booting = replace(on_map(observe(Outcome.REFUSED), DOWN), process_age_seconds=2.0)
    booted = replace(on_map(observe(), UP), process_age_seconds=4.0)
    states, _ = run([booting, booting, booted], policy)
    assert states == [State.STARTING, State.STARTING, State.HEALTHY]


def test_an_osd_up_in_the_map_with_no_process_here_is_down_with_that_cause():
    ghost = Observation(replace(TARGET, incarnation=None), alive=False, map_osd=UP)
    states, transitions = run([ghost])
    assert states == [State.DOWN]
    assert transitions[0].cause == "no ceph-osd process on this host; the OSD map still says up"


def test_death_soon_after_fd_pressure_is_blamed_on_fd_exhaustion_even_via_suspect():
    # What Ceph 16.2 does at the limit: fd pressure, one cycle of reset probes while it
    # aborts, then the process is gone.
    pressed = observe(fds=FdSample(FdOutcome.OK, open_fds=820, limit=1000))
    dying = observe(Outcome.RESET, beats=0, fds=FdSample(FdOutcome.OK, open_fds=700, limit=1000))
    states, transitions = run([observe(), pressed, dying, observe(alive=False)])
    assert states == [State.STARTING, State.FD_PRESSURE, State.SUSPECT, State.DOWN]
    assert transitions[-1].cause == (
        "process exited with fds at 70% of its limit (likely fd exhaustion)"
    )


def test_an_old_fd_pressure_is_not_blamed_for_a_later_death():
    pressed = observe(fds=FdSample(FdOutcome.OK, open_fds=820, limit=1000))
    calm = observe(fds=FdSample(FdOutcome.OK, open_fds=100, limit=1000))
    states, transitions = run([observe(), pressed, *[calm] * 40, observe(alive=False)])
    assert states[-1] is State.DOWN
    assert transitions[-1].cause == "process exited"


def test_ops_that_wait_while_none_finish_are_stalled_though_every_listener_answers():
    """Op threads stuck: banners fine, heartbeats fine, the oldest op ages, nothing finishes."""
    states, transitions = run([observe(), observe(), *(observe(ops=held(a)) for a in (1, 2, 3))])
    assert states == [State.STARTING, State.HEALTHY, State.HEALTHY, State.HEALTHY, State.STALLED]
    assert transitions[-1].cause == (
        "ops stuck: 1 in flight, the oldest 3.0s old (queued for pg), none finished for 3.0s, "
        "while every listener answers"
    )
    assert transitions[-1].at == 4.0  # 3 s after the op was first seen held


def test_a_busy_osd_whose_ops_wait_but_finish_is_never_stalled():
    """Recovery, a scrub, a saturated disk: ops wait seconds, but the counter keeps moving."""
    busy = [observe(ops=held(oldest=8.0, done=100 + i, count=40)) for i in range(30)]
    states, _ = run([observe(), *busy])
    assert set(states[1:]) == {State.HEALTHY}


def test_an_idle_osd_and_a_young_op_are_not_stalled():
    young = [observe(ops=held(oldest=0.5)) for _ in range(30)]  # one op, always new
    states, _ = run([observe(), *[observe()] * 10, *young])
    assert set(states[1:]) == {State.HEALTHY}


def test_a_stalled_osd_recovers_after_good_cycles_and_unseen_ops_say_nothing():
    stuck = [observe(ops=held(a)) for a in (1, 2, 3, 4)]
    blind = observe(ops=OpsSample(OpsOutcome.ACCESS_DENIED, detail="denied"))
    states, _ = run([observe(), *stuck, blind, observe(ops=held(0.1, done=101)), observe()])
    assert states[4:] == [State.STALLED, State.STALLED, State.STALLED, State.HEALTHY]


def test_a_dead_client_path_says_more_than_stuck_ops():
    stuck = [observe(Outcome.REFUSED, ops=held(a)) for a in (1, 2, 3, 4)]
    states, _ = run([observe(), *stuck])
    assert states[-1] is State.ZOMBIE


def test_serving_is_every_client_banner_and_no_op_waiting_too_long():
    assert serving(observe(), POLICY)
    assert serving(observe(ops=held(oldest=1.0)), POLICY)
    assert not serving(observe(ops=held(oldest=3.5)), POLICY)
    assert not serving(observe(Outcome.NO_BANNER), POLICY)
    assert serving(observe(ops=OpsSample(OpsOutcome.UNREACHABLE)), POLICY)  # no ops evidence
