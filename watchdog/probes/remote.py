"""Probe stage, second vantage point: other hosts' OSDs, as this host reaches them.

Discovery picks the sample (``discover.mapped.remote_sample``: each OSD by a few other hosts,
the same choice on every host). Their public addresses are probed like this host's own, and
an OSD counts as reached when any of them sends its banner; the watchdog's own failures
(local_error) are no evidence and leave the OSD out. The mgr module puts the vantage points
together: an OSD its own host sees answer but others cannot reach is OSD_UNREACHABLE.

Probed at most once per ``every`` seconds (the report interval, as the module wants them):
in between, the last results stand and the prober costs nothing.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from watchdog.model import Outcome, RemoteResult

if TYPE_CHECKING:
    from collections.abc import Sequence

    from watchdog.model import Target
    from watchdog.probes.tcp import BannerProbe


class RemoteProbe:
    """Other hosts' OSDs' public addresses, probed once per ``every`` seconds."""

    name = "remote"

    def __init__(self, banner: BannerProbe, every: float) -> None:
        self.banner = banner
        self.every = every
        self._last: dict[str, RemoteResult] = {}
        self._at: float | None = None  # monotonic time of the last round

    def run(self, targets: Sequence[Target], *, timeout: float) -> dict[str, RemoteResult]:
        """The latest result for each OSD of the sample (targets: their public endpoints)."""
        now = time.monotonic()
        if self._at is not None and now - self._at < self.every:
            wanted = {t.daemon for t in targets}
            return {d: r for d, r in self._last.items() if d in wanted}
        self._at = now
        found: dict[str, RemoteResult] = {}
        for daemon, results in self.banner.run(targets, timeout=timeout).items():
            reached = any(r.outcome is Outcome.OK for r in results)
            failed = [
                f"{r.endpoint.address} {r.outcome}"
                for r in results
                if r.outcome not in {Outcome.OK, Outcome.LOCAL_ERROR}
            ]
            if reached or failed:
                found[daemon] = RemoteResult(daemon, reached, ", ".join(failed) or "banner")
        self._last = found
        return found
