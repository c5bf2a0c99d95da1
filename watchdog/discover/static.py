"""Discover stage, static: OSDs named in the config that this host cannot see as processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.model import Listener, Target

if TYPE_CHECKING:
    from watchdog.config import StaticTarget


def static_targets(configured: list[StaticTarget]) -> list[Target]:
    """One target per configured OSD; there is no process, so no incarnation."""
    return [
        Target(
            daemon=t.daemon,
            cluster=t.cluster,
            listeners=tuple(Listener(e.to_endpoint()) for e in t.endpoints),
        )
        for t in configured
    ]
