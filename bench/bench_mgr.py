"""What the osd_watchdog mgr module costs a real ceph-mgr at 10,000 OSDs on 1,000 hosts.

A throw-away real cluster (1 mon, 2 mgrs, 3 OSDs from the Debian packages, as in the
end-to-end tests) gets 10,000 more OSD entries in its map, ten to a CRUSH host bucket of
1,000 hosts, created with `ceph osd new` and one edited CRUSH map. Those OSDs have no
daemons (so they are down and have no metadata: the module knows their host from CRUSH),
but they are real entries of the map the mgr converts and the module judges against. This
process then reports for every one of the 1,000 hosts (10 OSD verdicts each, as a watchdog
does) through librados `mgr_command` on a few threads, and for the real host with its 3 real
(up) OSDs. Measured on the active mgr process:

* its CPU (utime + stime of every thread, from /proc) over a window with the module
  disabled and no reports: the baseline;
* over a window with the module enabled and each host sending a command the module refuses
  at its first byte, every INTERVAL seconds: what ceph-mgr itself charges per Python module
  command (the floor no module can go under);
* over a window with each host reporting every INTERVAL (10 s: a watchdog that sends every
  report.interval_seconds, as before report.keepalive_seconds), one with each host
  reporting every KEEPALIVE (steady OSDs under the watchdog's own default keepalive, 60 s),
  and one at the keepalive the module asks for at this size (its reply's "keepalive", from
  its keepalive_rate: what the shipped watchdogs and module do on a steady cluster): the
  module's cost is the difference to the baseline, in % of one core and per report;
* before the map grows (a quiet mgr): the mgr's CPU per report sent through one librados
  session (as this bench sends them) and through a fresh `ceph` CLI each, with the
  documented least-privilege key (as a watchdog with the default cluster.source sends them);
* the time from a report that calls a real OSD a zombie to OSD_ACCEPT_DEAD in `ceph health`
  (polled every 20 ms), under that load;
* the largest value the module keeps in the mgr's store (`config-key dump`), against the
  monitors' limit for one entry (65,536 bytes);
* after `ceph mgr fail` with no report sent since (FAILOVERS times): how long until the
  standby is active, and for how long OSD_ACCEPT_DEAD is missing from `ceph health` before
  the module there raises it again from the store (it must come back, and the same).

Goals (issue 23): at most 5% of one core; OSD_ACCEPT_DEAD within 1 s; every value at most
64 KiB; the same checks after a failover with no new report.

    .venv/bin/python bench/bench_mgr.py [--smoke] [HOSTS [OSDS_PER_HOST [INTERVAL [KEEPALIVE]]]]
"""

from __future__ import annotations

import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from common import HERE, SMOKE, TICKS, arg, machine

sys.path.insert(0, str(HERE.parent))  # the end-to-end suite's throw-away cluster
from tests.e2e.cluster import CephCluster
from watchdog.config import ClusterConfig, ReportConfig
from watchdog.monitor import CliClient, MonClient, RadosClient, load_rados

if TYPE_CHECKING:
    from collections.abc import Callable

HOSTS = int(arg(0, 10 if SMOKE else 1000))
PER_HOST = int(arg(1, 3 if SMOKE else 10))
INTERVAL = arg(2, 2.0 if SMOKE else 10.0)  # sending every report.interval_seconds: the worst
# Steady OSDs: one report per report.keepalive_seconds, the watchdog's own default.
KEEPALIVE = arg(3, 4.0 if SMOKE else ReportConfig().keepalive_seconds)
ONE_BY_ONE = 10 if SMOKE else 60  # reports sent one after another for the cost of each
WINDOW = 4.0 if SMOKE else 20.0
ZOMBIES = 2 if SMOKE else 5
LIMIT = 65_536  # mon_config_key_max_entry_size, Ceph 16.2.15's default
CHECK = "OSD_ACCEPT_DEAD"
MODULE = "osd_watchdog"
ROUNDS = 1 if SMOKE else 3  # windows per load, interleaved: the mgr's own work comes in bursts
REAL = [0, 1, 2]  # the real OSDs, on this host
FAILOVERS = 1 if SMOKE else 5
AFTER_FAIL = 10.0  # seconds the check is watched after each `ceph mgr fail`


class Mon:
    """librados, with the cluster's admin key: mon and mgr commands from many threads."""

    def __init__(self, cluster: CephCluster) -> None:
        rados = load_rados()
        assert rados is not None, "python3-rados is needed"
        self.handle = rados.Rados(
            conffile=str(cluster.conf), conf={"keyring": str(cluster.keyring)}
        )
        self.handle.connect(timeout=30)

    def mon(self, **command: object) -> tuple[int, bytes, str]:
        ret, out, status = self.handle.mon_command(json.dumps(command), b"", timeout=120)
        return ret, out, status

    def mgr(self, prefix: str, inbuf: bytes = b"") -> tuple[int, bytes, str]:
        request = json.dumps({"prefix": prefix, "format": "json"})
        ret, out, status = self.handle.mgr_command(request, inbuf, timeout=60)
        return ret, out, status

    def health(self) -> dict[str, Any]:
        _, out, _ = self.mon(prefix="health", detail="detail", format="json")
        answer: dict[str, Any] = json.loads(out)
        return answer


def grow_map(mon: Mon, hosts: int, per_host: int) -> list[list[int]]:
    """hosts x per_host OSD entries, each host a CRUSH bucket of its own; their ids per host."""
    with ThreadPoolExecutor(256) as pool:  # the mon commits what is pending in one proposal
        ids = sorted(pool.map(lambda _: new_osd(mon), range(hosts * per_host)))
    by_host = [ids[h * per_host : (h + 1) * per_host] for h in range(hosts)]
    place_in_crush(mon, by_host)
    return by_host


def place_in_crush(mon: Mon, by_host: list[list[int]]) -> None:
    """One new CRUSH map with a host bucket per host under the default root: one command,
    instead of one `osd crush add` (a map proposal each) per OSD."""
    ret, binary, status = mon.mon(prefix="osd getcrushmap")
    assert ret == 0, status
    with tempfile.TemporaryDirectory() as work:
        compiled, text = Path(work) / "crush", Path(work) / "crush.txt"
        compiled.write_bytes(binary)
        subprocess.run(["crushtool", "-d", str(compiled), "-o", str(text)], check=True)
        lines = text.read_text().splitlines()
        lowest = min(int(ln.split()[1]) for ln in lines if ln.strip().startswith("id -"))
        devices = [f"device {osd} osd.{osd}" for osds in by_host for osd in osds]
        buckets, items = [], []
        for index, osds in enumerate(by_host):
            lowest -= 1
            buckets += [f"host {name(index)} {{", f"\tid {lowest}", "\talg straw2", "\thash 0",
                        *(f"\titem osd.{o} weight 0.000" for o in osds), "}"]  # fmt: skip
            items.append(f"\titem {name(index)} weight 0.000")
        root = next(i for i, ln in enumerate(lines) if ln.startswith("root default {"))
        end = next(i for i in range(root, len(lines)) if lines[i] == "}")
        first_device = next(i for i, ln in enumerate(lines) if ln.startswith("# types"))
        edited = (lines[:first_device] + devices + lines[first_device:root] + buckets
                  + lines[root:end] + items + lines[end:])  # fmt: skip
        text.write_text("\n".join(edited) + "\n")
        subprocess.run(["crushtool", "-c", str(text), "-o", str(compiled)], check=True)
        request = json.dumps({"prefix": "osd setcrushmap"})
        ret, _, status = mon.handle.mon_command(request, compiled.read_bytes(), timeout=120)
    assert ret == 0, status


def new_osd(mon: Mon) -> int:
    ret, out, status = mon.mon(prefix="osd new", uuid=str(uuid.uuid4()))
    assert ret == 0, status
    return int(json.loads(out)["osdid"]) if out.strip().startswith(b"{") else int(out)


def name(host: int) -> str:
    return f"h{host:04d}"


def report(host: str, osds: list[int], states: dict[int, str] | None = None) -> bytes:
    """What a watchdog sends: its verdicts on its OSDs, all healthy unless told."""
    verdicts = [
        {
            "daemon": f"osd.{osd}",
            "state": (states or {}).get(osd, "healthy"),
            "since": 1_800_000_000.0 + osd,
            "cause": "every listener sends its banner"
            if (states or {}).get(osd, "healthy") == "healthy"
            else "client accept path dead for 2 cycle(s): public v2:127.0.0.1:6800 no_banner",
            "open_fds": 120,
            "max_fds": 1048576,
            "fd_exhaustion_seconds": None,
        }
        for osd in osds
    ]
    body = {"version": 1, "host": host, "watchdog": f"bench on {host}", "interval": INTERVAL,
            "osds": verdicts, "events": []}  # fmt: skip
    return json.dumps(body).encode()


class Load:
    """Every host sends its body once per ``every`` seconds, spread evenly, on a few threads."""

    def __init__(self, mon: Mon, bodies: list[bytes], every: float, refused: bool = False):
        self.mon = mon
        self.bodies = bodies
        self.every = every
        self.refused = refused  # the bodies are meant to be refused (the framework's floor)
        self.stop = threading.Event()
        self.sent = 0
        self.failed: list[str] = []
        self.pool = ThreadPoolExecutor(8)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _send(self, body: bytes) -> None:
        ret, _, status = self.mon.mgr("osd-watchdog report", body)
        if (ret != 0) != self.refused:
            self.failed.append(status)
        self.sent += 1

    def _run(self) -> None:
        gap = self.every / len(self.bodies)
        start = time.monotonic()
        index = 0
        while not self.stop.is_set():
            due = start + index * gap
            if self.stop.wait(max(0.0, due - time.monotonic())):
                break
            self.pool.submit(self._send, self.bodies[index % len(self.bodies)])
            index += 1

    def fresh(self) -> Load:
        """A new run of the same load (a Load runs once)."""
        return Load(self.mon, self.bodies, self.every, self.refused)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True)


def measure(pid: int, groups: Groups, loads: dict[str, Load | None]) -> dict[str, dict[str, float]]:
    """Per load, the median of ROUNDS windows; the loads take turns, round after round."""
    seen: dict[str, list[dict[str, float]]] = {label: [] for label in loads}
    for _ in range(ROUNDS):
        for label, load in loads.items():
            if load is None:
                seen[label].append(window(pid, groups))
                continue
            with load.fresh() as running:
                time.sleep(2)  # the load is steady
                seen[label].append(window(pid, groups))
            assert running.failed == [], running.failed[:3]
    return {
        label: {group: statistics.median(w[group] for w in windows) for group in windows[0]}
        for label, windows in seen.items()
    }


def mgr_modules(cluster: CephCluster) -> set[str]:
    """Every module the active mgr runs: enabled, and always on for this release."""
    listed = cluster.ceph_json("mgr", "module", "ls")
    on = listed.get("always_on_modules", [])
    if isinstance(on, dict):  # Pacific: per release name
        on = [name for names in on.values() for name in names]
    return {*on, *listed.get("enabled_modules", []), MODULE}


def mgr_pid(cluster: CephCluster) -> int:
    active = json.loads(cluster.ceph("mgr", "dump", "-f", "json"))["active_name"]
    return cluster.pid(f"mgr.{active}")


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def by_thread(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of a process (threads of one name summed)."""
    found: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        found[comm] = found.get(comm, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return found


class Groups:
    """Sorts the mgr's threads: ours, the other modules', and ceph-mgr's own (dispatch,
    messenger, finisher, main). A module's threads are named after it (truncated to 15
    characters), its command finisher "m-fin-" and its name."""

    def __init__(self, modules: set[str]) -> None:
        self.ours = {MODULE[:15], f"m-fin-{MODULE}"[:15]}
        others = modules - {MODULE}
        self.others = {n[:15] for n in others} | {f"m-fin-{n}"[:15] for n in others}

    def of(self, thread: str) -> str:
        if thread in self.ours:
            return "module"
        return "other modules" if thread in self.others else "ceph-mgr"


def window(pid: int, groups: Groups) -> dict[str, float]:
    """Share of one core each group of the mgr's threads used over WINDOW of wall time."""
    before, started = by_thread(pid), time.monotonic()
    time.sleep(WINDOW)  # measuring a window of wall time
    after, wall = by_thread(pid), time.monotonic() - started
    used = dict.fromkeys(("module", "other modules", "ceph-mgr"), 0.0)
    for thread, seconds in after.items():
        used[groups.of(thread)] += (seconds - before.get(thread, 0.0)) / wall
    used["total"] = sum(used.values())
    return used


def until(condition: Callable[[], object], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``condition()`` holds; fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(step)  # polling the monitors: bounded by the timeout
    raise RuntimeError(f"not within {timeout:g}s")


def module_ready(mon: Mon) -> bool:
    ret, _, _ = mon.mgr("osd-watchdog status")
    return ret == 0


def zombie_latency(mon: Mon, me: str) -> list[float]:
    """Seconds from sending a report that calls osd.1 a zombie to the check in ceph health."""
    latencies = []
    for _ in range(ZOMBIES):
        sent_at = time.monotonic()
        ret, _, status = mon.mgr("osd-watchdog report", report(me, REAL, {1: "zombie"}))
        assert ret == 0, status
        latencies.append(
            (time.monotonic() - sent_at) + until(lambda: CHECK in mon.health()["checks"], 10)
        )
        mon.mgr("osd-watchdog report", report(me, REAL))
        until(lambda: CHECK not in mon.health()["checks"], 10)
    return latencies


def each_report(pid: int, client: MonClient, body: bytes) -> float:
    """Seconds of the mgr's CPU per report sent through ``client`` (ONE_BY_ONE of them, one
    after another), above the mgr's quiet level measured just before."""
    quiet_at, quiet_cpu = time.monotonic(), cpu(pid)
    time.sleep(5)  # the mgr's quiet level
    quiet = (cpu(pid) - quiet_cpu) / (time.monotonic() - quiet_at)
    started, before = time.monotonic(), cpu(pid)
    for _ in range(ONE_BY_ONE):
        answer = client.mgr_ask("osd-watchdog report", body, 60)
        assert answer.ret == 0, answer.status
    spent = cpu(pid) - before - quiet * (time.monotonic() - started)
    return spent / ONE_BY_ONE


def report_paths(cluster: CephCluster, mon: Mon, me: str) -> tuple[float, float]:
    """The mgr's CPU per report through one librados session and through a fresh `ceph` CLI
    each, as the watchdog's own clients send them with the documented key (median of 3), on
    a quiet mgr: before the map grows, the module enabled for it and disabled again after."""
    cluster.wait_mgr_module(MODULE)
    cluster.ceph("mgr", "module", "enable", MODULE)
    until(lambda: module_ready(mon), 120, 0.5)
    key = cluster.client_key(
        "client.osd-watchdog", "mon", "allow r",
        "mgr", 'allow command "osd-watchdog report", allow command "osd-watchdog status"',
    )  # fmt: skip
    config = ClusterConfig(conf=cluster.conf, keyring=key, ceph_command=cluster.ceph_command)
    rados = load_rados()
    assert rados is not None, "python3-rados is needed"
    session, cli = RadosClient(config, rados), CliClient(config)
    body = report(me, REAL)
    pid = mgr_pid(cluster)
    try:
        session.mgr_ask("osd-watchdog report", body, 60)  # connected before it is measured
        seen = [(each_report(pid, session, body), each_report(pid, cli, body)) for _ in range(3)]
    finally:
        session.close()
    by_session = statistics.median(s for s, _ in seen)
    by_cli = statistics.median(c for _, c in seen)
    print(f"mgr CPU per report (3 OSDs, quiet): through one librados session "
          f"{by_session * 1000:.2f} ms, through a fresh `ceph` CLI each (the default "
          f"cluster.source) {by_cli * 1000:.2f} ms: {by_cli / by_session:.2f}x")  # fmt: skip
    cluster.ceph("mgr", "module", "disable", MODULE)
    until(lambda: not module_ready(mon), 120, 0.5)
    return by_session, by_cli


def paced_keepalive(mon: Mon, bodies: list[bytes]) -> float:
    """Every host reports once; the module's reply then says what keepalive it asks for at
    this size, and a watchdog keeps the longer of that and its own: that one."""
    out = b"{}"
    for body in bodies:
        ret, out, status = mon.mgr("osd-watchdog report", body)
        assert ret == 0, status
    asked = float(json.loads(out)["keepalive"])
    paced = max(KEEPALIVE, asked)
    print(f"the module asks {len(bodies)} hosts for a keepalive of {asked:g}s; a watchdog "
          f"keeps the longer of that and its own {KEEPALIVE:g}s: {paced:g}s")  # fmt: skip
    return paced


def largest_value(mon: Mon) -> tuple[int, int]:
    """How many values the module keeps in the store, and the size of the largest."""
    _, out, _ = mon.mon(prefix="config-key dump", key="mgr/osd_watchdog/")
    values = json.loads(out)
    return len(values), max((len(v.encode()) for v in values.values()), default=0)


def failover(cluster: CephCluster, mon: Mon, me: str) -> tuple[float, float, int]:
    """`ceph mgr fail` with osd.1 a zombie and no report sent after it: seconds until the
    standby is active, seconds OSD_ACCEPT_DEAD was missing from `ceph health` (polled every
    20 ms for AFTER_FAIL seconds), and the OSDs the new active module holds verdicts for.
    Fails if the check does not come back, or comes back different."""
    mon.mgr("osd-watchdog report", report(me, REAL, {1: "zombie"}))
    until(lambda: CHECK in mon.health()["checks"], 10)
    before = mon.health()["checks"][CHECK]["detail"]
    old = json.loads(mon.mon(prefix="mgr dump", format="json")[1])["active_name"]
    cluster.ceph("mgr", "fail", old)
    failed_at = last = time.monotonic()
    active_after, missing, detail = None, 0.0, before
    while last - failed_at < AFTER_FAIL:  # polling the monitors: bounded by AFTER_FAIL
        detail = mon.health()["checks"].get(CHECK, {}).get("detail")
        dump = json.loads(mon.mon(prefix="mgr dump", format="json")[1])
        now = time.monotonic()
        if active_after is None and dump["active_name"] not in {"", old} and dump["available"]:
            active_after = now - failed_at
        if detail is None:
            missing += now - last
        assert detail in (None, before), f"the new active mgr changed {CHECK}: {detail}"
        last = now
        time.sleep(0.02)
    assert active_after is not None, f"no standby took over within {AFTER_FAIL:g}s"
    assert detail == before, f"{CHECK} did not come back without a report: {detail}"
    _, out, _ = mon.mgr("osd-watchdog status")
    held = sum(1 for row in json.loads(out) if row["state"] != "unreported")
    # The failed mgr restarts as the standby of the next round.
    cluster.wait(lambda: cluster.ceph_json("mgr", "dump")["standbys"], 120, "a standby")
    return active_after, missing, held


def summary(costs: list[float], paced: float, by_session: float, by_cli: float) -> None:
    """The result line: the cost at the keepalive asked for, measured and per report."""
    floor, interval, own, shipped = costs
    # At the paced rate the mgr's own threads move more between windows than the
    # reports add, so the cost is also put together from the cost per report where
    # it stands out (the larger of the 10 s and the own-keepalive loads). A watchdog
    # on the default source sends each report through a fresh CLI, whose new session
    # (cephx handshake, caps parsed) the quiet mgr charged by_cli - by_session more
    # per report, whatever the map: added per report too.
    per_report = max(interval * INTERVAL, own * KEEPALIVE) / HOSTS
    rate = HOSTS / paced
    by_rate = rate * per_report
    through_cli = rate * (per_report + max(0.0, by_cli - by_session))
    print(f"ratio module/core at the keepalive asked for (every {paced:g}s, "
          f"{rate:.1f}/s): measured {shipped:.4f}; {rate:.1f}/s x {per_report * 1000:.2f} "
          f"ms a report {by_rate:.4f}, through a fresh CLI each (+"
          f"{(by_cli - by_session) * 1000:.2f} ms) {through_cli:.4f}; every "
          f"{KEEPALIVE:g}s {own:.4f}; every {INTERVAL:g}s {interval:.4f}; refused "
          f"commands every {INTERVAL:g}s {floor:.4f} (goal <= 0.05)")  # fmt: skip


def main() -> None:
    print(f"machine: {machine()}")
    me = socket.gethostname().split(".", 1)[0]
    root = Path(tempfile.mkdtemp(prefix="ceph-bench-", dir="/tmp"))
    # The mon commits pending map changes every 50 ms instead of every second: creating
    # 10,000 entries then takes seconds, not hours; what is measured is the mgr.
    try:
        with CephCluster(root, osds=3, extra_conf={"paxos propose interval": "0.05"}) as cluster:
            cluster.add_mgr("y")
            cluster.wait(lambda: cluster.ceph_json("mgr", "dump")["standbys"], 60, "a standby")
            mon = Mon(cluster)
            by_session, by_cli = report_paths(cluster, mon, me)
            started = time.monotonic()
            hosts = grow_map(mon, HOSTS, PER_HOST)
            total = HOSTS * PER_HOST + len(REAL)
            print(f"map: {total} OSDs ({HOSTS} hosts x {PER_HOST} without daemons, and 3 real "
                  f"on {me}), made in {time.monotonic() - started:.0f}s")  # fmt: skip
            time.sleep(5)  # the mgr takes in the new map
            modules = mgr_modules(cluster)
            groups = Groups(modules)
            without = window(mgr_pid(cluster), groups)
            print(f"mgr without the module, no reports: {without['total'] * 100:.2f}% of a core "
                  f"(ceph-mgr's own threads {without['ceph-mgr'] * 100:.2f}%, its other "
                  f"modules {without['other modules'] * 100:.2f}%)")  # fmt: skip
            cluster.wait_mgr_module(MODULE)
            cluster.ceph("mgr", "module", "enable", MODULE)
            until(lambda: module_ready(mon), 120, 0.5)
            pid = mgr_pid(cluster)
            bodies = [report(name(h), osds) for h, osds in enumerate(hosts)]
            paced = paced_keepalive(mon, bodies)
            # The floor: as many mgr commands, each refused at its first byte (not JSON), is
            # what ceph-mgr charges for handing a command to a Python module and back.
            loads = {
                "no reports": None,
                f"refused commands every {INTERVAL:g}s": Load(mon, [b"x"] * HOSTS, INTERVAL, True),
                f"reports every {INTERVAL:g}s": Load(mon, bodies, INTERVAL),
                f"reports every {KEEPALIVE:g}s (the watchdog's own keepalive)": Load(
                    mon, bodies, KEEPALIVE),
                f"reports every {paced:g}s (the keepalive asked for: shipped)": Load(
                    mon, bodies, paced),
            }  # fmt: skip
            seen = measure(pid, groups, loads)
            quiet = seen["no reports"]
            costs = {}
            for label, load in loads.items():
                used = seen[label]
                # Ours: the module's threads, and what ceph-mgr's own threads spend above
                # their quiet level; the other modules' bursts are theirs, not ours.
                cost = used["module"] + used["ceph-mgr"] - quiet["ceph-mgr"]
                costs[label] = cost
                rate = 0.0 if load is None else HOSTS / load.every
                per = f", {cost / rate * 1000:.2f} ms per command" if rate else ""
                print(f"{label} ({rate:.1f}/s): the module's threads "
                      f"{used['module'] * 100:.2f}%, ceph-mgr's own "
                      f"{used['ceph-mgr'] * 100:.2f}% (quiet: {quiet['ceph-mgr'] * 100:.2f}%): "
                      f"cost {cost * 100:.2f}% of a core{per}; whole process "
                      f"{used['total'] * 100:.2f}% (other modules "
                      f"{used['other modules'] * 100:.2f}%)")  # fmt: skip
            with Load(mon, bodies, INTERVAL):
                time.sleep(2)  # the load is steady
                latencies = zombie_latency(mon, me)
            print(f"zombie report to {CHECK} in ceph health, under reports every {INTERVAL:g}s: "
                  f"median {statistics.median(latencies):.3f}s, max {max(latencies):.3f}s over "
                  f"{len(latencies)}")  # fmt: skip
            count, largest = largest_value(mon)
            print(f"store: {count} values, the largest {largest} bytes "
                  f"({largest / LIMIT:.1%} of the limit)")  # fmt: skip
            rounds = [failover(cluster, mon, me) for _ in range(FAILOVERS)]
            gaps = ", ".join(f"{gap:.2f}" for _, gap, _ in rounds)
            print(f"failover x{FAILOVERS}, no report sent after `ceph mgr fail`: the standby "
                  f"active after median {statistics.median(r[0] for r in rounds):.1f}s; {CHECK} "
                  f"missing from ceph health for {gaps} s of the {AFTER_FAIL:g} s after, then "
                  f"the same; the new active module holds {min(r[2] for r in rounds)} of "
                  f"{total} OSDs' verdicts")  # fmt: skip
            summary([costs[label] for label in list(loads)[1:]], paced, by_session, by_cli)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
