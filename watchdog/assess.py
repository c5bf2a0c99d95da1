"""Assess stage: a pure per-OSD state machine with hysteresis; time is a parameter.

``step(previous, observation, policy, now)`` returns the new status and the transition, if
any. Nothing here does I/O or reads a clock, so tests drive it with plain numbers. Like a
Prometheus alert going inactive -> pending -> firing, a dead client accept path makes an OSD
``suspect`` first and a ``zombie`` only when it stays dead for ``zombie_after_failures``
cycles while the process lives and its heartbeats still flow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from watchdog.model import (
    HEARTBEAT_ROLES,
    BannerResult,
    FdOutcome,
    Observation,
    OpsSample,
    OsdStatus,
    Outcome,
    State,
    Transition,
)

if TYPE_CHECKING:
    from watchdog.config import AssessConfig

FD_BLAME_SECONDS = 30.0  # fd pressure this recent makes fd exhaustion the likely cause of death
RECOVERING = frozenset({State.SUSPECT, State.ZOMBIE, State.STALLED, State.UNOBSERVABLE})


@dataclass(frozen=True, slots=True)
class Evidence:
    """What one observation says about the client accept path and the rest of the OSD."""

    client: tuple[BannerResult, ...]
    failing: tuple[BannerResult, ...]
    blind: bool  # no usable client-side result at all
    heartbeats_alive: bool
    process_age_seconds: float | None
    map_up: bool | None  # what the monitors believe; None without a fresh map


def gather(observation: Observation) -> Evidence:
    """Reduce an observation to the facts the state machine decides on."""
    client = observation.client_banners
    usable = tuple(b for b in client if b.outcome is not Outcome.LOCAL_ERROR)
    others = [b for b in observation.banners if b not in client]
    heartbeat_ok = any(
        b.outcome is Outcome.OK for b in others if b.endpoint.role in HEARTBEAT_ROLES
    )
    connections = observation.heartbeat_connections
    # Counted peer connections are the real evidence; a heartbeat listener that still answers
    # stands in only where they cannot be counted (static targets on other hosts).
    alive = heartbeat_ok if connections is None else connections > 0
    return Evidence(
        client=client,
        failing=tuple(b for b in usable if b.outcome.is_failure),
        blind=not usable,
        heartbeats_alive=alive,
        process_age_seconds=observation.process_age_seconds,
        map_up=None if observation.map_osd is None else observation.map_osd.up,
    )


def serving(observation: Observation, policy: AssessConfig) -> bool:
    """True when one observation shows an OSD that serves.

    Every client listener sends its banner, and no op it holds has waited
    ``ops_stuck_after_seconds``. What a remediation's verify step waits for in a new process;
    the state machine asks the same over several cycles.
    """
    client = observation.client_banners
    answering = bool(client) and all(b.outcome is Outcome.OK for b in client)
    return answering and not _op_waited_too_long(observation.ops, policy)


def _op_waited_too_long(ops: OpsSample, policy: AssessConfig) -> bool:
    return (
        ops.observed and ops.in_flight > 0 and ops.oldest_seconds >= policy.ops_stuck_after_seconds
    )


def _ops_stuck(status: OsdStatus, ops: OpsSample, policy: AssessConfig, now: float) -> str:
    """A cause when the OSD holds ops that do not finish, else ''.

    Stuck: an op has waited ``ops_stuck_after_seconds`` and the OSD's finished-ops counter
    has not moved for that long. Busy (ops slow but finishing: recovery, a scrub, a saturated
    disk) moves the counter; idle holds no op.
    """
    if not _op_waited_too_long(ops, policy) or status.ops_progress_at is None:
        return ""
    still = now - status.ops_progress_at
    if still < policy.ops_stuck_after_seconds:
        return ""
    where = f" ({ops.oldest_stage})" if ops.oldest_stage else ""
    return (
        f"ops stuck: {ops.in_flight} in flight, the oldest {ops.oldest_seconds:.1f}s old{where}, "
        f"none finished for {still:.1f}s, while every listener answers"
    )


def _ops_progress(status: OsdStatus, ops: OpsSample, now: float) -> OsdStatus:
    """Remember when the OSD last had nothing stuck: it held no op, or it finished one."""
    if not ops.observed:
        return status
    finished = ops.completed is not None and ops.completed != status.ops_completed
    if finished or ops.in_flight == 0 or status.ops_progress_at is None:
        return replace(status, ops_completed=ops.completed, ops_progress_at=now)
    return replace(status, ops_completed=ops.completed)


def _describe(results: tuple[BannerResult, ...]) -> str:
    return ", ".join(f"{b.endpoint.role} {b.endpoint.address} {b.outcome}" for b in results)


def _fd_pressure(observation: Observation, policy: AssessConfig, current: State) -> str:
    """A cause string when the fd usage is high or heading for the limit, else ''."""
    fds = observation.fds
    ratio = fds.ratio
    if ratio is None:
        return ""
    threshold = (
        policy.fd_pressure_clear_ratio if current is State.FD_PRESSURE else policy.fd_pressure_ratio
    )
    eta = fds.seconds_to_exhaustion
    usage = f"{fds.open_fds}/{fds.limit} fds open ({ratio:.0%})"
    if ratio >= threshold:
        return usage
    soon = eta is not None and eta <= policy.fd_exhaustion_horizon_seconds
    if soon and ratio >= policy.fd_trend_min_ratio:
        return f"{usage}, limit reached in ~{eta:.0f}s at the current rate"
    return ""


def _blind_reason(observation: Observation, evidence: Evidence) -> str:
    if observation.target.blind_reason:
        return observation.target.blind_reason
    if observation.fds.outcome is FdOutcome.ACCESS_DENIED:
        return observation.fds.detail or "access denied reading the OSD's fds"
    if evidence.blind and evidence.client:
        return f"watchdog's own probes failed: {evidence.client[0].detail}"
    if evidence.blind:
        return "no listeners found for this OSD"
    return ""


def _move(
    status: OsdStatus, new: State, cause: str, now: float, daemon: str
) -> tuple[OsdStatus, Transition | None]:
    if new is status.state:
        return replace(status, cause=cause), None
    moved = replace(status, state=new, since=now, cause=cause)
    return moved, Transition(daemon, status.state, new, now, cause)


def _when_gone(
    prev: OsdStatus | None, observation: Observation, now: float
) -> tuple[OsdStatus, Transition | None]:
    daemon = observation.target.daemon
    ratio = prev.last_fd_ratio if prev else None
    osd = observation.map_osd
    cause = "process exited" if prev is not None else "no ceph-osd process on this host"
    # Under fd pressure in the last few cycles: whatever state the dying moments showed
    # (a reset, a refused probe), running out of fds is the likely cause.
    pressed_at = prev.fd_pressure_at if prev is not None else None
    recent = pressed_at is not None and now - pressed_at <= FD_BLAME_SECONDS
    if ratio is not None and (ratio >= 0.9 or recent):
        cause += f" with fds at {ratio:.0%} of its limit (likely fd exhaustion)"
    if osd is not None:
        cause += "; the OSD map still says up" if osd.up else "; down in the OSD map"
    if prev is None:
        return OsdStatus(State.DOWN, now, cause), Transition(daemon, None, State.DOWN, now, cause)
    return _move(replace(prev, failing_cycles=0, ok_cycles=0), State.DOWN, cause, now, daemon)


def step(
    prev: OsdStatus | None, observation: Observation, policy: AssessConfig, now: float
) -> tuple[OsdStatus, Transition | None]:
    """Advance one OSD's state by one observation."""
    target = observation.target
    daemon = target.daemon
    if not observation.alive:
        return _when_gone(prev, observation, now)
    if prev is None or prev.incarnation != target.incarnation:
        # A new process (or the first sight of one) starts over; judged from the next cycle.
        cause = (
            "first seen"
            if target.incarnation is None
            else f"new process pid {target.incarnation.pid}"
        )
        fresh = OsdStatus(State.STARTING, now, cause, incarnation=target.incarnation)
        old = None if prev is None else prev.state
        return fresh, Transition(daemon, old, State.STARTING, now, cause)
    return _judge(prev, observation, policy, now)


def _judge(
    prev: OsdStatus, observation: Observation, policy: AssessConfig, now: float
) -> tuple[OsdStatus, Transition | None]:
    daemon = observation.target.daemon
    evidence = gather(observation)
    ratio = observation.fds.ratio
    status = replace(prev, last_fd_ratio=ratio or prev.last_fd_ratio)
    if prev.state is State.FD_PRESSURE or (ratio is not None and ratio >= policy.fd_pressure_ratio):
        status = replace(status, fd_pressure_at=now)
    blind = _blind_reason(observation, evidence)
    if blind:
        status = replace(status, blind_cycles=status.blind_cycles + 1)
        if status.blind_cycles >= policy.unobservable_after_cycles:
            return _move(status, State.UNOBSERVABLE, blind, now, daemon)
        return replace(status, cause=f"{status.cause} (no evidence this cycle: {blind})"), None
    status = replace(status, blind_cycles=0)
    stuck = _ops_stuck(status, observation.ops, policy, now)
    status = _ops_progress(status, observation.ops, now)
    if evidence.map_up is False:
        return _marked_down(status, evidence, policy, now, daemon)
    if evidence.failing:
        return _failing(status, evidence, policy, now, daemon)
    return _serving_clients(status, observation, stuck, policy, now)


def _serving_clients(
    status: OsdStatus, observation: Observation, stuck: str, policy: AssessConfig, now: float
) -> tuple[OsdStatus, Transition | None]:
    """The client path answers: stalled if its ops are stuck, else as _answering judges."""
    daemon = observation.target.daemon
    starting = status.state is State.STARTING and _in_grace(
        status, gather(observation), policy, now
    )
    if stuck and not starting:
        return _move(replace(status, ok_cycles=0), State.STALLED, stuck, now, daemon)
    if status.state is State.STALLED and not observation.ops.observed:
        # Only the ops can clear stuck ops: a cycle that could not see them is no news.
        return status, None
    return _answering(status, observation, policy, now)


def _answering(
    status: OsdStatus, observation: Observation, policy: AssessConfig, now: float
) -> tuple[OsdStatus, Transition | None]:
    """Every client listener answered: healthy, under fd pressure, or still recovering."""
    daemon = observation.target.daemon
    status = replace(status, failing_cycles=0, ok_cycles=status.ok_cycles + 1)
    if status.state in RECOVERING and status.ok_cycles < policy.recover_after_successes:
        return replace(status, cause=f"recovering: {status.ok_cycles} good cycle(s)"), None
    if observation.fds.ratio is None and status.state is State.FD_PRESSURE:
        # No fd count this cycle (a process dumping core, say): no news is not good news.
        return status, None
    pressure = _fd_pressure(observation, policy, status.state)
    if pressure:
        return _move(status, State.FD_PRESSURE, pressure, now, daemon)
    return _move(status, State.HEALTHY, "every listener sends its banner", now, daemon)


def _marked_down(
    status: OsdStatus, evidence: Evidence, policy: AssessConfig, now: float, daemon: str
) -> tuple[OsdStatus, Transition | None]:
    """The monitors say down while the process runs: down, unless it is still booting."""
    if status.state is State.STARTING and _in_grace(status, evidence, policy, now):
        return replace(status, cause="booting: not up in the OSD map yet"), None
    return _move(status, State.DOWN, "the process runs, but the OSD map says down", now, daemon)


def _in_grace(status: OsdStatus, evidence: Evidence, policy: AssessConfig, now: float) -> bool:
    age = evidence.process_age_seconds
    if age is None:  # no process to ask (static target): count from the first sight
        age = now - status.since
    return age < policy.startup_grace_seconds


def _failing(
    status: OsdStatus, evidence: Evidence, policy: AssessConfig, now: float, daemon: str
) -> tuple[OsdStatus, Transition | None]:
    if status.state is State.STARTING and _in_grace(status, evidence, policy, now):
        # Not counted: a slow start must not bank failures that fire the moment grace ends.
        still = f"starting; client accept path not answering yet: {_describe(evidence.failing)}"
        return replace(status, cause=still, ok_cycles=0), None
    status = replace(status, failing_cycles=status.failing_cycles + 1, ok_cycles=0)
    cycles = status.failing_cycles
    what = f"client accept path dead for {cycles} cycle(s): {_describe(evidence.failing)}"
    if cycles >= policy.zombie_after_failures and evidence.heartbeats_alive:
        cause = f"{what}; the process lives and its heartbeats still flow"
        if evidence.map_up is None:
            cause += " (no fresh OSD map: judged from local evidence)"
        else:
            cause += "; the OSD map still says up"
        return _move(status, State.ZOMBIE, cause, now, daemon)
    if cycles >= policy.suspect_after_failures or status.state is State.ZOMBIE:
        if not evidence.heartbeats_alive:
            what += "; no heartbeat connections either (the monitors should mark it down)"
        return _move(status, State.SUSPECT, what, now, daemon)
    return replace(status, cause=what), None
