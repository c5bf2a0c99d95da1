"""Export stage, exposition: the /metrics body, rendered at most once per published cycle.

Rendering costs more than a whole probe cycle at 1,000 endpoints (bench/RESULTS.md), and
every scraper (two Prometheus replicas, a federation, a curl) used to pay it again for the
same snapshot. Now the first scrape after a cycle renders it, plain and gzipped, and every
other scrape of that cycle is served the same bytes. Rendering lazily rather than at each
publish means a snapshot nobody scrapes is never rendered: with a 1 s cycle and a 15 s scrape
interval that is most of them.
"""

from __future__ import annotations

import gzip
import threading
from typing import TYPE_CHECKING

from prometheus_client import generate_latest

if TYPE_CHECKING:
    from collections.abc import Callable

    from prometheus_client import CollectorRegistry

    from watchdog.model import Snapshot


class Exposition:
    """Bytes for /metrics, kept per snapshot."""

    def __init__(self, registry: CollectorRegistry, latest: Callable[[], Snapshot | None]) -> None:
        self.registry = registry
        self.latest = latest
        self.renders = 0  # how often it rendered, for tests and benchmarks
        self._lock = threading.Lock()  # concurrent scrapes of a new cycle render it once
        self._for: Snapshot | None = None
        self._plain = b""
        self._gzipped = b""

    def body(self, *, gzipped: bool) -> bytes:
        """The exposition of the latest snapshot, rendered if it is new."""
        with self._lock:
            snapshot = self.latest()
            if snapshot is None or snapshot is not self._for:
                # Rendered from this snapshot: the collector reads the same latest().
                self._plain = generate_latest(self.registry)
                self._gzipped = gzip.compress(self._plain, compresslevel=6)
                self._for = snapshot
                self.renders += 1
            return self._gzipped if gzipped else self._plain
