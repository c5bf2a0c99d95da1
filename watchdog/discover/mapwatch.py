"""Discover stage, map watcher: refreshes the cluster view on its own thread and schedule.

The probe loop must never wait for a monitor: it reads the latest ``MapStatus`` and moves on.
The watcher refreshes every ``refresh_seconds``, and at once when the loop calls ``wake()``
(an OSD just turned suspect, so confirmation should not wait for the next slow refresh).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from watchdog.discover.cluster import parse_osd_dump
from watchdog.errors import MapParseError, MonitorError
from watchdog.model import ClusterMap, MapStatus
from watchdog.monitor import MonClient, make_client

if TYPE_CHECKING:
    from watchdog.config import ClusterConfig

log = logging.getLogger(__name__)


def fetch_map(client: MonClient, timeout: float) -> ClusterMap:
    """Ask for ``osd dump`` and ``osd metadata`` and combine them; raises MonitorError."""
    dump = client.command("osd dump", timeout)
    metadata = client.command("osd metadata", timeout)
    try:
        return parse_osd_dump(dump, metadata)
    except MapParseError as exc:
        raise MonitorError(str(exc)) from exc


class MapWatcher:
    """Owns the monitor client and the refresh thread."""

    def __init__(self, client: MonClient, config: ClusterConfig) -> None:
        self.client = client
        self.config = config
        self._status = MapStatus(source=client.name)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._logged_error = ""

    @classmethod
    def from_config(cls, config: ClusterConfig) -> MapWatcher | None:
        """The configured watcher; None without a cluster view (none, or no client)."""
        try:
            client = make_client(config)
        except MonitorError as exc:
            log.warning("no cluster view: %s; judging from local evidence only", exc)
            return None
        return None if client is None else cls(client, config)

    def status(self) -> MapStatus:
        """The latest status (read from the loop's thread)."""
        return self._status

    def wake(self) -> None:
        """Refresh now instead of at the next scheduled time."""
        self._wake.set()

    def start(self) -> None:
        """Start refreshing in the background."""
        self._thread = threading.Thread(target=self._run, name="map-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and close the client."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.config.timeout_seconds + 1)
        self.client.close()

    def refresh(self) -> MapStatus:
        """One attempt, on the caller's thread; logs a failure once until it changes."""
        started = time.monotonic()
        status = replace(self._status, attempts=self._status.attempts + 1)
        try:
            cluster_map = fetch_map(self.client, self.config.timeout_seconds)
        except MonitorError as exc:
            took = time.monotonic() - started
            status = replace(
                status,
                last_ok=False,
                last_error=str(exc),
                last_seconds=took,
                failures=status.failures + 1,
            )
            if str(exc) != self._logged_error:
                log.warning("cannot read the OSD map (%s); judging from local evidence", exc)
                self._logged_error = str(exc)
        else:
            ended = time.monotonic()
            status = replace(
                status,
                cluster_map=cluster_map,
                fetched_at=ended,
                last_ok=True,
                last_error="",
                last_seconds=ended - started,
            )
            if self._logged_error:
                log.info("OSD map readable again (epoch %d)", cluster_map.epoch)
                self._logged_error = ""
        self._status = status
        return status

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._wake.wait(self.config.refresh_seconds)
            self._wake.clear()
