"""What the module says: health check lines and the status table.

A line about a state names what was true when the OSD entered it (its cause then, and since
when), never a running count or an age: a check whose detail changed every report would be
set again every report. The line changes when the state does.
"""

import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .report import OsdVerdict

SHOWN_OSDS = 10  # OSDs named in one line; the rest are counted


def check(severity: str, summary: str, lines: List[str]) -> Dict[str, Any]:
    """A health check for set_health_checks, or {} when there is nothing to say."""
    if not lines:
        return {}
    return {
        "severity": severity,
        "summary": summary.format(len(lines)),
        "count": len(lines),
        "detail": lines,
    }


def clock(wall: float) -> str:
    """A wall-clock time as the mgr's host shows it."""
    return time.strftime("%H:%M:%S", time.localtime(wall))


def state_line(verdict: OsdVerdict, host: str) -> str:
    """A line of a check an OSD's own state raises: its cause then, and since when."""
    return f"{verdict.daemon} on {host}: {verdict.cause} (since {clock(verdict.since)})"


def pressure_line(verdict: OsdVerdict, host: str) -> str:
    """An OSD_FD_PRESSURE line: the count and the time to the limit when known."""
    if verdict.open_fds is not None and verdict.max_fds:
        share = 100 * verdict.open_fds / verdict.max_fds
        fds = f"{verdict.open_fds} of {verdict.max_fds} fds open ({share:.0f}%)"
    else:
        fds = verdict.cause
    if verdict.fd_exhaustion_seconds is not None:
        fds += f", the limit in about {verdict.fd_exhaustion_seconds:.0f}s at the current rate"
    return f"{verdict.daemon} on {host}: {fds} (since {clock(verdict.since)})"


def unreachable_line(
    osd: int, host: str, vantages: Sequence[Tuple[str, str]], local: Optional[str]
) -> str:
    """An OSD_UNREACHABLE line: who could not reach it, and what its own host says."""
    names = ", ".join(h for h, _ in vantages)
    mine = f"{host} sees it {local}" if local else f"no report from {host}"
    return (
        f"osd.{osd} on {host}: not reachable from {len(vantages)} other host(s) ({names}: "
        f"{vantages[0][1]}) while {mine}"
    )


def osd_list(ids: Sequence[int]) -> str:
    """Up OSDs, the first few by name."""
    shown = ", ".join(f"osd.{i}" for i in ids[:SHOWN_OSDS])
    more = f" and {len(ids) - SHOWN_OSDS} more" if len(ids) > SHOWN_OSDS else ""
    return f"{len(ids)} OSD(s) up: {shown}{more}"


def silent_line(host: str, last: Optional[float], limit: float, up: Sequence[int]) -> str:
    """A host whose watchdog is silent; ``last`` None: never reported since ``limit``'s start."""
    if last is None:
        return f"{host}: no watchdog report since the module started ({osd_list(up)})"
    return f"{host}: no watchdog report since {clock(last)}, limit {limit:.0f}s ({osd_list(up)})"


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
                "" if row["since"] is None else clock(row["since"]),
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
