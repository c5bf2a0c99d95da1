"""Act stage, facts: the monitors' word of now, asked for right before the cluster is changed.

The loop's map can be ``cluster.refresh_seconds`` old; an operator's ``nodown`` set a second
ago must still count. So the map is read again here, under a short timeout, together with
Ceph's own answer to "may this OSD stop?" (``osd ok-to-stop``, the check cephadm and Rook make
before they restart an OSD). Nothing here decides: ``guards.py`` judges what is returned.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from watchdog.discover.mapwatch import fetch_map
from watchdog.errors import MonitorError

if TYPE_CHECKING:
    from watchdog.model import ClusterMap
    from watchdog.monitor import Answer, MonClient


def read_map(mon: MonClient | None, timeout: float) -> tuple[ClusterMap | None, str]:
    """The OSD map as the monitors hold it now, or None and why not."""
    if mon is None:
        return None, "no monitor client (cluster.source = 'none')"
    try:
        return fetch_map(mon, timeout), ""
    except MonitorError as exc:
        return None, str(exc)


def ok_to_stop(mon: MonClient | None, daemon: str, timeout: float) -> tuple[bool | None, str]:
    """Ceph's answer (True or False, with its words), or None when it could not be asked."""
    if mon is None:
        return None, "no monitor client (cluster.source = 'none')"
    try:
        answer = mon.ask("osd ok-to-stop", [daemon.removeprefix("osd.")], timeout)
    except MonitorError as exc:
        return None, str(exc)
    return judge(answer)


def judge(answer: Answer) -> tuple[bool | None, str]:
    """Read ``osd ok-to-stop``: JSON on yes and no alike, EBUSY for no, EAGAIN for "cannot tell"."""
    if answer.ret == -errno.EAGAIN:  # PGs of unknown state (no stats yet): Ceph cannot tell
        return None, answer.status.removeprefix("Error EAGAIN: ")
    try:
        said = answer.json("osd ok-to-stop")
    except MonitorError:
        said = None
    if isinstance(said, dict) and isinstance(said.get("ok_to_stop"), bool):
        return said["ok_to_stop"], _words(said, answer.status)
    if answer.ret in {0, -errno.EBUSY}:
        return answer.ret == 0, answer.status or "ok"
    return None, f"error {answer.ret}: {answer.status}"


def _words(said: dict[str, object], status: str) -> str:
    """Ceph's sentence, and which PGs it is about (``unsafe to stop ... (5 PGs ...)``)."""
    words = status.removeprefix("Error EBUSY: ").removeprefix("Error EAGAIN: ")
    words = words or ("ok" if said.get("ok_to_stop") else "not ok")
    pgs = [*_listed(said, "bad_become_inactive"), *_listed(said, "bad_already_inactive")]
    if pgs:
        words += f"; PGs {', '.join(pgs[:5])}{' ...' if len(pgs) > 5 else ''}"
    return words


def _listed(said: dict[str, object], key: str) -> list[str]:
    found = said.get(key)
    return [str(pg) for pg in found] if isinstance(found, list) else []
