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


class Remote(NamedTuple):
    """A probe of another host's OSD: its public addresses, from the reporter's host."""

    daemon: str
    osd_id: int
    ok: bool
    detail: str


class Report(NamedTuple):
    """One watchdog's report, checked."""

    host: str
    watchdog: str
    interval: float
    osds: Tuple[OsdVerdict, ...]
    events: Tuple[Event, ...]
    remote: Tuple[Remote, ...] = ()


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
    remote = raw.get("remote", [])  # optional: only watchdogs with remote probes send it
    if not isinstance(remote, list):
        raise ReportError("report: remote must be a list")
    if len(osds) > MAX_OSDS or len(remote) > MAX_OSDS or len(events) > MAX_EVENTS:
        raise ReportError(f"report: at most {MAX_OSDS} OSDs and {MAX_EVENTS} events")
    return Report(
        host=host,
        watchdog=_text(raw, "watchdog", "report"),
        interval=interval,
        osds=tuple(_verdict(o, i) for i, o in enumerate(osds)),
        events=tuple(_event(e, i) for i, e in enumerate(events)),
        remote=tuple(_remote(r, i) for i, r in enumerate(remote)),
    )


def _verdict(raw: Any, index: int) -> OsdVerdict:  # noqa: ANN401 - JSON
    where = f"osds[{index}]"
    if not isinstance(raw, dict):
        raise ReportError(f"{where} must be an object")
    daemon = _text(raw, "daemon", where)
    osd_id = _osd_id(daemon, where)
    state = _text(raw, "state", where)
    if state not in STATES:
        raise ReportError(f"{where}: state {state!r} is not one of {', '.join(STATES)}")
    maybe_int, maybe_number = (int, type(None)), (int, float, type(None))
    exhaustion = _field(raw, "fd_exhaustion_seconds", maybe_number, where)
    return OsdVerdict(
        daemon=daemon,
        osd_id=osd_id,
        state=state,
        since=float(_field(raw, "since", (int, float), where)),
        cause=_text(raw, "cause", where),
        open_fds=_field(raw, "open_fds", maybe_int, where),
        max_fds=_field(raw, "max_fds", maybe_int, where),
        fd_exhaustion_seconds=None if exhaustion is None else float(exhaustion),
    )


def _osd_id(daemon: str, where: str) -> int:
    prefix, _, number = daemon.partition(".")
    if prefix != "osd" or not number.isdigit():
        raise ReportError(f"{where}: daemon {daemon!r} is not osd.N")
    return int(number)


def _remote(raw: Any, index: int) -> Remote:  # noqa: ANN401 - JSON
    where = f"remote[{index}]"
    if not isinstance(raw, dict):
        raise ReportError(f"{where} must be an object")
    daemon = _text(raw, "daemon", where)
    ok = _field(raw, "ok", bool, where)
    return Remote(daemon, _osd_id(daemon, where), bool(ok), _text(raw, "detail", where))


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

    def __init__(
        self,
        max_age: float,
        started: Optional[float] = None,
        min_remote_failures: int = 2,
        warn_unreported: bool = False,
    ) -> None:
        self.max_age = max_age
        # A host whose watchdog has never reported is not yet watched: during a staged
        # rollout most hosts are like that, and warning for each would hold the cluster in
        # HEALTH_WARN for days. Only hosts that reported and then went silent count, unless
        # the operator asks for every host with up OSDs (the rollout is complete).
        self.warn_unreported = warn_unreported
        # Other hosts that must fail to reach an OSD before it is called unreachable: one
        # vantage point failing alone is more likely its own network than the OSD's.
        self.min_remote_failures = min_remote_failures
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
        # Remote results are about other hosts' OSDs by design; only not about its own.
        remote = tuple(r for r in report.remote if view.hosts.get(r.osd_id) != report.host)
        accepted = report._replace(osds=tuple(kept), events=(), remote=remote)
        self.reports[report.host] = Received(accepted, now)
        return accepted, refused, new_events

    def fresh(self, now: float) -> Dict[str, Received]:
        """The reports young enough to judge from."""
        return {h: r for h, r in self.reports.items() if now - r.at <= self.max_age}

    def health_checks(self, view: ClusterView, now: float) -> Dict[str, Dict[str, Any]]:
        """The checks to raise now, in the form ``MgrModule.set_health_checks`` takes."""
        fresh = self.fresh(now)
        failing = self._failing_remotely(fresh)
        dead, pressure, local = self._local_lines(fresh, view, failing)
        unreachable = [
            _unreachable_line(osd_id, view, vantages, local.get(osd_id))
            for osd_id, vantages in sorted(failing.items())
            if len(vantages) >= self.min_remote_failures
            and view.up.get(osd_id, False)
            # Its own host's verdict says more when it calls it a zombie or down.
            and getattr(local.get(osd_id), "state", None) not in ("zombie", "down")
        ]
        checks = {
            "OSD_ACCEPT_DEAD": _check(
                "error", "{} OSD(s) up but refusing client connections", dead
            ),
            "OSD_FD_PRESSURE": _check("warning", "{} OSD(s) near their open-files limit", pressure),
            "OSD_UNREACHABLE": _check(
                "warning",
                "{} OSD(s) answer on their own host but not from other hosts",
                unreachable,
            ),
            "OSD_WATCHDOG_DOWN": _check(
                "warning",
                "{} host(s) with up OSDs have no recent watchdog report",
                self._silent_hosts(view, now),
            ),
        }
        return {name: check for name, check in checks.items() if check}

    @staticmethod
    def _local_lines(
        fresh: Dict[str, Received],
        view: ClusterView,
        failing: Dict[int, List[Tuple[str, str]]],
    ) -> Tuple[List[str], List[str], Dict[int, OsdVerdict]]:
        """(dead accept path lines, fd pressure lines, every OSD's verdict by its own host)."""
        dead, pressure, local = [], [], {}
        for host, received in sorted(fresh.items()):
            for verdict in received.report.osds:
                local[verdict.osd_id] = verdict
                if not view.up.get(verdict.osd_id, False):
                    continue  # down in the map: Ceph's own OSD_DOWN says so
                if verdict.state == "zombie":
                    agree = failing.get(verdict.osd_id, [])
                    also = f"; {len(agree)} other host(s) agree" if agree else ""
                    dead.append(_dead_line(verdict, host) + also)
                elif verdict.state == "fd_pressure":
                    pressure.append(_pressure_line(verdict, host))
        return dead, pressure, local

    @staticmethod
    def _failing_remotely(fresh: Dict[str, Received]) -> Dict[int, List[Tuple[str, str]]]:
        """OSD id -> (vantage host, what it saw) for every other host that could not reach it."""
        failing: Dict[int, List[Tuple[str, str]]] = {}
        for host, received in sorted(fresh.items()):
            for remote in received.report.remote:
                if not remote.ok:
                    failing.setdefault(remote.osd_id, []).append((host, remote.detail))
        return failing

    def _silent_hosts(self, view: ClusterView, now: float) -> List[str]:
        up_by_host: Dict[str, List[int]] = {}
        for osd_id, up in view.up.items():
            host = view.hosts.get(osd_id)
            if up and host:
                up_by_host.setdefault(host, []).append(osd_id)
        lines = []
        for host, ids in sorted(up_by_host.items()):
            received = self.reports.get(host)
            if received is None and not self.warn_unreported:
                continue
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
        failing = self._failing_remotely(self.fresh(now))
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
                "unreachable_from": [h for h, _ in failing.get(osd_id, [])],
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


def _check(severity: str, summary: str, lines: List[str]) -> Dict[str, Any]:
    """A health check for set_health_checks, or {} when there is nothing to say."""
    if not lines:
        return {}
    return {
        "severity": severity,
        "summary": summary.format(len(lines)),
        "count": len(lines),
        "detail": lines,
    }


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))


def _dead_line(verdict: OsdVerdict, host: str) -> str:
    return f"{verdict.daemon} on {host}: {verdict.cause} (since {_clock(verdict.since)})"


def _unreachable_line(
    osd_id: int,
    view: ClusterView,
    vantages: List[Tuple[str, str]],
    local: Optional[OsdVerdict],
) -> str:
    hosts = ", ".join(h for h, _ in vantages)
    here = view.hosts.get(osd_id, "?")
    mine = f"{here} sees it {local.state}" if local else f"no report from {here}"
    return (
        f"osd.{osd_id} on {here}: not reachable from {len(vantages)} other host(s) ({hosts}: "
        f"{vantages[0][1]}) while {mine}"
    )


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
