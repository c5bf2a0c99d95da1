"""The test cluster's own way to restart an OSD, as the watchdog's act.restart_command runs it.

    python -m tests.e2e.restart_osd CLUSTER_ROOT OSD_ID [DOWN_SECONDS]

Stops the running ceph-osd (pid from its pid file) and starts a new one in the background,
detached, as systemd would. CephCluster.stop() ends it by its pid file. DOWN_SECONDS keeps it
stopped that long first: a slow restart, for tests that need one in progress.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main(root: Path, osd_id: str, down_seconds: float = 0.0) -> int:
    conf = root / "ceph.conf"
    pid_file = root / "run" / f"osd.{osd_id}.pid"
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        pid = None
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)  # a helper process waiting for another one; bounded
    time.sleep(down_seconds)  # the slow restart asked for
    log = (root / "log" / f"osd.{osd_id}.stdout").open("ab")
    subprocess.Popen(
        ["ceph-osd", "-f", "-c", str(conf), "-i", osd_id],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2], *(float(a) for a in sys.argv[3:4])))
