"""The osd_watchdog mgr module on a real cluster: a zombie in `ceph health`, and back.

The mgr loads our module from the repository (tests/e2e/cluster.py puts it beside Ceph's own
modules in the mgr's module path, as an operator's install does). The watchdog reports with
the least-privileged key the README documents.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import require_tool
from tests.e2e.conftest import require_ceph, throwaway_cluster
from tests.e2e.faults import nofile_limits, set_nofile_soft, unmute_listeners
from tests.e2e.netns import Vantages
from tests.e2e.test_real_ceph import EVERY_RELEASE, HEALTHY, mute_public, public_ports
from tests.process import unused_port
from watchdog.config import ClusterConfig
from watchdog.monitor import RadosClient, load_rados

pytestmark = pytest.mark.integration

REPORT_EVERY = 2.0
MAX_AGE = 8  # the module's max_report_age in these tests


def enable_module(ceph, *, prometheus_port: int | None = None) -> None:
    ceph.wait_mgr_module("osd_watchdog")
    ceph.ceph("config", "set", "mgr", "mgr/osd_watchdog/max_report_age", str(MAX_AGE))
    if prometheus_port is not None:
        ceph.ceph("config", "set", "mgr", "mgr/prometheus/server_addr", "127.0.0.1")
        ceph.ceph("config", "set", "mgr", "mgr/prometheus/server_port", str(prometheus_port))
        ceph.ceph("mgr", "module", "enable", "prometheus")
    ceph.ceph("mgr", "module", "enable", "osd_watchdog")
    # Enabling a module restarts the mgr; the command answers once the module is loaded.
    ceph.wait(lambda: _status_or_none(ceph) is not None, 60, "the osd_watchdog module")


def _status_or_none(ceph):
    try:
        return ceph.ceph_json("osd-watchdog", "status")
    except Exception:  # noqa: BLE001 - not loaded yet: the caller polls
        return None


def reporter_key(ceph):
    """The watchdog's key: read the maps, report, read the module's status; nothing else."""
    keyring = ceph.root / "osd-watchdog.keyring"
    ceph.ceph(
        "auth", "get-or-create", "client.osd-watchdog",
        "mon", "allow r",
        "mgr", 'allow command "osd-watchdog report", allow command "osd-watchdog status"',
        "-o", str(keyring),
    )  # fmt: skip
    return keyring


def reporting_watch(watch_factory, ceph, assess=None):
    return watch_factory(
        ceph,
        sections={
            # An unchanged report every REPORT_EVERY too: the module's age limit (MAX_AGE)
            # is set short so that a silent watchdog shows in seconds.
            "report": {
                "enabled": True,
                "interval_seconds": REPORT_EVERY,
                "keepalive_seconds": REPORT_EVERY,
            },
            "assess": assess or {},
        },
        source="cli",
        client_name="client.osd-watchdog",
        keyring=str(reporter_key(ceph)),
    )


def health(ceph) -> dict:
    return json.loads(ceph.ceph("health", "detail", "-f", "json"))


def wait_health(ceph, predicate, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    seen: dict = {}
    while time.monotonic() < deadline:
        seen = health(ceph)
        if predicate(seen):
            return seen
        time.sleep(0.25)  # bounded by the deadline
    pytest.fail(f"{what} never happened: {json.dumps(seen.get('checks', {}))}")


OURS = frozenset({"OSD_ACCEPT_DEAD", "OSD_FD_PRESSURE", "OSD_UNREACHABLE", "OSD_WATCHDOG_DOWN"})


def quiet(health: dict) -> bool:
    """None of the module's checks is raised. What a test waits for instead of HEALTH_OK: a
    fresh cluster's own warnings (POOL_APP_NOT_ENABLED for .mgr on Reef) are not about it."""
    return not OURS & set(health["checks"])


def host() -> str:
    return socket.gethostname().split(".", 1)[0]


@EVERY_RELEASE
def test_a_zombie_turns_ceph_health_to_osd_accept_dead_and_back(ceph, watch_factory):
    prometheus_port = unused_port()
    enable_module(ceph, prometheus_port=prometheus_port)
    watch = reporting_watch(watch_factory, ceph)
    watch.wait_states(HEALTHY)
    wait_health(ceph, quiet, 60, "no osd-watchdog check with reports in")

    injected = time.monotonic()
    pid, muted_fds = mute_public(ceph, "osd.1")
    line, verdict_at = watch.daemon.wait_for_line(
        "osd.1: suspect -> zombie", timeout=15, after=injected
    )
    seen = wait_health(
        ceph, lambda h: "OSD_ACCEPT_DEAD" in h["checks"], 15, "OSD_ACCEPT_DEAD raised"
    )
    raised = time.monotonic()
    check = seen["checks"]["OSD_ACCEPT_DEAD"]
    assert seen["status"] == "HEALTH_ERR"
    assert check["severity"] == "HEALTH_ERR"
    assert check["summary"]["message"] == "1 OSD(s) up but refusing client connections"
    (detail,) = [d["message"] for d in check["detail"]]
    assert detail.startswith(f"osd.1 on {host()}: ")
    assert "the OSD map still says up" in detail
    # Within one report interval of the verdict (a state change reports at once).
    assert raised - verdict_at <= REPORT_EVERY + 1.5, (raised - verdict_at, line)
    print(  # noqa: T201 - the measurement goes in the README
        f"fault to OSD_ACCEPT_DEAD in ceph health: {raised - injected:.2f}s "
        f"(verdict {verdict_at - injected:.2f}s, report and check {raised - verdict_at:.2f}s)"
    )

    # The mgr's own prometheus module exports it, so ceph-mixin style alerts see it too.
    def exported() -> bool:
        try:
            text = requests.get(f"http://127.0.0.1:{prometheus_port}/metrics", timeout=10).text
        except requests.RequestException:
            return False  # the module's server (re)starting: a mgr restarts to enable modules
        return 'ceph_health_detail{name="OSD_ACCEPT_DEAD",severity="HEALTH_ERR"} 1.0' in text

    ceph.wait(exported, 30, "ceph_health_detail for OSD_ACCEPT_DEAD")

    # The cluster log has the verdict once, with the host and the cause.
    ceph.wait(lambda: "is a zombie" in ceph.ceph("log", "last", "50"), 15, "the verdict in the log")
    logged = [ln for ln in ceph.ceph("log", "last", "100").splitlines() if "is a zombie" in ln]
    assert len(logged) == 1, "\n".join(ln[:90] for ln in logged)
    assert f"osd-watchdog on {host()}: osd.1 is a zombie: " in logged[0]

    # Remediation is in dry run (the default): its decision is in the cluster log too, once.
    ceph.wait(
        lambda: (
            "would remediate osd.1" in ceph.ceph("log", "last", "100")
            or "remediation of osd.1 refused" in ceph.ceph("log", "last", "100")
        ),
        15,
        "the remediation decision in the log",
    )

    # The cluster-wide view, from the module and from our own CLI.
    rows = {r["osd"]: r for r in ceph.ceph_json("osd-watchdog", "status")}
    assert rows["osd.1"]["state"] == "zombie"
    assert rows["osd.1"]["host"] == host()
    assert rows["osd.0"]["state"] == "healthy"
    assert rows["osd.1"]["report_age"] <= MAX_AGE
    ours = subprocess.run(
        [sys.executable, "-m", "watchdog", "status", "-c", str(watch.config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ours.returncode == 0, ours.stderr
    (line,) = [ln for ln in ours.stdout.splitlines() if ln.startswith("osd.1 ")]
    assert line.split()[1:4] == [host(), "up", "zombie"]

    # Muted like any of Ceph's own checks.
    ceph.ceph("health", "mute", "OSD_ACCEPT_DEAD")

    def muted(h: dict) -> bool:  # a muted check no longer makes the status HEALTH_ERR
        return h["checks"]["OSD_ACCEPT_DEAD"].get("muted") is True and h["status"] != "HEALTH_ERR"

    wait_health(ceph, muted, 15, "OSD_ACCEPT_DEAD muted")
    ceph.ceph("health", "unmute", "OSD_ACCEPT_DEAD")

    unmute_listeners(pid, muted_fds)
    wait_health(ceph, lambda h: "OSD_ACCEPT_DEAD" not in h["checks"], 30, "the check cleared")
    assert quiet(health(ceph))
    # Still once: later reports did not log it again.
    logged = [ln for ln in ceph.ceph("log", "last", "200").splitlines() if "is a zombie" in ln]
    assert len(logged) == 1, logged

    # The module paces the watchdogs' unchanged reports: one host at keepalive_rate 0.1 a
    # second (the option's least) is asked for one every 10 s (longer than this watchdog's
    # 2 s), and the watchdog keeps to it and says so.
    ceph.ceph("config", "set", "mgr", "mgr/osd_watchdog/keepalive_rate", "0.1")
    watch.wait_sample("osd_watchdog_mgr_report_keepalive_seconds", ({}, 10.0), 30)
    assert watch.daemon.wait_for_line("the mgr module asks for an unchanged report every 10s")


def test_a_silent_watchdog_raises_osd_watchdog_down(ceph, watch_factory):
    enable_module(ceph)
    watch = reporting_watch(watch_factory, ceph)
    watch.wait_states(HEALTHY)
    wait_health(ceph, quiet, 60, "no osd-watchdog check with reports in")
    watch.stop()
    stopped = time.monotonic()
    seen = wait_health(
        ceph, lambda h: "OSD_WATCHDOG_DOWN" in h["checks"], MAX_AGE + 15, "OSD_WATCHDOG_DOWN"
    )
    assert time.monotonic() - stopped >= MAX_AGE - REPORT_EVERY  # not before the age limit
    check = seen["checks"]["OSD_WATCHDOG_DOWN"]
    assert check["severity"] == "HEALTH_WARN"
    (detail,) = [d["message"] for d in check["detail"]]
    assert detail.startswith(f"{host()}: no watchdog report since ")
    assert "3 OSD(s) up: osd.0, osd.1, osd.2" in detail


def settled_reports(watch, quiet: float = 3.0, timeout: float = 30) -> float:
    """The watchdog's report count once no report has been made for ``quiet`` seconds.

    The module raises a check while the reporting CLI child is still exiting (slowly, on a
    loaded host), and the verdict's events can follow in a report of their own.
    """

    def count() -> float:
        return watch.metrics()["osd_watchdog_mgr_reports_total"][0][1]

    deadline = time.monotonic() + timeout
    last, since = count(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)  # bounded by the deadline
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return last
    pytest.fail(f"the watchdog kept reporting for {timeout:g}s (at {last:g} reports)")


def test_a_mgr_failover_keeps_the_check(ceph, watch_factory):
    ceph.add_mgr("y")
    ceph.wait(lambda: ceph.ceph_json("mgr", "dump")["standbys"], 60, "a standby mgr")
    enable_module(ceph)
    watch = watch_factory(
        ceph,
        # Reports only at a state change, or every 60 s: the standby must raise the check
        # from what the active one kept, not from a fresh report.
        sections={"report": {"enabled": True, "interval_seconds": 60.0, "keepalive_seconds": 60.0}},
        source="cli",
        client_name="client.osd-watchdog",
        keyring=str(reporter_key(ceph)),
    )
    ceph.ceph("config", "set", "mgr", "mgr/osd_watchdog/max_report_age", "300")
    watch.wait_states(HEALTHY)
    injected = time.monotonic()
    mute_public(ceph, "osd.1")
    watch.daemon.wait_for_line("osd.1: suspect -> zombie", timeout=15, after=injected)
    wait_health(ceph, lambda h: "OSD_ACCEPT_DEAD" in h["checks"], 15, "OSD_ACCEPT_DEAD")
    reports_before = settled_reports(watch)

    active = ceph.ceph_json("mgr", "dump")["active_name"]
    ceph.ceph("mgr", "fail", active)
    ceph.wait(
        lambda: (
            (dump := ceph.ceph_json("mgr", "dump"))["active_name"] not in {"", active}
            and dump["available"]
        ),
        60,
        "the standby taking over",
    )
    # The monitors keep the old mgr's checks until the new one's first health report, sent
    # once its OSDs have reported to it (measured: with the store emptied before the failover
    # the check is gone 2.5 s after). So the check must hold for longer than that, every time
    # it is looked at.
    held_until = time.monotonic() + 8
    while time.monotonic() < held_until:
        seen = health(ceph)
        assert "OSD_ACCEPT_DEAD" in seen["checks"], seen["checks"]
        time.sleep(0.5)  # bounded by held_until
    assert "osd.1 on " in seen["checks"]["OSD_ACCEPT_DEAD"]["detail"][0]["message"]
    rows = {r["osd"]: r for r in ceph.ceph_json("osd-watchdog", "status")}
    assert rows["osd.1"]["state"] == "zombie"  # the new active module has it, from the store
    # No report reached the new mgr in between: it raised the check from the store.
    assert watch.metrics()["osd_watchdog_mgr_reports_total"][0][1] == reports_before


def send_report(ceph, key, body: str) -> subprocess.CompletedProcess[str]:
    """``ceph osd-watchdog report -i -`` with the watchdog's own key."""
    return subprocess.run(
        ["ceph", "-c", str(ceph.conf), "--name", "client.osd-watchdog", "--keyring", str(key),
         "osd-watchdog", "report", "-i", "-"],
        input=body, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def zombie_report(host_name: str, since: object = None) -> dict:
    return {
        "version": 1,
        "host": host_name,
        "watchdog": f"osd-watchdog on {host_name}",
        "interval": 10,
        "osds": [
            {
                "daemon": "osd.1",
                "state": "zombie",
                "since": time.time() if since is None else since,
                "cause": "made up",
                "open_fds": None,
                "max_fds": None,
                "fd_exhaustion_seconds": None,
            }
        ],
        "events": [],
    }


def test_hostile_reports_are_refused_change_nothing_and_the_module_goes_on(ceph):
    """Reports a key holding the report cap could send: another host's OSD, a host the map
    does not have (a thousand of them), numbers Python's JSON parser takes but are not
    numbers. Each is refused naming why, nothing of them is kept, and the module still
    judges the real host's report."""
    enable_module(ceph)
    key = reporter_key(ceph)
    intruder = send_report(ceph, key, json.dumps(zombie_report("some-other-host")))
    assert intruder.returncode != 0
    assert "no OSD in the OSD map is on some-other-host" in intruder.stderr
    for body, reason in [
        (json.dumps(zombie_report(host())).replace('"since": ', '"since": NaN, "x": '),
         "osds[0]: since must be a finite number"),
        (json.dumps(zombie_report(host(), since=1.0)).replace("1.0", "Infinity"),
         "osds[0]: since must be a finite number"),
        (json.dumps({**zombie_report(host()), "interval": -1}), "interval must be a finite"),
        (json.dumps({**zombie_report(host()), "osds": [{"daemon": "osd.x"}]}),
         "osds[0]: daemon 'osd.x' is not osd.N"),
    ]:  # fmt: skip
        sent = send_report(ceph, key, body)
        assert sent.returncode != 0, body
        assert reason in sent.stderr
    # A thousand hosts the map does not have, through librados (a CLI child each is slow).
    rados = load_rados()
    assert rados is not None  # the cluster's own binding: require_ceph made sure
    client = RadosClient(
        ClusterConfig(conf=ceph.conf, keyring=key, client_name="client.osd-watchdog"), rados
    )
    try:
        codes = {
            client.mgr_ask(
                "osd-watchdog report", json.dumps(zombie_report(f"intruder-{i}")).encode(), 10
            ).ret
            for i in range(1000)
        }
    finally:
        client.close()
    assert codes == {-errno.EPERM}
    assert "OSD_ACCEPT_DEAD" not in health(ceph)["checks"]
    stored = json.loads(ceph.ceph("config-key", "dump", "mgr/osd_watchdog/"))
    assert stored == {}  # nothing of any of them was kept
    # The module still works: the real host's report is judged.
    real = send_report(ceph, key, json.dumps(zombie_report(host())))
    assert real.returncode == 0, real.stderr
    seen = wait_health(ceph, lambda h: "OSD_ACCEPT_DEAD" in h["checks"], 15, "OSD_ACCEPT_DEAD")
    assert seen["checks"]["OSD_ACCEPT_DEAD"]["detail"][0]["message"].startswith(
        f"osd.1 on {host()}"
    )
    rows = {r["osd"]: r["state"] for r in ceph.ceph_json("osd-watchdog", "status")}
    assert rows["osd.1"] == "zombie"
    # Kept: this host's verdicts and the checks a standby raises again; no intruder's.
    kept = json.loads(ceph.ceph("config-key", "dump", "mgr/osd_watchdog/"))
    assert set(kept) == {f"mgr/osd_watchdog/host/{host()}", "mgr/osd_watchdog/checks"}
    assert "OSD_ACCEPT_DEAD" in json.loads(kept["mgr/osd_watchdog/checks"])


@pytest.fixture
def vantages():
    """Two network namespaces standing for two other hosts, and a cluster they can reach."""
    require_ceph()
    require_tool("nft")
    require_tool("ip")
    with Vantages(2) as spaces:
        address, network = spaces.cluster_address, spaces.cluster_network
        with throwaway_cluster(address=address, network=network) as cluster:
            yield spaces, cluster


def far_watch(watch_factory, cluster, spaces, i: int):
    """A watchdog in namespace i, as host vantage-<i>: no OSDs of its own, remote probes on."""
    return watch_factory(
        cluster,
        sections={
            "discovery": {"local": False},
            "report": {
                "enabled": True,
                "interval_seconds": REPORT_EVERY,
                "keepalive_seconds": REPORT_EVERY,
                "remote_probes": True,
            },
        },
        prefix=spaces.prefix(i),
        source="cli",
        hostname=f"vantage-{i}",
    )


def _unreachable_evidence(ceph, dropped: set[int], watches) -> str:
    """What the module and each watchdog saw, for a failure message (this test once failed
    in CI only, and the watchdogs' logs die with the test's temporary directory)."""
    rows = ceph.ceph_json("osd-watchdog", "status") or []
    parts = [
        f"ports dropped {sorted(dropped)}, now {sorted(public_ports(ceph, 'osd.1'))}",
        "module status: " + json.dumps(rows),
    ]
    for watch in watches:
        alive = (
            "running" if watch.daemon.proc.poll() is None else f"exited {watch.daemon.proc.poll()}"
        )
        tail = "".join(watch.daemon.lines[-15:])
        parts.append(f"--- watchdog {watch.config} ({alive}), last lines:\n{tail}")
    return "\n".join(parts)


def test_an_osd_other_hosts_cannot_reach_is_told_apart_from_a_dead_accept_path(
    vantages, watch_factory
):
    spaces, ceph = vantages
    # A vantage point is another OSD host: the module takes reports only from hosts the map
    # gives an OSD, so osd.0 and osd.2 move under their names in CRUSH (their processes stay
    # here, and their metadata still names this host).
    for osd, name in (("osd.0", "vantage-0"), ("osd.2", "vantage-1")):
        ceph.ceph("osd", "crush", "create-or-move", osd, "1.0", "root=default", f"host={name}")
    enable_module(ceph)
    local = reporting_watch(watch_factory, ceph)
    far = [far_watch(watch_factory, ceph, spaces, i) for i in range(2)]
    local.wait_states(HEALTHY)

    def remote_view(osd: str) -> list[str]:
        rows = {r["osd"]: r for r in ceph.ceph_json("osd-watchdog", "status") or []}
        return rows.get(osd, {}).get("unreachable_from", ["?"])

    # Both other hosts reach every OSD: nothing raised.
    ceph.wait(lambda: remote_view("osd.1") == [], 30, "both vantage points reporting")
    assert quiet(health(ceph))
    ports = public_ports(ceph, "osd.1")

    # One vantage point's path breaks: it alone fails, which is ignored.
    spaces.drop(0, spaces.cluster_address, ports)
    ceph.wait(lambda: remote_view("osd.1") == ["vantage-0"], 30, "vantage-0 failing alone")
    time.sleep(REPORT_EVERY + 1)
    assert "OSD_UNREACHABLE" not in health(ceph)["checks"]

    # The second one too: unreachable from elsewhere, while its own host sees it answer.
    spaces.drop(1, spaces.cluster_address, ports)
    try:
        seen = wait_health(
            ceph, lambda h: "OSD_UNREACHABLE" in h["checks"], 45, "OSD_UNREACHABLE raised"
        )
    except pytest.fail.Exception as exc:
        pytest.fail(f"{exc}\n{_unreachable_evidence(ceph, ports, [local, *far])}")
    (detail,) = [d["message"] for d in seen["checks"]["OSD_UNREACHABLE"]["detail"]]
    assert detail.startswith(f"osd.1 on {host()}: not reachable from 2 other host(s) (vantage-0")
    assert detail.endswith(f"while {host()} sees it healthy")
    assert "OSD_ACCEPT_DEAD" not in seen["checks"]
    assert local.states() == HEALTHY
    assert far[0].daemon.proc.poll() is None

    spaces.allow(0)
    spaces.allow(1)
    wait_health(ceph, lambda h: "OSD_UNREACHABLE" not in h["checks"], 30, "the check cleared")


@EVERY_RELEASE
def test_an_osd_near_its_fd_limit_is_osd_fd_pressure_and_back(ceph, watch_factory):
    enable_module(ceph)
    # Pressure at 40 % here, so the OSD keeps plenty of room and never hits a real EMFILE.
    assess = {"fd_pressure_ratio": 0.4, "fd_pressure_clear_ratio": 0.3, "fd_trend_min_ratio": 0.3}
    watch = reporting_watch(watch_factory, ceph, assess=assess)
    watch.wait_states(HEALTHY)
    pid = ceph.pid("osd.2")
    soft, _ = nofile_limits(pid)
    open_now = sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    # Lower only the soft limit, to about half in use (root cannot raise a hard limit again).
    set_nofile_soft(pid, open_now * 2)
    try:
        seen = wait_health(
            ceph, lambda h: "OSD_FD_PRESSURE" in h["checks"], 30, "OSD_FD_PRESSURE raised"
        )
        check = seen["checks"]["OSD_FD_PRESSURE"]
        assert check["severity"] == "HEALTH_WARN"
        (detail,) = [d["message"] for d in check["detail"]]
        assert detail.startswith(f"osd.2 on {host()}: ")
        assert " fds open (5" in detail or " fds open (4" in detail
    finally:
        set_nofile_soft(pid, soft)
    wait_health(ceph, lambda h: "OSD_FD_PRESSURE" not in h["checks"], 30, "the check cleared")
