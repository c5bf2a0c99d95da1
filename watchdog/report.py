"""Presentation of snapshots for people and plug-ins: the state table, check summary, JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watchdog.model import State

if TYPE_CHECKING:
    from watchdog.model import OsdReport, Snapshot

# Nagios/Icinga plug-in exit codes.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
SEVERITY = {
    State.HEALTHY: OK,
    State.STARTING: WARNING,
    State.FD_PRESSURE: WARNING,
    State.SUSPECT: WARNING,
    State.ZOMBIE: CRITICAL,
    State.STALLED: CRITICAL,
    State.DOWN: CRITICAL,
    State.UNOBSERVABLE: UNKNOWN,
}
STATUS_WORD = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def check_result(
    snapshot: Snapshot, nothing_found: str, *, fd_warn: float | None = None
) -> tuple[int, str]:
    """Exit code and the one-line plug-in output with performance data.

    Performance data follow the plug-in guidelines: 'label'=value[UOM];warn;crit;min;max.
    """
    if not snapshot.osds:
        return UNKNOWN, f"OSD-WATCHDOG UNKNOWN - {nothing_found}"
    code = max(SEVERITY[r.status.state] for r in snapshot.osds)
    # UNKNOWN outranks WARNING but a proven zombie, stalled or down OSD is still CRITICAL.
    if CRITICAL in {SEVERITY[r.status.state] for r in snapshot.osds}:
        code = CRITICAL
    worst = [r for r in snapshot.osds if SEVERITY[r.status.state] == code]
    if code == OK:
        text = f"{len(snapshot.osds)} OSD(s) healthy"
    else:
        text = "; ".join(
            f"{r.status.state.value.upper()} {_name(r)}: {r.status.cause}" for r in worst
        )
    counts = {s: sum(1 for r in snapshot.osds if r.status.state is s) for s in State}
    perf = " ".join(f"{s.value}={n};;;0" for s, n in counts.items())
    warn = "" if fd_warn is None else f"{fd_warn:g}"
    ratios = " ".join(
        f"'{_name(r)}_fd_ratio'={r.observation.fds.ratio:.4f};{warn};1;0;1"
        for r in snapshot.osds
        if r.observation.fds.ratio is not None
    )
    return code, f"OSD-WATCHDOG {STATUS_WORD[code]} - {text} | {perf} {ratios}".rstrip()


def summary_line(snapshot: Snapshot) -> str:
    """'3 OSD(s): 2 healthy, 1 zombie' -- the systemd STATUS= line."""
    counts = [(s, sum(1 for r in snapshot.osds if r.status.state is s)) for s in State]
    parts = ", ".join(f"{n} {s.value}" for s, n in counts if n)
    return f"{len(snapshot.osds)} OSD(s): {parts}" if parts else "no OSDs found"


def _name(report: OsdReport) -> str:
    return report.observation.target.daemon


def as_json(snapshot: Snapshot) -> dict[str, Any]:
    """A machine-readable view of a snapshot (``check --json``)."""
    return {
        "taken_at": snapshot.taken_at,
        "osds": [
            {
                "ceph_daemon": _name(r),
                "cluster": r.observation.target.cluster,
                "state": r.status.state.value,
                "since": snapshot.wall_time(r.status.since),
                "cause": r.status.cause,
                "pid": r.observation.target.incarnation.pid
                if r.observation.target.incarnation
                else None,
                "open_fds": r.observation.fds.open_fds
                if r.observation.fds.ratio is not None
                else None,
                "max_fds": r.observation.fds.limit if r.observation.fds.ratio is not None else None,
                "heartbeat_connections": r.observation.heartbeat_connections,
                "endpoints": [
                    {
                        "address": b.endpoint.address,
                        "role": b.endpoint.role.value,
                        "outcome": b.outcome.value,
                        "duration_seconds": round(b.duration_seconds, 6),
                        "detail": b.detail,
                    }
                    for b in r.observation.banners
                ],
            }
            for r in snapshot.osds
        ],
    }


def table(snapshot: Snapshot, width: int = 110) -> str:
    """A fixed-width table of OSD states, one line per OSD."""
    lines = [f"{'OSD':<8} {'STATE':<13} {'FOR':>6} {'FDS':>11} {'PUBLIC':<22} {'HB':>3}  CAUSE"]
    for report in snapshot.osds:
        status, obs = report.status, report.observation
        age = snapshot.monotonic_at - status.since
        fds = f"{obs.fds.open_fds}/{obs.fds.limit}" if obs.fds.ratio is not None else "-"
        public = ",".join(b.outcome.value for b in obs.client_banners)
        beats = "-" if obs.heartbeat_connections is None else str(obs.heartbeat_connections)
        line = (
            f"{_name(report):<8} {status.state.value:<13} {age:>5.0f}s {fds:>11} "
            f"{public or '-':<22} {beats:>3}  {status.cause}"
        )
        lines.append(line[:width])
    return "\n".join(lines)
