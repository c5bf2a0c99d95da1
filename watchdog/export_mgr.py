"""Export stage: hand this host's verdicts to the osd_watchdog ceph-mgr module.

The module (``mgr/osd_watchdog`` in this repository) turns them into Ceph health checks,
so a zombie shows in ``ceph -s``. The report is one mgr command, ``osd-watchdog report``,
through the CLI or librados. It is sent at once when an OSD's state changes, and otherwise
looked at every ``report.interval_seconds``: sent when an event or a remote result is new
or the last report failed, else only every ``report.keepalive_seconds``. A mgr command costs
the mgr far more than the module's work on it, so an unchanged report is not sent again
before the keepalive. It runs on its own thread with its own client: a slow or failing mgr
never delays a probe cycle. Remote probe results (the second vantage point) come in the
snapshot, probed by the cycle (``probes/remote.py``); the reporter only serialises them.
Events (a zombie verdict, a remediation step or refusal) go in the report until the module
says it wrote them to the cluster log, so each appears there once.
"""

from __future__ import annotations

import collections
import errno
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watchdog import __version__
from watchdog.errors import MonitorError
from watchdog.model import ReportStatus, State
from watchdog.monitor import MonClient, make_client
from watchdog.worker import Worker

if TYPE_CHECKING:
    from watchdog.config import Config
    from watchdog.model import OsdReport, Snapshot
    from watchdog.monitor import Answer

log = logging.getLogger(__name__)

REPORT_VERSION = 1
MAX_EVENTS = 100  # the module takes 200; what does not fit waits for the next report
COMMAND = "osd-watchdog report"
MAX_KEEPALIVE = 3600.0  # the longest the module takes (and so the longest it may ask for)
# Verdicts that go to the cluster log, once per OSD and state entry.
LOGGED = {State.ZOMBIE: "is a zombie", State.STALLED: "has stuck ops"}


@dataclass(frozen=True, slots=True)
class LogLine:
    """A line for the cluster log, until the module says it wrote it."""

    time: float
    message: str


class MgrReporter(Worker):
    """Sends the latest snapshot's verdicts to the mgr module from a thread of its own."""

    name = "mgr-report"
    work_first = False  # nothing to say before the first snapshot

    def __init__(self, config: Config, client: MonClient | None = None) -> None:
        super().__init__()
        self.config = config
        self.client = client
        self._stale_client = False  # a reload changed the cluster settings
        self.events: collections.deque[LogLine] = collections.deque(maxlen=MAX_EVENTS)
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        # The states last offered: a change since then wakes the thread at once. Not the
        # states last sent: while the mgr fails, that would retry every cycle, not every
        # interval.
        self._offered: dict[str, tuple[State, float]] = {}
        self._zombies_logged: set[tuple[str, float]] = set()
        # What the module last took whole, and when (monotonic): the same again is not sent
        # before the keepalive.
        self._sent: tuple[Any, ...] | None = None
        self._sent_at = 0.0
        # The keepalive the module asked for in its last reply (0: none): it paces the
        # watchdogs of a large cluster so that their unchanged reports stay few in all.
        self.asked = 0.0
        self.status = ReportStatus()

    # -- fed by the loop and by remediation ----------------------------------------------

    def offer(self, snapshot: Snapshot) -> None:
        """The snapshot just published; wakes the thread if a state changed. Never blocks."""
        states = _states(snapshot)
        with self._lock:
            self._snapshot = snapshot
            for report in snapshot.osds:
                key = (report.observation.target.daemon, report.status.since)
                said = LOGGED.get(report.status.state)
                if said is not None and key not in self._zombies_logged:
                    self._zombies_logged.add(key)
                    self._event(f"{key[0]} {said}: {report.status.cause}", snapshot.taken_at)
            changed, self._offered = states != self._offered, states
        if changed:
            self.wake()

    def audited(self, record: dict[str, Any]) -> None:
        """One remediation audit record (a decision, a step): logged in the cluster once."""
        message = _audit_message(record)
        if message is not None:
            with self._lock:
                self._event(message, float(record.get("time", time.time())))
            self.wake()

    def _event(self, message: str, at: float) -> None:
        # Strictly increasing times: the module logs what is newer than the last it logged.
        last = self.events[-1].time if self.events else 0.0
        self.events.append(LogLine(max(at, last + 1e-6), message))

    # -- the thread ---------------------------------------------------------------------

    def keepalive(self) -> float:
        """Seconds between two unchanged reports: ours, or the module's if longer."""
        return max(self.config.report.keepalive_seconds, self.asked)

    def period(self) -> float:
        """Looked at every interval; sent when something changed, else at the keepalive."""
        return self.config.report.interval_seconds

    def join_timeout(self) -> float:
        """A report in flight ends within its timeout."""
        return self.config.report.timeout_seconds + 5

    def work(self) -> None:
        """One look: send if there is news, or the keepalive is due."""
        self.send(keepalive=True)

    def closed(self) -> None:
        """Close the client."""
        if self.client is not None:
            self.client.close()
            self.client = None

    def reconfigure(self, config: Config) -> None:
        """New settings; a new client when the cluster settings changed. Events are kept.

        The old client is closed by the next send, on the thread that uses it.
        """
        if config.cluster != self.config.cluster:
            self._stale_client = True
        self.config = config

    def send(self, *, keepalive: bool = False) -> bool:
        """Send one report now, on this thread; True when the module took all of it.

        With ``keepalive``, a report saying what the module last took is not sent before
        ``report.keepalive_seconds`` passed (and True is returned).
        """
        with self._lock:
            snapshot = self._snapshot
            events = list(self.events)
        if snapshot is None:
            return False
        said = (_states(snapshot), tuple((r.daemon, r.ok) for r in snapshot.remote))
        started = time.monotonic()
        if (
            keepalive
            and said == self._sent
            and not events
            and started - self._sent_at < self.keepalive()
        ):
            return True
        self._sent = None  # until the module takes this one whole
        body = self.body(snapshot, events)
        try:
            answer = self._ask(json.dumps(body).encode())
        except MonitorError as exc:
            return self._failed(f"{exc}", started)
        if answer.ret != 0 and not answer.out:
            return self._failed(f"error {answer.ret}: {answer.status}", started)
        try:
            reply = answer.json(COMMAND)
            through = float(reply.get("events_through", 0.0))
            # Older modules ask nothing; a report refused whole gets no answer on it.
            asked = _asked(reply.get("keepalive", self.asked))
        except (MonitorError, AttributeError, TypeError, ValueError) as exc:
            return self._failed(f"unexpected reply: {exc}", started)
        if asked != self.asked:
            log.info("the mgr module asks for an unchanged report every %gs (ours: %gs)",
                     asked, self.config.report.keepalive_seconds)  # fmt: skip
            self.asked = asked
        with self._lock:
            while self.events and self.events[0].time <= through:
                self.events.popleft()
        refused = list(reply.get("refused", []))
        if refused:
            # The verdicts of other OSDs were taken; these need a look at host names.
            log.warning("the mgr module refused part of the report: %s", "; ".join(refused))
        self.status = self.status.after(
            ok=not refused, seconds=time.monotonic() - started, keepalive=self.keepalive()
        )
        if not refused:
            self._sent, self._sent_at = said, started
        return not refused

    def _ask(self, body: bytes) -> Answer:
        if self._stale_client:  # closed here, on the thread that used it
            self._stale_client = False
            self.closed()
        if self.client is None:
            self.client = _client(self.config)
        return self.client.mgr_ask(COMMAND, body, self.config.report.timeout_seconds)

    def _failed(self, reason: str, started: float) -> bool:
        if self.status.last_ok is not False:
            log.warning("cannot report to the osd_watchdog mgr module: %s", reason)
        self.status = self.status.after(
            ok=False, seconds=time.monotonic() - started, keepalive=self.keepalive()
        )
        return False

    # -- the report ---------------------------------------------------------------------

    def body(self, snapshot: Snapshot, events: list[LogLine]) -> dict[str, Any]:
        """The JSON the module's ``osd-watchdog report`` takes (see mgr/osd_watchdog)."""
        host = snapshot.host
        return {
            "version": REPORT_VERSION,
            "host": host,
            "watchdog": f"osd-watchdog {__version__} on {host}",
            "interval": self.keepalive(),  # the longest between two
            "osds": [_verdict(r, snapshot) for r in snapshot.osds],
            "events": [{"time": e.time, "message": e.message} for e in events],
            "remote": [
                {"daemon": r.daemon, "ok": r.ok, "detail": r.detail} for r in snapshot.remote
            ],
        }


def _asked(value: object) -> float:
    """The module's keepalive from its reply; ValueError for anything but 0 to 3,600 s."""
    if not isinstance(value, int | float) or not 0 <= value <= MAX_KEEPALIVE:
        raise ValueError(f"keepalive {value!r} is not 0 to {MAX_KEEPALIVE:g} seconds")
    return float(value)


def _states(snapshot: Snapshot) -> dict[str, tuple[State, float]]:
    return {r.observation.target.daemon: (r.status.state, r.status.since) for r in snapshot.osds}


def cluster_status(config: Config, *, as_json: bool) -> str:
    """``ceph osd-watchdog status``: every OSD's latest verdict, cluster-wide.

    Raises MonitorError when the module cannot be asked (not enabled, no monitor).
    """
    client = _client(config)
    try:
        answer = client.mgr_ask(
            "osd-watchdog status",
            b"",
            config.cluster.timeout_seconds,
            "json" if as_json else "plain",
        )
    finally:
        client.close()
    if answer.ret != 0:
        hint = (
            f"{config.cluster.client_name} needs mgr 'allow command \"osd-watchdog status\"'"
            if answer.ret == -errno.EACCES
            else "is the module enabled? ceph mgr module enable osd_watchdog"
        )
        raise MonitorError(f"ceph osd-watchdog status: {answer.status} ({hint})")
    return answer.out.decode(errors="replace")


def _client(config: Config) -> MonClient:
    client = make_client(config.cluster)
    if client is None:
        raise MonitorError("cluster.source 'none' cannot send mgr commands")
    return client


def _verdict(report: OsdReport, snapshot: Snapshot) -> dict[str, Any]:
    fds = report.observation.fds
    known = fds.ratio is not None
    return {
        "daemon": report.observation.target.daemon,
        "state": str(report.status.state),
        "since": round(snapshot.wall_time(report.status.since), 3),
        "cause": report.status.cause[:1000],
        "open_fds": fds.open_fds if known else None,
        "max_fds": fds.limit if known else None,
        "fd_exhaustion_seconds": fds.seconds_to_exhaustion,
    }


def _audit_message(record: dict[str, Any]) -> str | None:
    """The cluster-log line for an audit record, or None for those not worth one."""
    daemon = record.get("ceph_daemon", "?")
    result = record.get("result")
    detail = f": {record['detail']}" if record.get("detail") else ""
    because = f" because {record['evidence']}" if record.get("evidence") else ""
    if result == "refused":
        return f"remediation of {daemon} refused: {record.get('guard')}{because}"
    if result == "dry_run":
        return f"dry run: would remediate {daemon} ({record.get('action')}){because}"
    if result == "started":
        return f"remediation of {daemon} ({record.get('action')}) started{because}"
    if "step" in record and result in {"done", "failed", "interrupted"}:
        return f"remediation of {daemon}: step {record['step']} {result}{detail}"
    return None
