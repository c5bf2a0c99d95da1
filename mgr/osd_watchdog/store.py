"""What a standby needs, as the mgr's store keeps it: one key per host, sharded when large.

Each host's states (and the causes its check lines show) go under ``host/NAME``, with more
shards under ``host/NAME/1``, ``host/NAME/2`` when one value would pass MAX_VALUE, so no
value nears the monitors' 65,536-byte limit for one config-key entry
(``mon_config_key_max_entry_size``), whatever the size of the cluster. Versions before 0.1.0
kept the whole book in one value, ``verdicts``: read once on upgrade, then removed.

The checks last raised are kept too, under ``checks``: a standby that takes over raises them
first thing, before it has read the map or any host's key (seconds at 10,000 OSDs), so the
monitors never see its first beacon without them.
"""

import json
from typing import Any, Dict, List, Tuple

from .book import Book
from .report import OsdVerdict, Report, ReportError, osd_id

PREFIX = "host/"
MAX_VALUE = 48 * 1024  # bytes
LEGACY_KEY = "verdicts"
MAX_CAUSE = 300  # characters of a cause kept for a standby's check lines
CHECKS_KEY = "checks"


def checks_value(checks: Dict[str, Dict[str, Any]]) -> str:
    """The raised checks as one store value of at most MAX_VALUE bytes.

    A check with too many lines keeps its summary and its first lines, then says how many
    more there are: a standby shows the full list once it has judged the hosts' reports.
    """
    text = json.dumps(checks, sort_keys=True)
    lines = max((len(c.get("detail", [])) for c in checks.values()), default=0)
    while len(text.encode()) > MAX_VALUE and lines > 0:
        lines //= 2
        cut: Dict[str, Dict[str, Any]] = {}
        for name, check in checks.items():
            detail = list(check.get("detail", []))
            if len(detail) > lines:
                more = f"... and {len(detail) - lines} more"
                detail = [*detail[:lines], more]
            cut[name] = {**check, "detail": detail}
        text = json.dumps(cut, sort_keys=True)
    return text


def load_checks(text: str) -> Dict[str, Dict[str, Any]]:
    """The kept checks; raises ValueError when the value is not what checks_value wrote."""
    checks = json.loads(text)
    if not isinstance(checks, dict) or not all(isinstance(c, dict) for c in checks.values()):
        raise ValueError("not a dict of checks")
    return checks


def keys(host: str, shards: int) -> List[str]:
    """The store keys of a host's shards."""
    return [PREFIX + host] + [f"{PREFIX}{host}/{i}" for i in range(1, shards)]


def host_values(book: Book, host: str) -> List[str]:
    """The store values of one host, shard 0 first, each at most MAX_VALUE bytes."""
    received, part = book.reports[host], book.parts[host]
    report = received.report
    head = {"host": host, "watchdog": report.watchdog, "interval": report.interval,
            "logged_through": book.logged_through.get(host, 0.0)}  # fmt: skip
    room = MAX_VALUE - len(json.dumps(head)) - 64
    shards: List[List[Dict[str, Any]]] = [[]]
    used = 0
    for verdict in report.osds:
        cause = part.causes.get(verdict.osd_id, verdict.cause)[:MAX_CAUSE]
        entry = verdict._replace(cause=cause)._asdict()
        size = len(json.dumps(entry)) + 2
        if shards[-1] and used + size > room:
            shards.append([])
            used = 0
        shards[-1].append(entry)
        used += size
    first = json.dumps({**head, "osds": shards[0], "shards": len(shards)}, sort_keys=True)
    return [first] + [json.dumps({"osds": s}, sort_keys=True) for s in shards[1:]]


def load(book: Book, entries: Dict[str, str], now: float) -> Tuple[List[str], Dict[str, int]]:
    """Restore every host's values (``{store key: value}``) into the book.

    Returns the hosts whose values could not be read (left out), and each host's shard count.
    """
    bad, shards = [], {}
    for host, values in _by_host(entries).items():
        shards[host] = len(values)
        try:
            report, logged = _parse(host, values)
        except (ValueError, KeyError, TypeError, IndexError, ReportError):
            bad.append(host)
            continue
        book.restore(report, logged, now)
    return bad, shards


def load_legacy(book: Book, text: str, now: float) -> None:
    """The single value of versions before 0.1.0."""
    raw = json.loads(text)
    through = raw.get("logged_through", {})
    for host, kept in raw.get("reports", {}).items():
        head = {"host": host, "watchdog": kept["watchdog"], "interval": kept["interval"],
                "logged_through": through.get(host, 0.0), "shards": 1}  # fmt: skip
        osds = [{k: v for k, v in o.items() if k != "osd_id"} for o in kept["osds"]]
        report, logged = _parse(host, {0: json.dumps({**head, "osds": osds})})
        book.restore(report, logged, now)


def _parse(host: str, values: Dict[int, str]) -> Tuple[Report, float]:
    head = json.loads(values[0])
    osds: List[Dict[str, Any]] = []
    for index in range(int(head.get("shards", 1))):
        osds += json.loads(values[index])["osds"]
    verdicts = tuple(
        OsdVerdict(**{**v, "osd_id": osd_id(str(v["daemon"]), host)})
        for v in osds
        if isinstance(v, dict)
    )
    report = Report(host, str(head["watchdog"]), float(head["interval"]), verdicts, ())
    return report, float(head.get("logged_through", 0.0))


def _by_host(entries: Dict[str, str]) -> Dict[str, Dict[int, str]]:
    """{host: {shard: value}} from the store's ``host/...`` keys."""
    found: Dict[str, Dict[int, str]] = {}
    for key, value in entries.items():
        rest = key[len(PREFIX) :] if key.startswith(PREFIX) else ""
        host, _, shard = rest.partition("/")
        if host and value is not None and (not shard or shard.isdigit()):
            found.setdefault(host, {})[int(shard or 0)] = value
    return found
