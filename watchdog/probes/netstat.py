"""Probe stage, host: the kernel's count of connections dropped by full accept queues.

One number for the whole host (``TcpExt: ListenOverflows``): it rises when some listener's
accept queue overflows, which is what an OSD that stopped accepting does to its clients.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from watchdog.host import procfs
from watchdog.model import ProbeRun

if TYPE_CHECKING:
    from pathlib import Path


def listen_overflows(proc_root: Path) -> tuple[int | None, ProbeRun]:
    """The counter (None when this kernel has none) and how reading it went.

    A read that fails is that probe's failure (``probe_run_success{probe="netstat"}``),
    never a metric that silently vanishes.
    """
    started = time.monotonic()
    try:
        found = procfs.listen_overflows(proc_root)
    except (OSError, ValueError) as exc:
        return None, ProbeRun("netstat", time.monotonic() - started, str(exc))
    return found, ProbeRun("netstat", time.monotonic() - started)
