"""Evidence from the op path, per OSD per cycle: the admin socket against a librados client op.

Issue 25 asked which evidence tells an OSD whose ops stall, and what each costs per OSD per
cycle on a host with 24 OSDs. Both candidates run here side by side on a throw-away real
cluster (1 mon, 1 mgr, 3 memstore OSDs from the Debian packages, as in the end-to-end tests),
each asked of every OSD once per round for ROUNDS rounds:

* **admin socket**: what the ops prober does each cycle (watchdog/probes/ops.py): find the
  socket from /proc, then `dump_ops_in_flight` and `perf dump osd` on it;
* **client op**: what a client sees: a librados `stat` of an object whose acting primary is
  that OSD (one per OSD, chosen with `ceph osd map`), on one connected client;
* and, as the yardstick, the banner probe the watchdog already makes of the OSD's 8 listeners
  every cycle (watchdog/probes/tcp.py).

For each: the wall time per OSD, the CPU this process spent per OSD (the watchdog's side),
the CPU the three OSD processes spent per OSD (the cluster's side, from /proc), and for the
client op the memory that loading and connecting librados adds to the process. Printed per
OSD and for 24 OSDs at the default 1 s interval, in % of one core.

    .venv/bin/python bench/bench_ops.py [--smoke] [ROUNDS]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from common import HERE, SMOKE, arg, cpu_seconds, machine, rss_mib

sys.path.insert(0, str(HERE.parent))  # the end-to-end suite's throw-away cluster
from tests.e2e.cluster import CephCluster
from watchdog.host import asok
from watchdog.model import Endpoint, Msgr, OpsOutcome
from watchdog.monitor import load_rados
from watchdog.probes.ops import sample_ops
from watchdog.probes.tcp import probe_banners

if TYPE_CHECKING:
    from collections.abc import Callable

ROUNDS = int(arg(0, 20 if SMOKE else 1000))
OSDS = [0, 1, 2]
HOST_OSDS = 24  # the host the issue asks about
POOL = "bench"


class Cost:
    """Per OSD: wall seconds, this process's CPU seconds, the OSDs' CPU seconds."""

    def __init__(self, name: str, wall: float, ours: float, theirs: float, asks: int) -> None:
        self.name = name
        self.wall, self.ours, self.theirs = wall / asks, ours / asks, theirs / asks

    @property
    def cpu(self) -> float:
        return self.ours + self.theirs

    def line(self) -> str:
        host = self.cpu * HOST_OSDS * 100  # % of a core at one per second
        return (
            f"{self.name}: per OSD {self.wall * 1000:.3f} ms wall, {self.ours * 1000:.3f} ms CPU "
            f"here + {self.theirs * 1000:.3f} ms CPU in the OSD; {HOST_OSDS} OSDs every 1 s: "
            f"{host:.2f}% of a core"
        )


def measure(name: str, pids: list[int], ask: Callable[[int], object]) -> Cost:
    """ROUNDS rounds of ``ask(osd)`` for every OSD, one after another."""
    for osd in OSDS:  # warm: sockets found, connections made, caches filled
        ask(osd)
    theirs = sum(cpu_seconds(p) for p in pids)
    ours, started = time.process_time(), time.monotonic()
    for _ in range(ROUNDS):
        for osd in OSDS:
            ask(osd)
    wall = time.monotonic() - started
    ours = time.process_time() - ours
    theirs = sum(cpu_seconds(p) for p in pids) - theirs
    return Cost(name, wall, ours, theirs, ROUNDS * len(OSDS))


def endpoints(cluster: CephCluster) -> dict[int, list[Endpoint]]:
    """Every address each OSD listens on, from the map (8 with msgr2 and v1)."""
    found: dict[int, list[Endpoint]] = {}
    for osd in cluster.ceph_json("osd", "dump")["osds"]:
        for kind in ("public_addrs", "cluster_addrs", "heartbeat_back_addrs",
                     "heartbeat_front_addrs"):  # fmt: skip
            for addr in osd[kind]["addrvec"]:
                host, port = addr["addr"].rsplit(":", 1)
                msgr = Msgr.V2 if addr["type"] == "v2" else Msgr.V1
                found.setdefault(osd["osd"], []).append(Endpoint(host, int(port), msgr))
    return found


def primaries(cluster: CephCluster) -> dict[int, str]:
    """An object name per OSD whose PG has that OSD as acting primary."""
    names: dict[int, str] = {}
    for n in range(500):
        primary = cluster.ceph_json("osd", "map", POOL, f"obj-{n}")["acting_primary"]
        names.setdefault(primary, f"obj-{n}")
        if len(names) == len(OSDS):
            return names
    raise RuntimeError(f"no object for every OSD: {names}")


def main() -> None:
    print(f"machine: {machine()}")
    root = Path(tempfile.mkdtemp(prefix="ceph-bench-", dir="/tmp"))
    try:
        with CephCluster(root, osds=len(OSDS)) as cluster:
            cluster.ceph("osd", "pool", "create", POOL, "32")
            cluster.ceph("osd", "pool", "application", "enable", POOL, "rbd")
            cluster.wait_clean(120)
            pids = [cluster.pid(f"osd.{osd}") for osd in OSDS]
            print(f"cluster: {len(OSDS)} memstore OSDs, idle; {ROUNDS} rounds of each")

            banner_of = endpoints(cluster)
            banner = measure("banner probe (8 listeners)", pids,
                             lambda osd: probe_banners(banner_of[osd], 1.0))  # fmt: skip

            def from_asok(osd: int) -> None:
                path = asok.find(Path("/proc"), pids[osd])  # as the prober: found each cycle
                sample = sample_ops(path, 1.0)
                assert sample.outcome is OpsOutcome.OK, sample

            admin = measure("admin socket (find, dump_ops_in_flight, perf dump osd)", pids,
                            from_asok)  # fmt: skip

            rss_before = rss_mib_self()
            rados = load_rados()
            assert rados is not None, "python3-rados is needed"
            client = rados.Rados(conffile=str(cluster.conf),
                                 conf={"keyring": str(cluster.keyring)})  # fmt: skip
            client.connect(timeout=30)
            ioctx = client.open_ioctx(POOL)
            names = primaries(cluster)
            for name in names.values():
                ioctx.write_full(name, b"x")
            librados_mib = rss_mib_self() - rss_before
            op = measure("client op (librados stat on the OSD as primary)", pids,
                         lambda osd: ioctx.stat(names[osd]))  # fmt: skip
            ioctx.close()
            client.shutdown()

            for cost in (banner, admin, op):
                print(cost.line())
            print(
                f"librados: +{librados_mib:.1f} MiB resident in the process that loads "
                "and connects it (the watchdog reads the map with the CLI by default)"
            )
            sizes = [len(json.dumps(asok.ask(asok.find(Path("/proc"), p),
                                             {"prefix": "perf dump", "logger": "osd"}, 2.0)))
                     for p in pids]  # fmt: skip
            print(f"perf dump osd: {statistics.median(sizes)} bytes of JSON")
            print(f"ratio admin socket/client op {admin.cpu / op.cpu:.2f}, admin socket/"
                  f"banner probe {admin.cpu / banner.cpu:.2f} (CPU, both sides)")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rss_mib_self() -> float:
    return rss_mib(os.getpid())


if __name__ == "__main__":
    main()
