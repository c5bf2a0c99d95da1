"""The daemon's memory on a real Ceph host, for each way of reading the OSD map.

A throw-away real cluster (1 mon, 1 mgr, 3 OSDs from the Debian packages, as in the
end-to-end tests) runs on this host; the watchdog watches its OSDs with local discovery,
once per map source: none (no map), cli (`ceph osd dump` as a child process), rados
(librados in the daemon), restful (the mgr's REST API). blackbox_exporter probes the same
24 OSD listeners in the same run: its RSS is the baseline. For each source:

* RSS of the daemon after a warm-up, and the most it held during the window;
* for cli, also the largest RSS of a `ceph` child seen (sampled every 50 ms), and the CPU
  those children used (they are the daemon's cost too);
* CPU per minute, and the oldest the map got (the map must stay fresh: refresh every 30 s,
  the default, and at once when an OSD turns suspect).

Goal (issue 15): RSS at most 1.5x blackbox_exporter's with the map reader on.

    .venv/bin/python bench/bench_memory.py [--smoke]
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests
from common import HERE, SMOKE, TICKS, Blackbox, free_port, machine, rss_mib

sys.path.insert(0, str(HERE.parent))  # the end-to-end suite's throw-away cluster
from tests.e2e.cluster import CephCluster
from tests.e2e.test_real_ceph import serve_restful

WARMUP = 3.0 if SMOKE else 20.0
WINDOW = 4.0 if SMOKE else 60.0
SOURCES = ("none", "cli", "rados", "restful")


def cpu_with_children(pid: int) -> float:
    """utime + stime of the process and of its children it has waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICKS


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


def restful_view(cluster: CephCluster) -> dict[str, str]:
    # The end-to-end suite's own set-up: it waits until the mgr has announced its restful
    # module, before which the monitors refuse the module's options.
    url, key_file = serve_restful(cluster)
    return {
        "restful_url": f'"{url}"',
        "restful_user": '"watchdog"',
        "restful_key_file": f'"{key_file}"',
        "restful_verify_tls": "false",
    }


def measure(cluster: CephCluster, work: Path, source: str, extra: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    view = {"source": f'"{source}"', "conf": f'"{cluster.conf}"'}
    view |= {"keyring": f'"{cluster.keyring}"'} | (extra if source == "restful" else {})
    config = work / f"watchdog-{source}.toml"
    config.write_text(
        f'[web]\nlisten_address = "127.0.0.1:{port}"\n'
        f'[discovery]\nclusters = ["{cluster.name}"]\n'
        "[cluster]\n" + "".join(f"{k} = {v}\n" for k, v in view.items()) + "[act]\n"
        f'canary = false\nstate_dir = "{work / ("state-" + source)}"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchdog", "--log-level", "warning", "run", "--config",
         str(config)],
    )  # fmt: skip
    try:
        threading.Event().wait(WARMUP)
        cpu0, started = cpu_with_children(proc.pid), time.monotonic()
        peak = rss_mib(proc.pid)
        child_peak, oldest_map = 0.0, 0.0
        while time.monotonic() - started < WINDOW:
            peak = max(peak, rss_mib(proc.pid))
            for child in children(proc.pid):
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    child_peak = max(child_peak, rss_mib(child))  # unless it just ended
            oldest_map = max(oldest_map, map_age(port))
            threading.Event().wait(0.05)
        cpu1, took = cpu_with_children(proc.pid), time.monotonic() - started
        rss = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return {
        "rss": rss,
        "peak": peak,
        "child_peak": child_peak,
        "cpu_per_minute": (cpu1 - cpu0) / took * 60,
        "oldest_map": oldest_map,
    }


def map_age(port: int) -> float:
    """Seconds since the map was last read, from the daemon's own metrics (0 without one)."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except requests.RequestException:
        return 0.0
    for line in text.splitlines():
        if line.startswith("osd_watchdog_map_last_success_timestamp_seconds{"):
            return time.time() - float(line.rsplit(" ", 1)[1])
    return 0.0


def main() -> None:
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        with CephCluster(work / "ceph", osds=3) as cluster:
            extra = restful_view(cluster)
            dump = cluster.ceph_json("osd", "dump")
            ports = [
                int(a["addr"].rsplit(":", 1)[1])
                for osd in dump["osds"]
                for vec in ("public_addrs", "cluster_addrs", "heartbeat_back_addrs",
                            "heartbeat_front_addrs")
                for a in osd[vec]["addrvec"]
            ]  # fmt: skip
            blackbox = Blackbox(work)
            try:
                rounds = max(1, int(WARMUP + WINDOW))
                for _ in range(rounds):  # a second apart, as in bench_probe_cost.py
                    started = time.monotonic()
                    blackbox.round(ports, in_flight=16)
                    threading.Event().wait(max(0.0, 1.0 - (time.monotonic() - started)))
                baseline = rss_mib(blackbox.proc.pid)
            finally:
                blackbox.close()
            print(f"blackbox_exporter probing the same {len(ports)} listeners: {baseline:.1f} MiB")
            for source in SOURCES:
                found = measure(cluster, work, source, extra)
                child = (
                    f", largest `ceph` child {found['child_peak']:.1f} MiB"
                    if found["child_peak"]
                    else ""
                )
                print(
                    f"{source:>8}: RSS {found['rss']:.1f} MiB (peak {found['peak']:.1f}{child}) "
                    f"-> ratio {found['rss'] / baseline:.2f} to blackbox; CPU "
                    f"{found['cpu_per_minute']:.2f} s/min with its children; oldest map "
                    f"{found['oldest_map']:.0f} s"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
