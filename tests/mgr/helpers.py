"""Reports and views for the mgr module's tests."""

import json

from tests.mgr.logic import book, report, view

NOW = 1_800_000_000.0


def make_view(hosts: dict[int, str], down: tuple[int, ...] = ()):
    """A view where OSD id -> its one host name; ``down`` are down in the map."""
    owners: dict[str, set[int]] = {}
    for osd, host in hosts.items():
        owners.setdefault(host, set()).add(osd)
    return view.ClusterView(
        up={osd: osd not in down for osd in hosts},
        names={osd: (host,) for osd, host in hosts.items()},
        owners={h: frozenset(o) for h, o in owners.items()},
    )


VIEW = make_view({0: "a", 1: "a", 2: "b"})


def verdict(daemon="osd.1", state="zombie", **extra):
    return {
        "daemon": daemon,
        "state": state,
        "since": NOW - 30,
        "cause": "client accept path dead: public v2 no_banner; the OSD map still says up",
        "open_fds": None,
        "max_fds": None,
        "fd_exhaustion_seconds": None,
        **extra,
    }


def report_text(host="a", osds=(), events=(), remote=(), **extra):
    return json.dumps(
        {
            "version": 1,
            "host": host,
            "watchdog": f"osd-watchdog on {host}",
            "interval": 10,
            "osds": list(osds),
            "events": list(events),
            "remote": list(remote),
            **extra,
        }
    )


def remote(daemon, ok, detail="v2:10.0.0.9:6800 timeout"):
    return {"daemon": daemon, "ok": ok, "detail": detail}


def book_with(*texts, at=NOW, on=VIEW, **options):
    kept = book.Book(max_age=60, started=at - 5, **options)
    kept.set_view(on)
    for text in texts:
        kept.accept(report.parse_report(text), at)
    return kept
