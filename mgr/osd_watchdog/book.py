"""Every host's latest report, and the health checks that follow from them, kept incrementally.

A report changes only its own host's part: which of its OSDs are zombies or under fd
pressure (each line made once, when the OSD enters that state), and which other hosts' OSDs
it could not reach. The checks are put together from those parts, so judging a report costs
the size of that report, not of the cluster. Time-driven changes (a report aging out, a
silent host) happen in ``tick``.

Only what the map justifies is kept: a report from a host that owns no OSD in the map is
refused whole, a verdict for an OSD of another host is refused, remote results only about
OSDs that exist. A host that left the map and stopped reporting is forgotten.

What a standby needs of each host is in the mgr's store (store.py), kept by the module.
"""

import math
import time
from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple

from .report import MAX_INTERVAL, LogLine, OsdVerdict, Report, ReportError
from .text import check, pressure_line, silent_line, state_line, unreachable_line
from .view import EMPTY, ClusterView

# The checks an OSD's own state raises (OSD_UNREACHABLE and OSD_WATCHDOG_DOWN come from
# other hosts' reports and from time).
BY_STATE = {
    "zombie": "OSD_ACCEPT_DEAD",
    "stalled": "OSD_OPS_STUCK",
    "fd_pressure": "OSD_FD_PRESSURE",
}
# Seconds: past it, the keepalive asked for moves in steps of it, so it seldom changes.
PACE_STEP = 30.0
MIN_KEEPALIVE_RATE = 0.1  # reports a second: the least keepalive_rate the module takes


class Received(NamedTuple):
    """A report and when it came."""

    report: Report
    at: float  # wall clock of receipt (or of the module's start, for a report it reloaded)

    def limit(self, max_age: float, pace: float) -> float:
        """How long this host may stay silent: ``max_report_age``, or two of its keepalives.

        Its keepalive is the one its report declares, or the one the module asks for if
        longer (the host may have learnt that from the reply to this very report). A
        watchdog that sends an unchanged report rarely is never called silent between two.
        """
        return max(max_age, 2 * self.report.interval, 2 * pace)


class Part(NamedTuple):
    """One host's contribution to the checks, made when it reports."""

    keys: Dict[int, Tuple[str, float]]  # OSD id -> (state, since)
    causes: Dict[int, str]  # OSD id -> its cause when it entered that state
    lines: Dict[str, Dict[int, str]]  # check name -> OSD id -> its line in that check
    failing: Dict[int, str]  # another host's OSD it could not reach -> what it saw


class Book:
    """Every host's latest report and the checks they raise."""

    def __init__(
        self,
        max_age: float,
        started: Optional[float] = None,
        min_remote_failures: int = 2,
        warn_unreported: bool = False,
        keepalive_rate: float = 10.0,
    ) -> None:
        self.max_age = max_age
        # Unchanged reports a second, all hosts together, that the module asks for: each is
        # a mgr command, and ceph-mgr charges ~2 ms of CPU for any command to a module.
        self.keepalive_rate = keepalive_rate
        # Other hosts that must fail to reach an OSD before it is called unreachable: one
        # vantage point failing alone is more likely its own network than the OSD's.
        self.min_remote_failures = min_remote_failures
        # A host whose watchdog has never reported is not yet watched: during a staged
        # rollout most hosts are like that, and warning for each would hold the cluster in
        # HEALTH_WARN for days. Only hosts that reported and then went silent count, unless
        # the operator asks for every host with up OSDs (the rollout is complete).
        self.warn_unreported = warn_unreported
        self.started = time.time() if started is None else started
        self.view = EMPTY
        self.reports: Dict[str, Received] = {}
        self.parts: Dict[str, Part] = {}
        self.logged_through: Dict[str, float] = {}  # host -> time of the last event logged
        self.fresh: Set[str] = set()  # hosts whose parts count now
        # check name -> OSD id -> (host, line), over the fresh hosts
        self._lines: Dict[str, Dict[int, Tuple[str, str]]] = {
            name: {} for name in BY_STATE.values()
        }
        self._state: Dict[int, Tuple[str, str]] = {}  # OSD id -> (host, state), fresh hosts
        self._failing: Dict[int, Dict[str, str]] = {}  # OSD id -> vantage host -> detail
        self._silent: Dict[str, str] = {}  # host -> its OSD_WATCHDOG_DOWN line

    # -- reports ------------------------------------------------------------------------

    def accept(self, report: Report, now: float) -> Tuple[List[str], List[str], List[LogLine]]:
        """Keep a report's verdicts for the reporting host's own OSDs.

        Raises ReportError, and keeps nothing, when the map gives that host no OSD.
        Returns (the OSDs kept, one line per refused OSD, the events not logged before).
        """
        host, view = report.host, self.view
        if not view.owners.get(host):
            raise ReportError(
                f"no OSD in the OSD map is on {host} (by its metadata or its CRUSH host)"
            )
        kept = [v for v in report.osds if view.on(v.osd_id, host)]
        refused = [_refusal(v, view) for v in report.osds if not view.on(v.osd_id, host)]
        # Remote results are about other hosts' OSDs by design; only OSDs the map has.
        remote = tuple(
            r for r in report.remote if r.osd_id in view.up and not view.on(r.osd_id, host)
        )
        accepted = report._replace(osds=tuple(kept), events=(), remote=remote)
        part = _part(accepted, self.parts.get(host))  # all made before anything changes
        since = self.logged_through.get(host, 0.0)
        new_events = [e for e in report.events if e.time > since]
        self._withdraw(host)
        self.reports[host] = Received(accepted, now)
        self.parts[host] = part
        self._add(host)
        self._silent.pop(host, None)
        if new_events:
            self.logged_through[host] = max(e.time for e in new_events)
        return [v.daemon for v in kept], refused, new_events

    def _withdraw(self, host: str) -> None:
        """Take a host's part out of the checks (it reports again, or went stale)."""
        if host not in self.fresh:
            return
        self.fresh.discard(host)
        part = self.parts[host]
        for name, lines in part.lines.items():
            table = self._lines[name]
            for osd in lines:
                if table.get(osd, ("",))[0] == host:
                    del table[osd]
        for osd in part.keys:
            if self._state.get(osd, ("",))[0] == host:
                del self._state[osd]
        for osd in part.failing:
            vantages = self._failing.get(osd, {})
            vantages.pop(host, None)
            if not vantages:
                self._failing.pop(osd, None)

    def _add(self, host: str) -> None:
        self.fresh.add(host)
        part = self.parts[host]
        for name, lines in part.lines.items():
            for osd, line in lines.items():
                self._lines[name][osd] = (host, line)
        for osd, (state, _) in part.keys.items():
            self._state[osd] = (host, state)
        for osd, detail in part.failing.items():
            self._failing.setdefault(osd, {})[host] = detail

    def pace(self) -> float:
        """The keepalive (s) the module asks every watchdog for, 0 for none.

        Long enough that the hosts it knows, each sending an unchanged report once per
        keepalive, send at most ``keepalive_rate`` a second together: a large cluster's
        watchdogs send less often, so the mgr's cost stays flat as hosts are added (as
        ceph-mgr itself sets how often daemons send it their stats). A watchdog keeps its
        own keepalive when that is longer; a change is sent at once either way.
        """
        wanted = len(self.reports) / max(self.keepalive_rate, MIN_KEEPALIVE_RATE)
        step = PACE_STEP if wanted > PACE_STEP else 1.0  # whole seconds for a small cluster
        return min(MAX_INTERVAL, math.ceil(wanted / step) * step)

    def _limit(self, received: Received) -> float:
        return received.limit(self.max_age, self.pace())

    # -- time and the map ---------------------------------------------------------------

    def set_view(self, view: ClusterView) -> None:
        """A new OSD map: which OSDs are up (the checks name only those) and where."""
        self.view = view

    def tick(self, now: float) -> List[str]:
        """Let time pass: stale reports stop counting, silent hosts are named.

        Hosts that left the map and stopped reporting are forgotten, and returned, so that
        their store keys go too.
        """
        for host, received in self.reports.items():
            if now - received.at > self._limit(received):
                self._withdraw(host)
        self._silent = self._silent_hosts(now)
        gone = [
            h
            for h, r in self.reports.items()
            if h not in self.view.owners and now - r.at > self._limit(r)
        ]
        for host in gone:
            self._withdraw(host)
            del self.reports[host], self.parts[host]
            self.logged_through.pop(host, None)
        return gone

    def _silent_hosts(self, now: float) -> Dict[str, str]:
        hosts = set(self.reports)
        if self.warn_unreported:
            hosts |= {self.view.host_of(o) for o, up in self.view.up.items() if up}
        lines = {}
        for host in sorted(hosts - {""}):
            up = self.view.up_on(host)
            received = self.reports.get(host)
            last = received.at if received else self.started
            limit = self._limit(received) if received else self.max_age
            if up and now - last > limit:
                lines[host] = silent_line(host, received.at if received else None, limit, up)
        return lines

    # -- the checks ---------------------------------------------------------------------

    def health_checks(self) -> Dict[str, Dict[str, Any]]:
        """The checks to raise now, in the form ``MgrModule.set_health_checks`` takes."""
        up = self.view.up
        dead = []
        for osd, (_, line) in sorted(self._lines["OSD_ACCEPT_DEAD"].items()):
            if up.get(osd, False):  # down in the map: Ceph's own OSD_DOWN says so
                agree = len(self._failing.get(osd, {}))
                dead.append(line + (f"; {agree} other host(s) agree" if agree else ""))

        def up_lines(name: str) -> List[str]:
            return [line for osd, (_, line) in sorted(self._lines[name].items()) if up.get(osd)]

        unreachable = []
        for osd, vantages in sorted(self._failing.items()):
            local = self._state.get(osd, ("", None))[1]
            # Its own host's verdict says more when it calls it a zombie or down.
            if (
                len(vantages) >= self.min_remote_failures
                and up.get(osd, False)
                and local
                not in (
                    "zombie",
                    "down",
                )
            ):
                where = self.view.host_of(osd)
                unreachable.append(unreachable_line(osd, where, sorted(vantages.items()), local))
        checks = {
            "OSD_ACCEPT_DEAD": check("error", "{} OSD(s) up but refusing client connections", dead),
            "OSD_OPS_STUCK": check(
                "error", "{} OSD(s) up but finishing no ops", up_lines("OSD_OPS_STUCK")
            ),
            "OSD_FD_PRESSURE": check(
                "warning", "{} OSD(s) near their open-files limit", up_lines("OSD_FD_PRESSURE")
            ),
            "OSD_UNREACHABLE": check(
                "warning",
                "{} OSD(s) answer on their own host but not from other hosts",
                unreachable,
            ),
            "OSD_WATCHDOG_DOWN": check(
                "warning",
                "{} host(s) with up OSDs have no recent watchdog report",
                [self._silent[h] for h in sorted(self._silent)],
            ),
        }
        return {name: value for name, value in checks.items() if value}

    def status(self, now: float) -> List[Dict[str, Any]]:
        """One row per OSD in the map: host, state, since, cause, reporter, report age."""
        by_osd: Dict[int, Tuple[Received, OsdVerdict]] = {}
        for received in self.reports.values():
            for verdict in received.report.osds:
                by_osd[verdict.osd_id] = (received, verdict)
        rows = []
        for osd in sorted(set(self.view.up) | set(by_osd)):
            row: Dict[str, Any] = {
                "osd": f"osd.{osd}",
                "host": self.view.host_of(osd),
                "up": self.view.up.get(osd, False),
                "state": "unreported",
                "since": None,
                "cause": "",
                "watchdog": "",
                "report_age": None,
                "stale": False,
                "unreachable_from": sorted(self._failing.get(osd, {})),
            }
            if osd in by_osd:
                received, verdict = by_osd[osd]
                age = now - received.at
                row.update(
                    state=verdict.state,
                    since=verdict.since,
                    cause=verdict.cause,
                    watchdog=received.report.watchdog,
                    report_age=round(age, 1),
                    stale=age > self._limit(received),
                )
            rows.append(row)
        return rows

    # -- kept in the mgr's store, so a standby that takes over raises the same checks ---

    def persistent(self, host: str) -> Tuple[Any, ...]:
        """What of a host's part is worth a write to the store when it changes.

        The states, not their causes' running counts: every store write is a monitor write.
        """
        part = self.parts.get(host)
        if part is None:
            return ()
        return (tuple(sorted(part.keys.items())), self.logged_through.get(host))

    def restore(self, report: Report, logged_through: float, now: float) -> None:
        """A host's report as the previous active mgr kept it, counted as received now."""
        part = _part(report, None)
        self._withdraw(report.host)
        self.reports[report.host] = Received(report, now)
        self.parts[report.host] = part
        self.logged_through[report.host] = logged_through
        self._add(report.host)


def _refusal(verdict: OsdVerdict, view: ClusterView) -> str:
    names = view.names.get(verdict.osd_id)
    if verdict.osd_id not in view.up:
        return f"{verdict.daemon} is not in the OSD map"
    if not names:
        return f"{verdict.daemon}: neither its metadata nor CRUSH names its host"
    return f"{verdict.daemon} is on {names[-1]}"


def _part(report: Report, before: Optional[Part]) -> Part:
    """A host's part of the checks; a line stays the one made when its OSD entered the state."""
    keys: Dict[int, Tuple[str, float]] = {}
    causes: Dict[int, str] = {}
    lines: Dict[str, Dict[int, str]] = {name: {} for name in BY_STATE.values()}
    for verdict in report.osds:
        osd = verdict.osd_id
        keys[osd] = (verdict.state, verdict.since)
        same = before is not None and before.keys.get(osd) == keys[osd]
        causes[osd] = before.causes[osd] if same and before is not None else verdict.cause[:300]
        name = BY_STATE.get(verdict.state)
        if name is None:
            continue
        old = before.lines[name].get(osd) if same and before is not None else None
        maker = pressure_line if name == "OSD_FD_PRESSURE" else state_line
        lines[name][osd] = old or maker(verdict._replace(cause=causes[osd]), report.host)
    failing = {r.osd_id: r.detail for r in report.remote if not r.ok}
    return Part(keys, causes, lines, failing)
