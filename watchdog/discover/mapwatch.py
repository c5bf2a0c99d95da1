"""Discover stage, map watcher: refreshes the cluster view on its own thread and schedule.

The probe loop must never wait for a monitor: it reads the latest ``MapStatus`` and moves on.
The watcher refreshes every ``refresh_seconds``, and at once when the loop calls ``wake()``
(an OSD just turned suspect, so confirmation should not wait for the next slow refresh).
A reload reconfigures it in place: the map it holds and its counters stay, and a new
monitor client (new cluster settings) is swapped in by the watcher's own thread, between
two requests, so no request in flight loses its client.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import fields, replace
from typing import TYPE_CHECKING

from watchdog.discover.cluster import parse_osd_dump
from watchdog.errors import MapParseError, MonitorError
from watchdog.model import ClusterMap, MapStatus
from watchdog.monitor import MonClient, client_or_none
from watchdog.worker import Worker

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


class MapWatcher(Worker):
    """Owns the monitor client and the refresh thread."""

    name = "map-watcher"

    def __init__(self, client: MonClient, config: ClusterConfig) -> None:
        super().__init__()
        self.client = client
        self.config = config
        self._status = MapStatus(source=client.name)
        self._next: MonClient | None = None  # from a reload, swapped in by the next refresh
        self._swap = threading.Lock()
        self._logged_error = ""

    @classmethod
    def from_config(cls, config: ClusterConfig) -> MapWatcher | None:
        """The configured watcher; None without a cluster view (none, or no client)."""
        client = _client(config)
        return None if client is None else cls(client, config)

    def reconfigure(self, config: ClusterConfig) -> bool:
        """New settings, in place; False when they give no cluster view (stop this watcher).

        The same cluster settings keep the client; others make a new one, used from the
        next refresh on (which comes at once).
        """
        if _connection(config) == _connection(self.config):
            self.config = config
            return True
        client = _client(config)
        if client is None:
            return False
        with self._swap:
            if self._next is not None:
                self._next.close()
            self._next = client
        self.config = config
        self.wake()
        return True

    def status(self) -> MapStatus:
        """The latest status (read from the loop's thread)."""
        return self._status

    def period(self) -> float:
        """The scheduled refresh."""
        return self.config.refresh_seconds

    def join_timeout(self) -> float:
        """Two requests (``osd dump``, ``osd metadata``) in flight at most."""
        return 2 * self.config.timeout_seconds + 1

    def work(self) -> None:
        """One scheduled refresh."""
        self.refresh()

    def closed(self) -> None:
        """Close the client (and one a reload left unused)."""
        with self._swap:
            waiting, self._next = self._next, None
        if waiting is not None:
            waiting.close()
        self.client.close()

    def refresh(self) -> MapStatus:
        """One attempt, on the caller's thread; logs a failure once until it changes."""
        with self._swap:
            fresh, self._next = self._next, None
        if fresh is not None:
            self.client.close()
            self.client = fresh
            self._status = replace(self._status, source=fresh.name)
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


def _client(config: ClusterConfig) -> MonClient | None:
    return client_or_none(config, "no cluster view, judging from local evidence only")


# Settings the watcher reads on every round; changing them keeps the client.
READ_EACH_ROUND = frozenset({"refresh_seconds", "timeout_seconds", "max_age_seconds", "hostname"})


def _connection(config: ClusterConfig) -> dict[str, object]:
    """The settings that make the client."""
    return {
        f.name: getattr(config, f.name) for f in fields(config) if f.name not in READ_EACH_ROUND
    }
