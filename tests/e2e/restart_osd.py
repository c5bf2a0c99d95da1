"""The test cluster's own way to restart an OSD, as the watchdog's act.restart_command runs it.

    python -m tests.e2e.restart_osd CLUSTER_ROOT OSD_ID [DOWN_SECONDS [FSID]]

Stops the running ceph-osd (found by its cluster's mark, bare or in a container; SIGTERM, and
SIGKILL 10 s later if it is still there) and starts a new one the same way, in the
background, detached, as systemd would. CephCluster.stop() ends
it by the same mark. DOWN_SECONDS keeps it stopped that long first: a slow restart, for tests
that need one in progress. FSID, when given, must be the cluster's (the watchdog's {fsid}, as
cephadm's unit names hold it): a wrong one restarts nothing and fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path

from tests.e2e.cluster import daemon_pids, spawn

KILL_AFTER = 10.0  # seconds from SIGTERM to SIGKILL


def _alive(pid: int) -> bool:
    """Still running (a zombie process waiting for its parent counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(root: Path, osd_id: str, down_seconds: float = 0.0, fsid: str | None = None) -> int:
    name = f"osd.{osd_id}"
    meta = json.loads((root / "cluster.json").read_text())
    if fsid is not None and fsid != meta["fsid"]:
        print(f"fsid {fsid} is not this cluster's ({meta['fsid']})", file=sys.stderr)  # noqa: T201
        return 2
    for pid in daemon_pids(meta["fsid"], name):
        # SIGTERM, then SIGKILL if it will not end, as systemd does after TimeoutStopSec: an
        # OSD whose op threads are stuck cannot finish its shutdown.
        for sig, grace in ((signal.SIGTERM, KILL_AFTER), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)  # a helper process waiting for another one; bounded
            if not _alive(pid):
                break
    time.sleep(down_seconds)  # the slow restart asked for
    spawn(root, meta["fsid"], meta["daemons"][name], name, start_new_session=True)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    down = float(args[2]) if len(args) > 2 else 0.0
    sys.exit(main(Path(args[0]), args[1], down, args[3] if len(args) > 3 else None))
