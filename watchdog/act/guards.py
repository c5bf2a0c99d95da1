"""Act stage, guards: every reason not to act, checked before anything touches the cluster.

Pure functions in two groups. The host guards judge what this watchdog knows: this cycle's
states, its own history (persisted, so a restart does not reset it) and its canary. The map
guards judge the monitors' answer read immediately before the first step that changes the
cluster, never a cached map: flags set a second ago count. The first guard that refuses
names itself, so logs, metrics and the audit file say exactly why nothing was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.model import State
from watchdog.stepkinds import fences, marks_down, stops

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from watchdog.config import ActConfig
    from watchdog.model import ClusterMap, MapOsd, OsdReport

FAILING = frozenset({State.SUSPECT, State.ZOMBIE})
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Refusal:
    """Which guard said no, and why, in words for the log and the audit."""

    guard: str
    reason: str

    def __str__(self) -> str:
        return f"{self.guard}: {self.reason}"


@dataclass(frozen=True, slots=True)
class History:
    """What this watchdog did lately (wall-clock times), as rebuilt from ``state_dir``."""

    last_action: dict[str, float]  # per OSD
    actions: Sequence[float]  # every remediation started, host-wide
    markdowns: dict[str, Sequence[float]]  # per OSD
    unknown_before: float | None = None  # the persisted history was lost at this time


@dataclass(frozen=True, slots=True)
class Situation:
    """The host's facts for one decision."""

    daemon: str
    now: float  # wall clock
    reports: Sequence[OsdReport]  # every OSD of this host, this cycle
    busy: Collection[str]  # OSDs this watchdog has fenced or is remediating
    canary_ok: bool | None  # None: no canary configured


@dataclass(frozen=True, slots=True)
class MapFacts:
    """The monitors' word of now, for one decision."""

    daemon: str
    cluster_map: ClusterMap | None  # None: it could not be read just now
    error: str  # why it could not be read
    hostnames: Collection[str]  # the names this host has in ``osd metadata``
    ours: Collection[str]  # OSDs whose noup this watchdog set


def longest_window(config: ActConfig) -> float:
    """How far back the guards look: what a lost history must be assumed to hide."""
    return max(config.cooldown_seconds, HOUR, config.markdown_period_seconds)


def refuse_on_host(situation: Situation, history: History, config: ActConfig) -> Refusal | None:
    """The first host guard that refuses, or None."""
    guards: tuple[Callable[[Situation, History, ActConfig], Refusal | None], ...] = (
        _history_lost,
        _cooldown,
        _rate,
        _markdown_budget,
        _mass_failure,
        _canary,
    )
    for guard in guards:
        refusal = guard(situation, history, config)
        if refusal is not None:
            return refusal
    return None


def _history_lost(situation: Situation, history: History, config: ActConfig) -> Refusal | None:
    lost = history.unknown_before
    if lost is not None and situation.now - lost < longest_window(config):
        # Unknown is not "nothing happened": the budget against Ceph's own mark-down limit
        # may already be spent.
        left = longest_window(config) - (situation.now - lost)
        return Refusal(
            "history_lost",
            f"the persisted guard history was unreadable; acting again in {left:.0f}s",
        )
    return None


def _cooldown(situation: Situation, history: History, config: ActConfig) -> Refusal | None:
    last = history.last_action.get(situation.daemon)
    if last is not None and situation.now - last < config.cooldown_seconds:
        ago = situation.now - last
        return Refusal("cooldown", f"acted on {situation.daemon} {ago:.0f}s ago")
    return None


def _rate(situation: Situation, history: History, config: ActConfig) -> Refusal | None:
    recent = [t for t in history.actions if situation.now - t < HOUR]
    if len(recent) >= config.max_actions_per_hour:
        return Refusal("rate_limit", f"{len(recent)} remediation(s) in the last hour on this host")
    return None


def _markdown_budget(situation: Situation, history: History, config: ActConfig) -> Refusal | None:
    if not marks_down(config.steps):
        return None
    window = [
        t
        for t in history.markdowns.get(situation.daemon, ())
        if situation.now - t < config.markdown_period_seconds
    ]
    if len(window) + 1 >= config.markdown_limit:
        # One more would make Ceph shut the OSD down with exit 0, which systemd won't restart.
        return Refusal(
            "markdown_limit", f"{len(window)} mark-down(s) of {situation.daemon} already"
        )
    return None


def _mass_failure(situation: Situation, _: History, config: ActConfig) -> Refusal | None:
    local = [r for r in situation.reports if r.observation.target.incarnation is not None]
    names = {r.observation.target.daemon for r in local} | set(situation.busy)
    # One we fenced or are restarting is down or starting now, yet it counts: it failed.
    failing = {
        r.observation.target.daemon for r in situation.reports if r.status.state in FAILING
    } | set(situation.busy)
    if len(names) > 1 and len(failing) / len(names) > config.mass_failure_share:
        # Many OSDs failing at once looks like our own problem or the network's, not theirs.
        return Refusal(
            "mass_failure", f"{len(failing)} of {len(names)} OSDs on this host fail at once"
        )
    return None


def _canary(situation: Situation, _: History, __: ActConfig) -> Refusal | None:
    if situation.canary_ok is False:
        return Refusal("canary", "the watchdog's own canary listener does not answer its probe")
    return None


def refuse_on_map(facts: MapFacts, config: ActConfig) -> Refusal | None:
    """The first map guard that refuses, on the map just read; None to go ahead."""
    if not stops(config.steps):
        return None
    if facts.cluster_map is None:
        return Refusal("no_map", f"cannot read the OSD map from the monitors now: {facts.error}")
    osd = facts.cluster_map.osds.get(facts.daemon)
    if osd is None:
        return Refusal("no_map", f"the OSD map just read has no {facts.daemon}")
    if osd.hostname is not None and osd.hostname not in facts.hostnames:
        return Refusal("not_here", f"the map places {facts.daemon} on {osd.hostname}, not here")
    if not marks_down(config.steps):
        return None
    return _flags(facts, facts.cluster_map, osd) or _cluster_fences(
        facts, facts.cluster_map, config
    )


def _flags(facts: MapFacts, cluster_map: ClusterMap, osd: MapOsd) -> Refusal | None:
    """An operator's flags win: the watchdog never fights them."""
    daemon = facts.daemon
    found = [
        ("nodown" in cluster_map.flags, "nodown", "the cluster flag nodown is set"),
        (osd.nodown, "nodown", f"{daemon} has the nodown flag"),
        ("noup" in cluster_map.flags, "noup", "the cluster flag noup is set: OSDs are held down"),
        (
            osd.noup and daemon not in facts.ours,
            "noup",
            f"{daemon} already has noup, set by someone else",
        ),
        (not osd.up, "already_down", f"the OSD map already shows {daemon} down"),
    ]
    for refused, guard, reason in found:
        if refused:
            return Refusal(guard, reason)
    return None


def _cluster_fences(facts: MapFacts, cluster_map: ClusterMap, config: ActConfig) -> Refusal | None:
    if not fences(config.steps):
        return None
    held = sorted(d for d, osd in cluster_map.osds.items() if osd.noup and d != facts.daemon)
    if len(held) >= config.max_fenced_in_cluster:
        # Other hosts' watchdogs (or operators) already hold OSDs down: a network event seen
        # by many hosts must not fence half the cluster, one host at a time.
        shown = ", ".join(held[:5]) + (" ..." if len(held) > 5 else "")
        return Refusal(
            "cluster_fences",
            f"{len(held)} OSD(s) in the cluster already carry noup ({shown}); "
            f"the limit is {config.max_fenced_in_cluster}",
        )
    return None


def refuse_on_ok_to_stop(daemon: str, ok: bool | None, detail: str) -> Refusal | None:
    """Ceph's own answer to "may this OSD stop?" (None: it could not be asked)."""
    if ok is None:
        return Refusal("ok_to_stop", f"no answer whether {daemon} may stop: {detail}")
    if not ok:
        # The zombie holds the last active copy of some PGs: fencing or restarting it would
        # turn "new clients hang" into "every client of those PGs stops", and a failed restart
        # would leave them inactive. That is a decision for a person (README, Remediation).
        return Refusal("ok_to_stop", f"stopping {daemon} would make PGs inactive: {detail}")
    return None
