"""Remediation on a real Ceph cluster: fence, restart, verify, unfence; dry-run; nodown; keys."""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time

import pytest

from tests.e2e.test_mgr_module import enable_module
from tests.e2e.test_real_ceph import EVERY_RELEASE, HEALTHY, map_says_up, mute_public
from watchdog.act.steps import Incident, fence
from watchdog.config import parse_config
from watchdog.errors import StepError
from watchdog.monitor import CliClient, load_rados

pytestmark = pytest.mark.integration

# What the README tells operators to create: read the maps, fence, unfence, and ask the mgr
# whether an OSD may stop; nothing else.
LEAST_PRIVILEGE = (
    "mon",
    'allow r, allow command "osd down", allow command "osd add-noup", allow command "osd rm-noup"',
    "mgr",
    'allow command "osd ok-to-stop"',
)
STEPS = ("fence", "restart", "verify", "unfence")
RESTART = [sys.executable, "-m", "tests.e2e.restart_osd"]  # + the cluster's root and "{id}"


def osd_entry(cluster, daemon: str) -> dict:
    dump = cluster.ceph_json("osd", "dump")
    return next(o for o in dump["osds"] if f"osd.{o['osd']}" == daemon)


def object_with_primary(cluster, pool: str, daemon: str) -> str:
    """An object name whose PG has ``daemon`` as its acting primary."""
    for n in range(500):
        mapping = cluster.ceph_json("osd", "map", pool, f"obj-{n}")
        if f"osd.{mapping['acting_primary']}" == daemon:
            return f"obj-{n}"
    pytest.fail(f"no object maps to {daemon}")


def audit(watch) -> list[dict]:
    path = watch.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def pool(cluster) -> None:
    cluster.ceph("osd", "pool", "create", "io", "16")
    cluster.wait(lambda: "active+clean" in cluster.ceph("pg", "stat"), 60, "PGs active+clean")


def write_in_background(ioctx, name: str) -> tuple[threading.Thread, list[float]]:
    """Start one 4 KiB write; the list gets its completion time."""
    finished: list[float] = []

    def write() -> None:
        ioctx.write_full(name, b"y" * 4096)
        finished.append(time.monotonic())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer, finished


@pytest.mark.timeout(480)  # five whole remediations, one after another
def test_a_fence_lets_a_write_hanging_on_the_zombie_complete(ceph, watch_factory, capsys):
    pool(ceph)
    keyring = ceph.client_key("client.osd-watchdog", *LEAST_PRIVILEGE)
    act = {"dry_run": False, "restart_command": [*RESTART, str(ceph.root), "{id}"],
           "cooldown_seconds": 0.0, "max_actions_per_hour": 100}  # fmt: skip
    watch = watch_factory(
        ceph, act=act, source="rados", client_name="client.osd-watchdog", keyring=str(keyring)
    )
    watch.wait_states(HEALTHY)
    rados = load_rados()
    assert rados is not None
    measured: list[float] = []
    fences: list[float] = []
    for run in range(5):
        daemon = f"osd.{run % 3}"
        ceph.wait_clean()
        name = object_with_primary(ceph, "io", daemon)
        # A new client each run: one that already holds a session with the OSD keeps using
        # it (the zombie serves established connections), and the point is a fresh one.
        handle = rados.Rados(conffile=str(ceph.conf), conf={"keyring": str(ceph.keyring)})
        handle.connect()
        ioctx = handle.open_ioctx("io")
        try:
            faulted = time.monotonic()
            mute_public(ceph, daemon)
            # The client must connect to the primary's public port: nobody accepts it now.
            writer, finished = write_in_background(ioctx, name)
            _, detected = watch.daemon.wait_for_line(f"{daemon}: suspect -> zombie", after=faulted)
            _, fenced = watch.daemon.wait_for_line(f"{daemon}: fence done", 30, after=faulted)
            fences.append(fenced - faulted)
            writer.join(timeout=60)
            assert finished, f"run {run}: the write never completed after the fence"
            assert finished[0] > detected  # it hung on the zombie until the fence, not before
            measured.append(finished[0] - faulted)
            watch.daemon.wait_for_log(f"{daemon}: unfence done", timeout=90, after=faulted)
            watch.wait_states(HEALTHY, timeout=60)
        finally:
            ioctx.close()
            handle.shutdown()
    records = audit(watch)
    started = [r for r in records if r["result"] == "started"]
    assert len(started) == 5
    assert all(r["evidence"].startswith("client accept path dead") for r in started)
    assert [r for r in records if r["result"] in {"failed", "refused"}] == []
    assert not {o for o in ceph.ceph_json("osd", "dump")["osds"] if "noup" in o["state"]}
    with capsys.disabled():
        print(  # noqa: T201 - the measurement is the point: it goes in the README
            f"\nfault to completed write, through a fence, over {len(measured)} runs: "
            f"{min(measured):.1f}-{max(measured):.1f}s "
            f"(median {statistics.median(measured):.1f}s: "
            f"{', '.join(f'{x:.1f}' for x in measured)}); fault to fence done: "
            f"{min(fences):.1f}-{max(fences):.1f}s"
        )


@EVERY_RELEASE
def test_fence_restart_verify_unfence_leaves_the_osd_up_in_and_healthy(ceph, watch_factory):
    # {fsid} as a cephadm unit name holds it, from the monitors; the helper checks it.
    restart = [*RESTART, str(ceph.root), "{id}", "0", "{fsid}"]
    enable_module(ceph)  # each step goes to the cluster log too, reported through librados
    watch = watch_factory(
        ceph,
        act={"dry_run": False, "restart_command": restart},
        sections={"report": {"enabled": True, "interval_seconds": 2.0, "keepalive_seconds": 2.0}},
        source="rados",
    )
    watch.wait_states(HEALTHY)
    ceph.wait_clean()
    started = time.monotonic()
    old_pid, _ = mute_public(ceph, "osd.2")
    for step in ("fence", "restart", "verify", "unfence"):
        watch.daemon.wait_for_log(f"osd.2: {step} done", timeout=90, after=started)
    logged = "remediation of osd.2: step unfence done"
    ceph.wait(lambda: logged in ceph.ceph("log", "last", "200"), 30, "the steps in the log")
    lines = [ln for ln in ceph.ceph("log", "last", "200").splitlines() if "osd-watchdog on" in ln]
    for what in ("is a zombie", ") started", *(f"step {s} done" for s in STEPS)):
        assert len([ln for ln in lines if what in ln]) == 1, (what, lines)
    ceph.wait(lambda: osd_entry(ceph, "osd.2")["up"], 60, "osd.2 up again")
    entry = osd_entry(ceph, "osd.2")
    assert entry["in"]
    assert "noup" not in entry["state"]
    watch.wait_states(HEALTHY, timeout=60)
    metrics = watch.metrics()
    assert metrics.get("osd_watchdog_fenced", []) == []
    totals = {labels["result"]: value for labels, value in metrics["osd_watchdog_actions_total"]}
    assert totals == {"done": 1.0}
    assert (watch.state_dir / "fences.json").read_text().strip() == "{}"
    new_pid = ceph.pid("osd.2")
    assert new_pid != old_pid


def test_dry_run_changes_nothing_in_the_cluster(ceph, watch_factory):
    watch = watch_factory(ceph, source="rados")  # dry_run is the default
    watch.wait_states(HEALTHY)
    ceph.wait_clean()  # a dry run asks ok-to-stop too, and Ceph cannot judge unknown PGs
    injected = time.monotonic()
    mute_public(ceph, "osd.0")
    line = watch.daemon.wait_for_log(
        "osd.0: dry-run: would fence osd.0", timeout=20, after=injected
    )
    assert "ceph osd add-noup osd.0; ceph osd down 0" in line
    threading.Event().wait(3)  # a few more cycles: still nothing may happen
    entry = osd_entry(ceph, "osd.0")
    assert entry["up"]
    assert "noup" not in entry["state"]
    assert [r["result"] for r in audit(watch)] == ["dry_run"]
    totals = watch.metrics()["osd_watchdog_actions_total"]
    assert [(labels["result"], value) for labels, value in totals] == [("dry_run", 1.0)]


def test_a_nodown_flag_means_nothing_is_done_and_says_why(ceph, watch_factory):
    ceph.ceph("osd", "add-nodown", "osd.1")
    watch = watch_factory(ceph, act={"dry_run": False}, source="rados")
    watch.wait_states(HEALTHY)
    ceph.wait_clean()
    injected = time.monotonic()
    mute_public(ceph, "osd.1")
    line = watch.daemon.wait_for_log("osd.1: not acting", timeout=20, after=injected)
    assert "nodown: osd.1 has the nodown flag" in line
    assert map_says_up(ceph, "osd.1")
    watch.wait_sample("osd_watchdog_guard_refusals_total", ({"guard": "nodown"}, 1.0))
    assert watch.metrics()["osd_watchdog_guard_refusals_total"] == [({"guard": "nodown"}, 1.0)]
    assert audit(watch)[0]["guard"].startswith("nodown")


def test_a_wrong_key_or_a_missing_keyring_fails_the_fence_clearly(ceph, tmp_path):
    wrong = tmp_path / "wrong.keyring"
    wrong.write_text("[client.osd-watchdog]\n\tkey = AQBWcFdjAAAAABAAl5PB0SclbYkpldk6H9+wKQ==\n")
    ceph.client_key("client.osd-watchdog", *LEAST_PRIVILEGE)
    event = Incident("osd.1", "zombie", "test", None, time.time())
    for keyring in (wrong, tmp_path / "missing.keyring"):
        cluster = parse_config(
            {
                "cluster": {
                    "source": "cli",
                    "conf": str(ceph.conf),
                    "keyring": str(keyring),
                    "client_name": "client.osd-watchdog",
                }
            }
        ).cluster
        with pytest.raises(StepError, match=r"osd add-noup exited \d+"):
            fence(CliClient(cluster)).run(event, timeout=8)
    # And a key that may only read the maps is refused the fence, by Ceph.
    read_only = ceph.client_key("client.reader", "mon", "allow r")
    cluster = parse_config(
        {"cluster": {"source": "cli", "conf": str(ceph.conf), "keyring": str(read_only),
                     "client_name": "client.reader"}}
    ).cluster  # fmt: skip
    with pytest.raises(
        StepError, match=r"osd add-noup exited \d+: .*(Permission denied|EACCES|access denied)"
    ):
        fence(CliClient(cluster)).run(event, timeout=8)
    assert map_says_up(ceph, "osd.1")


def fence_left_behind(ceph, state_dir, daemon: str, pid: int) -> None:
    """What an earlier watchdog leaves when it stops between fence and unfence."""
    ceph.ceph("osd", "add-noup", daemon)
    ceph.ceph("osd", "down", daemon.removeprefix("osd."))
    ceph.wait(lambda: not osd_entry(ceph, daemon)["up"], 30, f"{daemon} down")
    state_dir.mkdir(parents=True)
    fences = {daemon: {"since": time.time() - 60, "pid": pid}}
    (state_dir / "fences.json").write_text(json.dumps(fences))


def test_a_fence_left_by_an_earlier_run_is_verified_and_lifted_once_restarted(
    ceph, watch_factory, tmp_path
):
    # The earlier run fenced osd.1 and restarted it (the pid it recorded is gone), then stopped.
    fence_left_behind(ceph, tmp_path / "watch0" / "state", "osd.1", pid=1)
    watch = watch_factory(ceph, act={"dry_run": False}, source="rados")
    watch.daemon.wait_for_log("osd.1: resuming the remediation an earlier run left fenced")
    for step in ("verify", "unfence"):
        watch.daemon.wait_for_log(f"osd.1: {step} done", timeout=60)
    ceph.wait(lambda: osd_entry(ceph, "osd.1")["up"], 60, "osd.1 up again")
    assert "noup" not in osd_entry(ceph, "osd.1")["state"]
    assert json.loads((watch.state_dir / "fences.json").read_text()) == {}
    watch.wait_states(HEALTHY, timeout=60)


def test_a_fence_left_on_a_process_never_restarted_stays_until_it_is(ceph, watch_factory, tmp_path):
    # The earlier run stopped right after the fence: the zombie process is the same one.
    fence_left_behind(ceph, tmp_path / "watch0" / "state", "osd.1", pid=ceph.pid("osd.1"))
    act = {"dry_run": False, "step_timeout_seconds": 3.0}
    watch = watch_factory(ceph, act=act, source="rados")
    line = watch.daemon.wait_for_log("osd.1: verify failed", timeout=30)
    assert "(it stays fenced: noup is set)" in line
    assert "noup" in osd_entry(ceph, "osd.1")["state"]
    assert "osd.1" in json.loads((watch.state_dir / "fences.json").read_text())
    watch.wait_sample("osd_watchdog_fenced", ({"ceph_daemon": "osd.1"}, 1.0))
