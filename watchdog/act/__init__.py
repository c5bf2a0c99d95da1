"""Act stage: decide what to do about a transition, behind the dry-run guard.

This version only plans and records (dry-run): it logs and counts the remediation it would
run. The fence (``ceph osd add-noup`` + ``ceph osd down``), the restart and the unfence are
planned in that order because a bare mark-down does not help a zombie (design.md section 3).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from watchdog.model import PlannedAction, State, Transition

if TYPE_CHECKING:
    from collections.abc import Iterable

    from watchdog.config import ActConfig

log = logging.getLogger(__name__)

REMEDIATION = "fence_restart_unfence"


def describe_remediation(daemon: str, unit_template: str) -> str:
    """The exact steps of the default remediation for one OSD."""
    osd_id = daemon.removeprefix("osd.")
    unit = unit_template.format(id=osd_id)
    return (
        f"fence {daemon} (ceph osd add-noup {daemon}; ceph osd down {osd_id}), "
        f"restart {unit}, then unfence (ceph osd rm-noup {daemon}) once every listener answers"
    )


def plan(transitions: Iterable[Transition], config: ActConfig) -> list[PlannedAction]:
    """One planned action per transition into a configured state; logged at INFO."""
    planned = []
    for transition in transitions:
        if transition.new not in {State(s) for s in config.on_states}:
            continue
        action = PlannedAction(
            daemon=transition.daemon,
            action=REMEDIATION,
            dry_run=config.dry_run,
            reason=describe_remediation(transition.daemon, config.restart_unit_template),
        )
        log.info("dry-run: would %s (because: %s)", action.reason, transition.cause)
        planned.append(action)
    return planned
