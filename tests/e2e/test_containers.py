"""The DaemonSet case: the watchdog itself in a container that shares only the host's PID
namespace, as uid 167 with no capability at all, watching cephadm-style OSD containers.

The watchdog runs in mount, UTS and IPC namespaces of its own with a /proc of its own mount
(``unshare --mount-proc``: what a container runtime gives a ``hostPID`` pod), as uid/gid 167,
every capability dropped from its bounding set and no_new_privs set (``setpriv``). Its image
has no Ceph client, so the map source is ``none``: judged from local evidence alone, which is
what the shipped DaemonSet does when nothing else is configured.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Watch
from tests.e2e.releases import CEPH_UID
from tests.e2e.test_real_ceph import HEALTHY, mute_public

pytestmark = pytest.mark.integration


def contained(uid: int, caps: tuple[str, ...] = ()) -> list[str]:
    """The watchdog as a hostPID pod runs it: as ``uid``, with only ``caps`` ("SYS_ADMIN")."""
    bounding = ",".join(["-all", *(f"+{c.lower()}" for c in caps)])
    return [
        "unshare", "--mount", "--uts", "--ipc", "--mount-proc", "--",
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", f"--bounding-set={bounding}", "--no-new-privs", "--",
    ]  # fmt: skip


def contained_watch(ceph, uid: int) -> tuple[Watch, Path]:
    # Its files where the uid may read and write them (pytest's tmp_path is root's, 0700).
    workdir = Path(tempfile.mkdtemp(prefix="wd-", dir="/tmp"))
    os.chown(workdir, uid, uid)
    watch = Watch(ceph, workdir / "w", prefix=contained(uid), source="none")
    os.chown(workdir / "w", uid, uid)
    return watch, workdir


@pytest.mark.releases("18", "20")
def test_a_watchdog_in_a_container_as_uid_167_without_capabilities_catches_a_zombie(ceph):
    watch, workdir = contained_watch(ceph, CEPH_UID)
    try:
        watch.wait_states(HEALTHY)
        status = Path(f"/proc/{watch.daemon.proc.pid}/status").read_text()
        assert f"Uid:\t{CEPH_UID}\t{CEPH_UID}" in status
        assert "CapEff:\t0000000000000000" in status
        assert "CapBnd:\t0000000000000000" in status
        metrics = watch.metrics()
        fds = {labels["ceph_daemon"]: v for labels, v in metrics["osd_watchdog_osd_open_fds"]}
        assert set(fds) == set(HEALTHY)
        assert all(v > 10 for v in fds.values()), fds
        injected = time.monotonic()
        mute_public(ceph, "osd.1")
        line = watch.daemon.wait_for_log("osd.1: suspect -> zombie", timeout=15, after=injected)
        assert "heartbeats still flow" in line
        watch.wait_states({"osd.0": "healthy", "osd.1": "zombie", "osd.2": "healthy"}, timeout=5)
        heartbeats = {
            labels["ceph_daemon"]: v
            for labels, v in watch.metrics()["osd_watchdog_osd_heartbeat_connections"]
        }
        assert heartbeats["osd.1"] > 0
    finally:
        watch.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.releases("20")
def test_in_a_container_of_another_uid_every_osd_is_unobservable_and_says_why(ceph):
    # The DaemonSet's runAsUser must be the OSDs' uid: with any other, nothing is judged.
    watch, workdir = contained_watch(ceph, 65534)
    try:
        watch.wait_states(dict.fromkeys(HEALTHY, "unobservable"))
        line = watch.daemon.wait_for_log("osd.1: starting -> unobservable")
        assert f"access denied reading /proc/{ceph.pid('osd.1')}/fd (it runs as uid 167)" in line
    finally:
        watch.stop()
        shutil.rmtree(workdir, ignore_errors=True)
