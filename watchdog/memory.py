"""Assess stage, memory: what the loop carries from one cycle to the next, per OSD.

The state machine (``assess.step``) is pure; this object holds its inputs from the last
cycle and counts what it decided. It lives as long as the process: a reload swaps the
settings it is given, never what it remembers.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from watchdog.assess import step
from watchdog.model import OsdReport, State

if TYPE_CHECKING:
    from collections.abc import Iterable

    from watchdog.config import AssessConfig
    from watchdog.model import Observation, OsdStatus, Target, Transition

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    observation: Observation
    status: OsdStatus
    transitions: Counter[State] = field(default_factory=Counter)
    restarts: int = 0


class OsdMemory:
    """Each OSD's last observation and status, and how often it changed state."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def known(self) -> dict[str, Target]:
        """Every OSD ever observed, as last seen (discovery reports the vanished ones)."""
        return {daemon: e.observation.target for daemon, e in self._entries.items()}

    def record(
        self, observations: Iterable[Observation], policy: AssessConfig, now: float
    ) -> list[Transition]:
        """Step each OSD's state machine on its observation; returns what changed."""
        transitions = []
        for observation in observations:
            daemon = observation.target.daemon
            entry = self._entries.get(daemon)
            status, transition = step(entry.status if entry else None, observation, policy, now)
            if entry is None:
                entry = self._entries[daemon] = _Entry(observation, status)
            entry.status = status
            entry.observation = observation
            if transition is None:
                continue
            transitions.append(transition)
            entry.transitions[transition.new] += 1
            if transition.new is State.STARTING and transition.old is not None:
                entry.restarts += 1
            log.info(
                "%s: %s -> %s: %s",
                daemon,
                transition.old or "(new)",
                transition.new,
                transition.cause,
            )
        return transitions

    def reports(self) -> tuple[OsdReport, ...]:
        """One report per OSD, in OSD number order (osd.2 before osd.10)."""
        return tuple(
            OsdReport(
                observation=e.observation,
                status=e.status,
                transitions=dict(e.transitions),
                restarts=e.restarts,
            )
            for _, e in sorted(self._entries.items(), key=lambda item: _osd_order(item[0]))
        )


def _osd_order(daemon: str) -> tuple[int, str]:
    number = daemon.removeprefix("osd.")
    return (int(number), daemon) if number.isdigit() else (1 << 30, daemon)
