"""Act stage, guards: every reason not to act, checked before anything touches the cluster.

Pure functions over what the loop already knows; the first guard that refuses names itself,
so logs, metrics and the audit file say exactly why nothing was done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.model import State

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watchdog.config import ActConfig
    from watchdog.model import ClusterMap, OsdReport

FAILING = frozenset({State.SUSPECT, State.ZOMBIE})
MAP_CHANGING = frozenset({"fence", "markdown"})  # steps that mark the OSD down


@dataclass(frozen=True, slots=True)
class History:
    """What this watchdog did lately (wall-clock times)."""

    last_action: dict[str, float]  # per OSD
    actions: Sequence[float]  # every remediation started, host-wide
    markdowns: dict[str, Sequence[float]]  # per OSD


@dataclass(frozen=True, slots=True)
class Situation:
    """The facts the guards look at for one decision."""

    daemon: str
    now: float  # wall clock
    reports: Sequence[OsdReport]  # every OSD of this host in the latest snapshot
    cluster_map: ClusterMap | None
    canary_ok: bool | None  # None: no canary configured


def refuse(situation: Situation, history: History, config: ActConfig) -> str:
    """The name and reason of the first guard that refuses, or '' to go ahead."""
    for guard in (_cooldown, _rate, _mass_failure, _canary, _flags, _markdown_budget):
        reason = guard(situation, history, config)
        if reason:
            return reason
    return ""


def _cooldown(situation: Situation, history: History, config: ActConfig) -> str:
    last = history.last_action.get(situation.daemon)
    if last is not None and situation.now - last < config.cooldown_seconds:
        ago = situation.now - last
        return f"cooldown: acted on {situation.daemon} {ago:.0f}s ago"
    return ""


def _rate(situation: Situation, history: History, config: ActConfig) -> str:
    recent = [t for t in history.actions if situation.now - t < 3600]
    if len(recent) >= config.max_actions_per_hour:
        return f"rate_limit: {len(recent)} remediation(s) in the last hour on this host"
    return ""


def _mass_failure(situation: Situation, _: History, config: ActConfig) -> str:
    local = [r for r in situation.reports if r.observation.target.incarnation is not None]
    failing = [r for r in local if r.status.state in FAILING]
    if len(local) > 1 and len(failing) / len(local) > config.mass_failure_share:
        # Many OSDs failing at once looks like our own problem or the network's, not theirs.
        return f"mass_failure: {len(failing)} of {len(local)} OSDs on this host fail at once"
    return ""


def _canary(situation: Situation, _: History, __: ActConfig) -> str:
    if situation.canary_ok is False:
        return "canary: the watchdog's own canary listener does not answer its probe"
    return ""


def _flags(situation: Situation, _: History, config: ActConfig) -> str:
    if not MAP_CHANGING.intersection(config.steps):
        return ""
    cluster_map = situation.cluster_map
    osd = cluster_map.osds.get(situation.daemon) if cluster_map else None
    problem = ""
    if cluster_map is None or osd is None:
        problem = "no_map: no fresh OSD map with this OSD, so its flags cannot be checked"
    elif "nodown" in cluster_map.flags:
        problem = "nodown: the cluster flag nodown is set"
    elif osd.nodown:
        problem = f"nodown: {situation.daemon} has the nodown flag"
    elif not osd.up:
        problem = f"already_down: the OSD map already shows {situation.daemon} down"
    return problem


def _markdown_budget(situation: Situation, history: History, config: ActConfig) -> str:
    if not MAP_CHANGING.intersection(config.steps):
        return ""
    window = [
        t
        for t in history.markdowns.get(situation.daemon, ())
        if situation.now - t < config.markdown_period_seconds
    ]
    if len(window) + 1 >= config.markdown_limit:
        # One more would make Ceph shut the OSD down with exit 0, which systemd won't restart.
        return f"markdown_limit: {len(window)} mark-down(s) of {situation.daemon} already"
    return ""
