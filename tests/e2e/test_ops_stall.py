"""Up, heartbeating, accepting, and serving nothing: an OSD whose op threads are stuck.

osd.1's op worker threads (``tp_osd_tp``) are stopped with ptrace (tests/e2e/faults.py,
StalledThreads); its messenger and heartbeat threads run on, so it accepts connections, its
peers keep it up, and every op queued for it waits. Ceph says nothing for 30 s, then
SLOW_OPS. The watchdog reads the OSD's admin socket: an op that waits while none finishes.
"""

from __future__ import annotations

import statistics
import subprocess
import time

import pytest

from tests.e2e.conftest import ClientIO
from tests.e2e.faults import StalledThreads
from tests.e2e.test_mgr_module import enable_module, health, host, reporting_watch, wait_health
from tests.e2e.test_real_ceph import EVERY_RELEASE, HEALTHY
from tests.e2e.test_remediation import LEAST_PRIVILEGE, RESTART, audit, object_with_primary

pytestmark = pytest.mark.integration

OP_THREADS = ("tp_osd_tp",)
INJECTIONS = 5


def io_pool(ceph) -> None:
    ceph.ceph("osd", "pool", "create", "io", "32")
    ceph.ceph("osd", "pool", "application", "enable", "io", "rbd")
    ceph.wait_clean(120)


# The osd_watchdog module's own checks: what the watchdog says, not Ceph.
OURS = {
    "OSD_ACCEPT_DEAD",
    "OSD_OPS_STUCK",
    "OSD_FD_PRESSURE",
    "OSD_UNREACHABLE",
    "OSD_WATCHDOG_DOWN",
}


def osd_checks(ceph) -> list[str]:
    """The checks Ceph itself raises about OSDs (SLOW_OPS aside: it may say that much)."""
    checks = health(ceph)["checks"]
    return sorted(name for name in checks if name.startswith("OSD_") and name not in OURS)


def stuck_lines(ceph) -> set[str]:
    """The module's "has stuck ops" lines in the recent cluster log (each with its time and
    sequence number: the same line read twice is one, a line logged twice is two)."""
    recent = ceph.ceph("log", "last", "50").splitlines()
    return {line for line in recent if "has stuck ops" in line}


def others(watch, daemon: str = "osd.1") -> list[str]:
    """Every transition of the OSDs that were not touched, after their first healthy."""
    return [t for d in HEALTHY if d != daemon for t in watch.transitions(d)[2:]]


@EVERY_RELEASE
@pytest.mark.timeout(420)
def test_stuck_op_threads_are_caught_in_seconds_and_a_busy_osd_never(ceph, watch_factory, capsys):
    io_pool(ceph)
    enable_module(ceph)
    watch = reporting_watch(watch_factory, ceph)
    watch.wait_states(HEALTHY)
    # Heavy but healthy: two clients writing as fast as they can, and a deep scrub of every
    # PG of osd.1 meanwhile. Ops wait, but they finish: never stalled.
    heavy = [ClientIO(ceph, "io", rate=5000) for _ in range(2)]
    for client in heavy:
        client.start()
    ceph.ceph("osd", "deep-scrub", "1")
    time.sleep(30)  # the load runs for its length
    for client in heavy:
        client.stop()
    assert all(c.errors == [] for c in heavy), [c.errors[:3] for c in heavy]
    busy_ops = sum(c.ops for c in heavy)
    assert busy_ops > 1000
    assert [t for d in HEALTHY for t in watch.transitions(d)[2:]] == []  # after (new), starting

    light = ClientIO(ceph, "io", rate=50)
    light.start()
    detection: list[float] = []
    logged: set[str] = set()
    try:
        for _ in range(INJECTIONS):
            stalled_at = time.monotonic()
            with StalledThreads(ceph.pid("osd.1"), OP_THREADS):
                line, seen = watch.daemon.wait_for_line("osd.1: healthy -> stalled", timeout=30,
                                                        after=stalled_at)  # fmt: skip
                detection.append(seen - stalled_at)
                assert "ops stuck: " in line
                assert "while every listener answers" in line
                # Ceph itself: osd.1 is up, nothing about it but (after 30 s) SLOW_OPS.
                assert osd_checks(ceph) == []
                watch.wait_states({**HEALTHY, "osd.1": "stalled"}, timeout=5)
                if not detection[:-1]:  # the first time: in `ceph health` through the module
                    seen = wait_health(ceph, lambda h: "OSD_OPS_STUCK" in h["checks"], 15,
                                       "OSD_OPS_STUCK")  # fmt: skip
                    check = seen["checks"]["OSD_OPS_STUCK"]
                    assert check["severity"] == "HEALTH_ERR"
                    (detail,) = [d["message"] for d in check["detail"]]
                    assert detail.startswith(f"osd.1 on {host()}: ops stuck: ")
                    assert ", the oldest " in detail
            released = time.monotonic()
            watch.daemon.wait_for_log("osd.1: stalled -> healthy", timeout=30, after=released)
            # Read while it is recent (the log keeps only the last entries of a channel).
            before = len(logged)
            ceph.wait(lambda: len(logged.union(stuck_lines(ceph))) > before, 15, "the log line")  # noqa: B023 - called at once, in this iteration
            logged |= stuck_lines(ceph)
    finally:
        light.stop()
    assert light.errors == []
    assert others(watch) == []
    wait_health(ceph, lambda h: "OSD_OPS_STUCK" not in h["checks"], 30, "the check cleared")
    assert "OSD_OPS_STUCK" not in health(ceph)["checks"]
    assert len(logged) == INJECTIONS, sorted(logged)  # each verdict once in the cluster log
    shown = ", ".join(f"{d:.2f}" for d in detection)
    with capsys.disabled():
        print(  # noqa: T201 - the figures go in the README
            f"\nstuck ops, Ceph {ceph.release.number} ({ceph.release.deployment}): detected in "
              f"median {statistics.median(detection):.2f}s, max {max(detection):.2f}s over "
              f"{len(detection)} injections ({shown}); {busy_ops} ops in 30 s of heavy writes "
              "and a deep scrub: 0 transitions"
        )  # fmt: skip
    assert statistics.median(detection) <= 5.0


@EVERY_RELEASE
@pytest.mark.timeout(300)
def test_a_stalled_osd_is_remediated_and_the_write_that_hung_on_it_completes(
    ceph, watch_factory, capsys
):
    io_pool(ceph)
    keyring = ceph.client_key("client.osd-watchdog", *LEAST_PRIVILEGE)
    act = {"dry_run": False, "restart_command": [*RESTART, str(ceph.root), "{id}"]}
    watch = watch_factory(ceph, act=act, client_name="client.osd-watchdog", keyring=str(keyring))
    watch.wait_states(HEALTHY)
    name = object_with_primary(ceph, "io", "osd.1")
    payload = ceph.root / "payload"
    payload.write_bytes(b"z" * 4096)
    old_pid = ceph.pid("osd.1")
    stall = StalledThreads(old_pid, OP_THREADS)
    try:
        stalled_at = time.monotonic()
        rados = ceph.release.command(ceph.root, ["rados", "-c", str(ceph.conf), "-p", "io",
                                                 "put", name, str(payload)])  # fmt: skip
        writer = subprocess.Popen(rados, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        watch.daemon.wait_for_log("osd.1: healthy -> stalled", timeout=30, after=stalled_at)
        assert writer.poll() is None  # the write hangs on the stalled OSD
        _, done = writer.communicate(timeout=120)  # the fence fails its PGs over
        written = time.monotonic() - stalled_at
        assert writer.returncode == 0, done
        watch.daemon.wait_for_log("osd.1: unfence done", timeout=120, after=stalled_at)
    finally:
        stall.release()
    steps = [r["step"] for r in audit(watch) if r.get("result") == "done"]
    assert steps == ["fence", "restart", "verify", "unfence"]
    assert ceph.pid("osd.1") != old_pid
    ceph.wait(lambda: watch.states() == HEALTHY, 60, "osd.1 back, healthy")
    with capsys.disabled():
        print(  # noqa: T201
            f"\nstuck ops remediated, Ceph {ceph.release.number}: the write that hung "
              f"completed {written:.1f}s after the stall"
        )  # fmt: skip
