"""A watchdog's report, parsed and checked before anything of it is kept.

Every field is checked for its kind and bounds: strings and lists have a maximum length,
numbers must be finite (Python's JSON parser takes NaN and Infinity), OSD ids and fd counts
are bounded. A report that fails any check is refused whole, naming the first problem.
Nothing here imports ``mgr_module``, and it runs on the oldest Python a supported mgr ships
(3.6 in Pacific's el8 containers): no dataclasses, no walrus, no builtin generics at run time.
"""

import json
import math
from typing import Any, Dict, NamedTuple, Optional, Tuple

REPORT_VERSION = 1
STATES = (
    "starting", "healthy", "fd_pressure", "suspect", "zombie", "stalled", "down", "unobservable",
)  # fmt: skip
MAX_OSDS = 4096  # per report: far above any host, low enough to bound a bad report
MAX_EVENTS = 200
MAX_TEXT = 1000  # characters of a cause or an event message
MAX_NAME = 253  # a host name (DNS's limit)
MAX_ID = 2**31 - 1  # Ceph's OSD ids and fd counts are 32-bit signed
MAX_SECONDS = 10.0**10  # wall-clock times and durations: until the year 2286
MAX_INTERVAL = 3600.0  # the longest keepalive a report may declare


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


class LogLine(NamedTuple):
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
    events: Tuple[LogLine, ...]
    remote: Tuple[Remote, ...] = ()


def _field(raw: Dict[str, Any], name: str, kinds: Any, where: str) -> Any:  # noqa: ANN401 - JSON
    if name not in raw:
        raise ReportError(f"{where}: {name} is missing")
    value = raw[name]
    allowed = kinds if isinstance(kinds, tuple) else (kinds,)
    if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
        raise ReportError(f"{where}: {name} must be {_kind_names(allowed)}, not {value!r}")
    return value


def _kind_names(kinds: Tuple[Any, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", bool: "true"}
    shown = " or ".join(names.get(k, k.__name__) for k in kinds if k is not type(None))
    return shown + (" or null" if type(None) in kinds else "")


def _number(raw: Dict[str, Any], name: str, where: str, *, low: float = 0.0) -> float:
    """A finite number in [low, MAX_SECONDS]."""
    value = float(_field(raw, name, (int, float), where))
    if not math.isfinite(value) or not low <= value <= MAX_SECONDS:
        raise ReportError(f"{where}: {name} must be a finite number from {low:g}, not {value!r}")
    return value


def _count(raw: Dict[str, Any], name: str, where: str) -> Optional[int]:
    """An integer in [0, MAX_ID], or null."""
    value = _field(raw, name, (int, type(None)), where)
    if value is not None and not 0 <= value <= MAX_ID:
        raise ReportError(f"{where}: {name} must be from 0 to {MAX_ID}, not {value!r}")
    return value  # type: ignore[no-any-return]


def _text(raw: Dict[str, Any], name: str, where: str, limit: int = MAX_TEXT) -> str:
    value = _field(raw, name, str, where)
    if len(value) > limit:
        raise ReportError(f"{where}: {name} is longer than {limit} characters")
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
    host = _text(raw, "host", "report", MAX_NAME)
    if not host or host != host.strip() or "/" in host:
        raise ReportError(f"report: host {host!r} is not a host name")
    interval = _number(raw, "interval", "report", low=0.001)
    if interval > MAX_INTERVAL:  # it lengthens how long the host may stay silent
        raise ReportError(f"report: interval must be at most {MAX_INTERVAL:g} s, not {interval:g}")
    osds = _field(raw, "osds", list, "report")
    events = _field(raw, "events", list, "report")
    remote = raw.get("remote", [])  # optional: only watchdogs with remote probes send it
    if not isinstance(remote, list):
        raise ReportError("report: remote must be a list")
    if len(osds) > MAX_OSDS or len(remote) > MAX_OSDS or len(events) > MAX_EVENTS:
        raise ReportError(f"report: at most {MAX_OSDS} OSDs and {MAX_EVENTS} events")
    verdicts = tuple(_verdict(o, i) for i, o in enumerate(osds))
    if len({v.osd_id for v in verdicts}) != len(verdicts):
        raise ReportError("report: an OSD is named twice")
    return Report(
        host=host,
        watchdog=_text(raw, "watchdog", "report"),
        interval=interval,
        osds=verdicts,
        events=tuple(_event(e, i) for i, e in enumerate(events)),
        remote=tuple(_remote(r, i) for i, r in enumerate(remote)),
    )


def _object(raw: Any, where: str) -> Dict[str, Any]:  # noqa: ANN401 - JSON
    if not isinstance(raw, dict):
        raise ReportError(f"{where} must be an object")
    return raw


def _verdict(raw: Any, index: int) -> OsdVerdict:  # noqa: ANN401 - JSON
    where = f"osds[{index}]"
    item = _object(raw, where)
    daemon = _text(item, "daemon", where, 32)
    number = osd_id(daemon, where)
    state = _text(item, "state", where, 32)
    if state not in STATES:
        raise ReportError(f"{where}: state {state!r} is not one of {', '.join(STATES)}")
    exhaustion = _field(item, "fd_exhaustion_seconds", (int, float, type(None)), where)
    return OsdVerdict(
        daemon=daemon,
        osd_id=number,
        state=state,
        since=_number(item, "since", where),
        cause=_text(item, "cause", where),
        open_fds=_count(item, "open_fds", where),
        max_fds=_count(item, "max_fds", where),
        fd_exhaustion_seconds=None
        if exhaustion is None
        else _number(item, "fd_exhaustion_seconds", where),
    )


def osd_id(daemon: str, where: str) -> int:
    """The N of ``osd.N``; raises ReportError for anything else."""
    prefix, _, number = daemon.partition(".")
    if prefix != "osd" or not number.isdigit() or len(number) > 10 or int(number) > MAX_ID:
        raise ReportError(f"{where}: daemon {daemon!r} is not osd.N")
    return int(number)


def _remote(raw: Any, index: int) -> Remote:  # noqa: ANN401 - JSON
    where = f"remote[{index}]"
    item = _object(raw, where)
    daemon = _text(item, "daemon", where, 32)
    ok = _field(item, "ok", bool, where)
    return Remote(daemon, osd_id(daemon, where), bool(ok), _text(item, "detail", where))


def _event(raw: Any, index: int) -> LogLine:  # noqa: ANN401 - JSON
    where = f"events[{index}]"
    item = _object(raw, where)
    return LogLine(_number(item, "time", where), _text(item, "message", where))
