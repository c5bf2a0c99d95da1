"""The module's logic, kept apart from the mgr so it can be tested without one.

Watchdogs report; ``Book`` keeps each host's latest report and turns the reports, the OSD
map and the OSDs' hostnames into Ceph health checks and the status table. Nothing here
imports ``mgr_module``, and it runs on the oldest Python a supported mgr ships (3.6 in
Pacific's el8 containers): no dataclasses, no walrus, no builtin generics at run time.
"""

import json
import time
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

REPORT_VERSION = 1
STATES = ("starting", "healthy", "fd_pressure", "suspect", "zombie", "down", "unobservable")
MAX_OSDS = 4096  # per report: far above any host, low enough to bound a bad report
MAX_EVENTS = 200
MAX_TEXT = 1000  # characters of a cause or an event message


class ReportError(ValueError):
    """A report the module will not take; the message says what was wrong."""


class OsdVerdict(NamedTuple):
    """One OSD in a report."""

    daemon: str
    osd_id: int
    state: str
    since: float  # wall clock
    cause: str
    open_fds: Optional[int]
    max_fds: Optional[int]
    fd_exhaustion_seconds: Optional[float]


class Event(NamedTuple):
    """A line for the cluster log: a zombie verdict, a remediation step or refusal."""

    time: float
    message: str


class Report(NamedTuple):
    """One watchdog's report, checked."""

    host: str
    watchdog: str
    interval: float
    osds: Tuple[OsdVerdict, ...]
    events: Tuple[Event, ...]


def _field(raw: Dict[str, Any], name: str, kinds: Any, where: str) -> Any:  # noqa: ANN401 - JSON
    if name not in raw:
        raise ReportError(f"{where}: {name} is missing")
    value = raw[name]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ReportError(f"{where}: {name} must be {_kind_names(kinds)}, not {value!r}")
    if not isinstance(value, kinds):
        raise ReportError(f"{where}: {name} must be {_kind_names(kinds)}, not {value!r}")
    return value


def _kind_names(kinds: Any) -> str:  # noqa: ANN401 - a type or a tuple of them
    names = {str: "a string", int: "an integer", float: "a number", list: "a list"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(names.get(k, k.__name__) for k in kinds if k is not type(None)) + (
        " or null" if type(None) in kinds else ""
    )


def _text(raw: Dict[str, Any], name: str, where: str) -> str:
    value = _field(raw, name, str, where)
    if len(value) > MAX_TEXT:
        raise ReportError(f"{where}: {name} is longer than {MAX_TEXT} characters")
    return str(value)


def parse_report(text: str) -> Report:
    """A report from its JSON text; raises ReportError naming the first problem."""
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"the report is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ReportError("the report must be a JSON object")
    version = raw.get("version")
    if version != REPORT_VERSION:
        raise ReportError(f"report version {version!r} is not supported (this module: 1)")
    host = _text(raw, "host", "report")
    if not host:
        raise ReportError("report: host is empty")
    number = (int, float)
    interval = float(_field(raw, "interval", number, "report"))
    if interval <= 0:
        raise ReportError("report: interval must be above 0")
    osds = _field(raw, "osds", list, "report")
    events = _field(raw, "events", list, "report")
    if len(osds) > MAX_OSDS or len(events) > MAX_EVENTS:
        raise ReportError(f"report: at most {MAX_OSDS} OSDs and {MAX_EVENTS} events")
    return Report(
        host=host,
        watchdog=_text(raw, "watchdog", "report"),
        interval=interval,
        osds=tuple(_verdict(o, i) for i, o in enumerate(osds)),
        events=tuple(_event(e, i) for i, e in enumerate(events)),
    )


def _verdict(raw: Any, index: int) -> OsdVerdict:  # noqa: ANN401 - JSON
    where = f"osds[{index}]"
    if not isinstance(raw, dict):
        raise ReportError(f"{where} must be an object")
    daemon = _text(raw, "daemon", where)
    prefix, _, number = daemon.partition(".")
    if prefix != "osd" or not number.isdigit():
        raise ReportError(f"{where}: daemon {daemon!r} is not osd.N")
    state = _text(raw, "state", where)
    if state not in STATES:
        raise ReportError(f"{where}: state {state!r} is not one of {', '.join(STATES)}")
    maybe_int, maybe_number = (int, type(None)), (int, float, type(None))
    exhaustion = _field(raw, "fd_exhaustion_seconds", maybe_number, where)
    return OsdVerdict(
        daemon=daemon,
        osd_id=int(number),
        state=state,
        since=float(_field(raw, "since", (int, float), where)),
        cause=_text(raw, "cause", where),
        open_fds=_field(raw, "open_fds", maybe_int, where),
        max_fds=_field(raw, "max_fds", maybe_int, where),
        fd_exhaustion_seconds=None if exhaustion is None else float(exhaustion),
    )


def _event(raw: Any, index: int) -> Event:  # noqa: ANN401 - JSON
    where = f"events[{index}]"
    if not isinstance(raw, dict):
        raise ReportError(f"{where} must be an object")
    return Event(float(_field(raw, "time", (int, float), where)), _text(raw, "message", where))


class Received(NamedTuple):
    """A report and when it came."""

    report: Report
    at: float  # wall clock of receipt (or of the module's start, for a report it reloaded)


class ClusterView(NamedTuple):
    """What the module reads from the mgr each time it judges."""

    up: Dict[int, bool]  # OSD id -> up in the OSD map
    hosts: Dict[int, str]  # OSD id -> hostname from its metadata


class Book:
    """Every host's latest report, and what follows from them."""

    def __init__(self, max_age: float, started: Optional[float] = None) -> None:
        self.max_age = max_age
        self.started = time.time() if started is None else started
        self.reports: Dict[str, Received] = {}
        self.logged_through: Dict[str, float] = {}  # host -> time of the last event logged

    def accept(
        self, report: Report, view: ClusterView, now: float
    ) -> Tuple[Report, List[str], List[Event]]:
        """Keep a report's verdicts for OSDs on the reporting host only.

        Returns (what was kept, one line per refused OSD, the events not logged before).
        """
        kept, refused = [], []
        for verdict in report.osds:
            host = view.hosts.get(verdict.osd_id)
            if host == report.host:
                kept.append(verdict)
            elif host is None:
                refused.append(f"{verdict.daemon}: no metadata names its host")
            else:
                refused.append(f"{verdict.daemon} is on {host}, not {report.host}")
        since = self.logged_through.get(report.host, 0.0)
        new_events = [e for e in report.events if e.time > since]
        if new_events:
            self.logged_through[report.host] = max(e.time for e in new_events)
        accepted = report._replace(osds=tuple(kept), events=())
        self.reports[report.host] = Received(accepted, now)
        return accepted, refused, new_events

    def fresh(self, now: float) -> Dict[str, Received]:
        """The reports young enough to judge from."""
        return {h: r for h, r in self.reports.items() if now - r.at <= self.max_age}

    def health_checks(self, view: ClusterView, now: float) -> Dict[str, Dict[str, Any]]:
        """The checks to raise now, in the form ``MgrModule.set_health_checks`` takes."""
        checks: Dict[str, Dict[str, Any]] = {}
        dead, pressure = [], []
        for host, received in sorted(self.fresh(now).items()):
            for verdict in received.report.osds:
                if not view.up.get(verdict.osd_id, False):
                    continue  # down in the map: Ceph's own OSD_DOWN says so
                if verdict.state == "zombie":
                    dead.append(_dead_line(verdict, host))
                elif verdict.state == "fd_pressure":
                    pressure.append(_pressure_line(verdict, host))
        if dead:
            checks["OSD_ACCEPT_DEAD"] = {
                "severity": "error",
                "summary": f"{len(dead)} OSD(s) up but refusing client connections",
                "count": len(dead),
                "detail": dead,
            }
        if pressure:
            checks["OSD_FD_PRESSURE"] = {
                "severity": "warning",
                "summary": f"{len(pressure)} OSD(s) near their open-files limit",
                "count": len(pressure),
                "detail": pressure,
            }
        silent = self._silent_hosts(view, now)
        if silent:
            checks["OSD_WATCHDOG_DOWN"] = {
                "severity": "warning",
                "summary": f"{len(silent)} host(s) with up OSDs have no recent watchdog report",
                "count": len(silent),
                "detail": silent,
            }
        return checks

    def _silent_hosts(self, view: ClusterView, now: float) -> List[str]:
        up_by_host: Dict[str, List[int]] = {}
        for osd_id, up in view.up.items():
            host = view.hosts.get(osd_id)
            if up and host:
                up_by_host.setdefault(host, []).append(osd_id)
        lines = []
        for host, ids in sorted(up_by_host.items()):
            received = self.reports.get(host)
            last = received.at if received else self.started
            age = now - last
            if age <= self.max_age:
                continue
            osds = ", ".join(f"osd.{i}" for i in sorted(ids))
            if received is None:
                lines.append(
                    f"{host}: no watchdog report since the module started {age:.0f}s ago "
                    f"({len(ids)} OSD(s) up: {osds})"
                )
            else:
                lines.append(
                    f"{host}: last watchdog report {age:.0f}s ago, limit {self.max_age:.0f}s "
                    f"({len(ids)} OSD(s) up: {osds})"
                )
        return lines

    def status(self, view: ClusterView, now: float) -> List[Dict[str, Any]]:
        """One row per OSD in the map: host, state, since, cause, reporter, report age."""
        by_osd: Dict[int, Tuple[str, Received, OsdVerdict]] = {}
        for host, received in self.reports.items():
            for verdict in received.report.osds:
                by_osd[verdict.osd_id] = (host, received, verdict)
        rows = []
        for osd_id in sorted(set(view.up) | set(by_osd)):
            row: Dict[str, Any] = {
                "osd": f"osd.{osd_id}",
                "host": view.hosts.get(osd_id, ""),
                "up": view.up.get(osd_id, False),
                "state": "unreported",
                "since": None,
                "cause": "",
                "watchdog": "",
                "report_age": None,
                "stale": False,
            }
            if osd_id in by_osd:
                host, received, verdict = by_osd[osd_id]
                age = now - received.at
                row.update(
                    state=verdict.state,
                    since=verdict.since,
                    cause=verdict.cause,
                    watchdog=received.report.watchdog,
                    report_age=round(age, 1),
                    stale=age > self.max_age,
                )
            rows.append(row)
        return rows

    # -- kept in the mgr's store, so a standby that takes over raises the same checks ---

    def dump(self) -> str:
        """What a standby needs to raise the same checks, as JSON."""
        return json.dumps(
            {
                "reports": {
                    host: {
                        "host": r.report.host,
                        "watchdog": r.report.watchdog,
                        "interval": r.report.interval,
                        "osds": [v._asdict() for v in r.report.osds],
                    }
                    for host, r in self.reports.items()
                },
                "logged_through": self.logged_through,
            },
            sort_keys=True,
        )

    def load(self, text: str, now: float) -> None:
        """Take the reports the previous active mgr kept, counted as received now.

        The next report replaces each within one interval, and a host that stays silent
        shows as OSD_WATCHDOG_DOWN after max_age as usual.
        """
        raw = json.loads(text)
        for host, kept in raw.get("reports", {}).items():
            osds = tuple(OsdVerdict(**v) for v in kept["osds"])
            report = Report(kept["host"], kept["watchdog"], kept["interval"], osds, ())
            self.reports[host] = Received(report, now)
        self.logged_through.update(raw.get("logged_through", {}))

    def persistent(self, host: str) -> Tuple[Any, ...]:
        """What of a host's report is worth a write to the store when it changes."""
        received = self.reports.get(host)
        if received is None:
            return ()
        return (
            # Not the cause: its text changes every cycle ("dead for 11 cycle(s)"), and a
            # store write is a monitor write. A standby shows the cause as last kept.
            tuple((v.daemon, v.state, v.since) for v in received.report.osds),
            self.logged_through.get(host),
        )


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def _dead_line(verdict: OsdVerdict, host: str) -> str:
    return f"{verdict.daemon} on {host}: {verdict.cause} (since {_clock(verdict.since)})"


def _pressure_line(verdict: OsdVerdict, host: str) -> str:
    fds = ""
    if verdict.open_fds is not None and verdict.max_fds:
        share = 100 * verdict.open_fds / verdict.max_fds
        fds = f"{verdict.open_fds} of {verdict.max_fds} fds open ({share:.0f}%)"
    else:
        fds = verdict.cause
    if verdict.fd_exhaustion_seconds is not None:
        fds += f", the limit in about {verdict.fd_exhaustion_seconds:.0f}s at the current rate"
    return f"{verdict.daemon} on {host}: {fds} (since {_clock(verdict.since)})"


def status_table(rows: List[Dict[str, Any]]) -> str:
    """``ceph osd-watchdog status`` as text."""
    header = ("OSD", "HOST", "UP", "STATE", "SINCE", "REPORT AGE", "WATCHDOG", "CAUSE")
    lines = [header]
    for row in rows:
        age = "" if row["report_age"] is None else f"{row['report_age']:.0f}s"
        if row["stale"]:
            age += " (stale)"
        lines.append(
            (
                row["osd"],
                row["host"],
                "up" if row["up"] else "down",
                row["state"],
                "" if row["since"] is None else _clock(row["since"]),
                age,
                row["watchdog"],
                row["cause"],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:-1], widths)) + "  " + line[-1]
        for line in lines
    )
