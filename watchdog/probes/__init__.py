"""Probe stage: one contract for every prober, and the explicit list of them.

A probe looks at a set of targets once, under the caller's timeout, and returns one result per
daemon. Expected failures (refused, access denied, ...) are data inside those results; a probe
that raises has failed as a whole, which ``run_probe`` records without hiding the other probes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Protocol, TypeVar

from watchdog.model import ProbeRun

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from watchdog.model import Target

log = logging.getLogger(__name__)

R_co = TypeVar("R_co", covariant=True)
R = TypeVar("R")


class Probe(Protocol[R_co]):
    """The contract: look once at ``targets`` within ``timeout`` seconds."""

    name: str

    def run(self, targets: Sequence[Target], *, timeout: float) -> Mapping[str, R_co]:
        """Results keyed by daemon name; targets it cannot judge are simply absent."""
        ...


def run_probe(
    probe: Probe[R], targets: Sequence[Target], timeout: float
) -> tuple[Mapping[str, R], ProbeRun]:
    """Run one probe; an exception is recorded as that probe's failure, not raised."""
    started = time.monotonic()
    try:
        results = probe.run(targets, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - one broken probe must not hide the others
        log.warning("probe %s failed: %s", probe.name, exc)
        return {}, ProbeRun(probe.name, time.monotonic() - started, f"{type(exc).__name__}: {exc}")
    return results, ProbeRun(probe.name, time.monotonic() - started)
