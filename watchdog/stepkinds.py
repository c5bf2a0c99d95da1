"""The remediation steps, each described once: what it does to the OSD and what it needs.

Config validation, the guards, the journal of fences and the guard history all read this
table; ``act/steps.py`` says how each is described and built. A new step is one row here
and one entry there (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(frozen=True, slots=True)
class StepKind:
    """What one step is."""

    name: str
    marks_down: bool = False  # marks the OSD down in the map: Ceph counts these mark-downs
    stops: bool = False  # the OSD serves nothing for a while: ok-to-stop and the canary first
    fences: bool = False  # sets noup: journaled before it runs, resumed after our restart
    unfences: bool = False  # lifts the noup a fence set: the journal entry goes
    after: str | None = None  # only after this step (verify needs a restart to verify)
    needs: str | None = None  # the [act] key it cannot run without


KINDS: dict[str, StepKind] = {
    kind.name: kind
    for kind in (
        StepKind("fence", marks_down=True, stops=True, fences=True),
        StepKind("markdown", marks_down=True, stops=True),
        StepKind("restart", stops=True),
        StepKind("verify", after="restart"),
        StepKind("unfence", unfences=True, after="fence"),
        StepKind("exec", needs="exec_command"),
        StepKind("webhook", needs="webhook_url"),
    )
}
FENCE = next(k.name for k in KINDS.values() if k.fences)
UNFENCE = next(k.name for k in KINDS.values() if k.unfences)


def marks_down(steps: Iterable[str]) -> bool:
    """Any of the steps marks the OSD down."""
    return any(KINDS[s].marks_down for s in steps if s in KINDS)


def stops(steps: Iterable[str]) -> bool:
    """Any of the steps stops the OSD serving."""
    return any(KINDS[s].stops for s in steps if s in KINDS)


def fences(steps: Iterable[str]) -> bool:
    """Any of the steps sets noup."""
    return any(KINDS[s].fences for s in steps if s in KINDS)
