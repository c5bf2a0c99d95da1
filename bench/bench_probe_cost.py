"""Probe cost side by side with blackbox_exporter, at 8, 100 and 1,000 endpoints.

As on an OSD host: the endpoints are simulated OSD processes (watchdog/sim/osd.py: named
ceph-osd, eight listeners each, heartbeat connections to each other), found by the
watchdog's own local discovery with its default settings, on a host that also holds 1,000
unrelated listening sockets (other services). Both probe every listener of every OSD for the
Ceph banner. Measured in one run, as CPU seconds (utime + stime from /proc) per 1,000 probes
and resident memory:

* the watchdog daemon (default config but for the map reader, off: no monitors here),
  probing every endpoint every second and scraped every 5 s with gzip as Prometheus would:
  discovery, the fd and listen probes and the scrape are all in its figure;
* blackbox_exporter with a tcp module expecting "^ceph v2", driven in bursts (every endpoint
  at once each second, 16 in flight) and, at 1,000 endpoints, as Prometheus drives it
  (a real Prometheus scraping 1,000 /probe targets, spread over its scrape interval);
* Prometheus's own CPU for scraping 1,000 blackbox targets versus one watchdog target.

Goal (issues 7 and 15): the watchdog at most half of blackbox_exporter's CPU per probe at
every size, scrapes included, and at most 1.5x its RSS at 1,000 endpoints.

    .venv/bin/python bench/bench_probe_cost.py [--smoke]
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from common import ARGS, SMOKE, Blackbox, cpu_seconds, free_port, machine, rss_mib

from watchdog.sim.cluster import SimCluster

WINDOW = 3.0 if SMOKE else 20.0  # seconds of steady state measured per case
WARMUP = 1.0 if SMOKE else 3.0
PER_OSD = 8
SIZES = (8,) if SMOKE else tuple(int(a) for a in ARGS) or (8, 100, 1000)
UNRELATED = 100 if SMOKE else 1000  # listening sockets of other services on the host
SCRAPE_EVERY = 1.0 if SMOKE else 5.0


def watchdog_config(work: Path, port: int, cluster: str) -> Path:
    path = work / f"watchdog-{cluster}.toml"
    path.write_text(
        f'[web]\nlisten_address = "127.0.0.1:{port}"\n'
        '[cluster]\nsource = "none"\n'
        f'[act]\ncanary = false\nstate_dir = "{work / "state"}"\n'
        f'[discovery]\nclusters = ["{cluster}"]\n'
    )
    return path


def sim_ports(sim: SimCluster) -> list[int]:
    """Every listener of every simulated OSD (public, cluster, both heartbeats; v2 and v1)."""
    return [p for osd in sim.osds.values() for ps in osd.ready["ports"].values() for p in ps]


def loops(port: int) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("osd_watchdog_loops_total "):
            return float(line.split()[1])
    return 0.0


def unrelated_listeners(count: int) -> list[socket.socket]:
    """Listening sockets the watchdog has nothing to do with (other services on the host)."""
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        held.append(sock)
    return held


def scrape_every(port: int, stop: threading.Event, scrapes: list[int]) -> None:
    """GET /metrics with gzip (as Prometheus asks) every SCRAPE_EVERY s until ``stop``."""
    with requests.Session() as session:
        while not stop.wait(SCRAPE_EVERY):
            reply = session.get(
                f"http://127.0.0.1:{port}/metrics",
                headers={"Accept-Encoding": "gzip"},
                timeout=5,
            )
            scrapes.append(len(reply.content))


def measure_watchdog(sim: SimCluster, work: Path) -> tuple[float, float, int]:
    """(CPU seconds per 1,000 probes, RSS MiB, scrapes) of the daemon over the window."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchdog", "--log-level", "warning", "run", "--config",
         str(watchdog_config(work, port, sim.cluster))],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                loops(port)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        threading.Event().wait(WARMUP)
        stop, scrapes = threading.Event(), list[float]()
        scraper = threading.Thread(target=scrape_every, args=(port, stop, scrapes))
        cpu0, loops0 = cpu_seconds(proc.pid), loops(port)
        scraper.start()
        threading.Event().wait(WINDOW)
        stop.set()
        scraper.join(timeout=10)
        cpu1, loops1 = cpu_seconds(proc.pid), loops(port)
        rss = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    probes = (loops1 - loops0) * len(sim_ports(sim))
    return (cpu1 - cpu0) / probes * 1000, rss, len(scrapes)


def measure_blackbox_bursts(blackbox: Blackbox, ports: list[int]) -> tuple[float, float]:
    """Every endpoint once a second, all at once (16 in flight): CPU per 1,000, RSS."""
    for _ in range(int(WARMUP)):
        blackbox.round(ports, in_flight=16)
    cpu0, probes = cpu_seconds(blackbox.proc.pid), 0
    ends = time.monotonic() + WINDOW
    while time.monotonic() < ends:
        started = time.monotonic()
        blackbox.round(ports, in_flight=16)
        probes += len(ports)
        threading.Event().wait(max(0.0, 1.0 - (time.monotonic() - started)))
    cpu1 = cpu_seconds(blackbox.proc.pid)
    return (cpu1 - cpu0) / probes * 1000, rss_mib(blackbox.proc.pid)


class Prometheus:
    """A real Prometheus scraping the given jobs; CPU read from /proc."""

    def __init__(self, work: Path, jobs: str, name: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("install prometheus (Debian) to run this benchmark")
        config = work / f"prometheus-{name}.yml"
        config.write_text(f"global:\n  scrape_interval: 5s\nscrape_configs:\n{jobs}")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={work / name}",
             f"--web.listen-address=127.0.0.1:{free_port()}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def blackbox_jobs(blackbox: Blackbox, ports: list[int]) -> str:
    targets = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    return f"""  - job_name: blackbox
    metrics_path: /probe
    params: {{module: [ceph_banner]}}
    static_configs: [{{targets: [{targets}]}}]
    relabel_configs:
      - {{source_labels: [__address__], target_label: __param_target}}
      - {{source_labels: [__param_target], target_label: instance}}
      - {{target_label: __address__, replacement: "{blackbox.url[7:]}"}}
"""


def measure_prometheus_driven(blackbox: Blackbox, sim: SimCluster, work: Path) -> dict[str, float]:
    """Prometheus scraping 1,000 blackbox targets (5 s interval) vs one watchdog target."""
    ports = sim_ports(sim)
    prometheus = Prometheus(work, blackbox_jobs(blackbox, ports), "bbx")
    try:
        threading.Event().wait(10)  # targets spread over the interval by then
        bb0, pr0 = cpu_seconds(blackbox.proc.pid), cpu_seconds(prometheus.proc.pid)
        threading.Event().wait(30)
        bb1, pr1 = cpu_seconds(blackbox.proc.pid), cpu_seconds(prometheus.proc.pid)
    finally:
        prometheus.close()
    probes = len(ports) * 30 / 5
    port = free_port()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "watchdog", "--log-level", "warning", "run", "--config",
         str(watchdog_config(work, port, sim.cluster))],
    )  # fmt: skip
    job = f'  - job_name: watchdog\n    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]\n'
    prometheus = Prometheus(work, job, "wd")
    try:
        threading.Event().wait(10)
        pw0 = cpu_seconds(prometheus.proc.pid)
        threading.Event().wait(30)
        pw1 = cpu_seconds(prometheus.proc.pid)
    finally:
        prometheus.close()
        daemon.terminate()
        daemon.wait(timeout=15)
    return {
        "blackbox_cpu_per_1000": (bb1 - bb0) / probes * 1000,
        "prometheus_cpu_per_1000_blackbox_scrapes": (pr1 - pr0) / probes * 1000,
        "prometheus_cpu_blackbox_30s": pr1 - pr0,
        "prometheus_cpu_watchdog_30s": pw1 - pw0,
    }


def main() -> None:
    print(f"machine: {machine()}")
    crowd = unrelated_listeners(UNRELATED)
    print(f"{UNRELATED} unrelated listening sockets held on the host for the whole run")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        blackbox = Blackbox(work)
        try:
            for size in SIZES:
                with SimCluster(max(1, size // PER_OSD), cluster=f"bench{size}") as sim:
                    count = len(sim_ports(sim))
                    ours, our_rss, scrapes = measure_watchdog(sim, work)
                    theirs, their_rss = measure_blackbox_bursts(blackbox, sim_ports(sim))
                    driven = (
                        measure_prometheus_driven(blackbox, sim, work) if size == 1000 else None
                    )
                print(
                    f"\n{count} endpoints ({len(sim.osds)} OSDs): CPU per 1,000 probes: "
                    f"watchdog {ours:.3f}s "
                    f"({scrapes} gzip scrapes in the window included), "
                    f"blackbox_exporter (bursts) {theirs:.3f}s -> ratio {ours / theirs:.2f}; "
                    f"RSS watchdog {our_rss:.1f} MiB, blackbox {their_rss:.1f} MiB "
                    f"-> ratio {our_rss / their_rss:.2f}"
                )
                if driven:
                    bb = driven["blackbox_cpu_per_1000"]
                    print(
                        f"  driven by Prometheus (5 s scrapes, spread): blackbox {bb:.3f}s "
                        f"per 1,000 probes -> watchdog/blackbox {ours / bb:.2f}; Prometheus "
                        f"itself {driven['prometheus_cpu_per_1000_blackbox_scrapes']:.3f}s "
                        f"per 1,000 blackbox scrapes; Prometheus CPU over 30 s: "
                        f"{driven['prometheus_cpu_blackbox_30s']:.2f}s for 1,000 blackbox "
                        f"targets vs {driven['prometheus_cpu_watchdog_30s']:.2f}s for one "
                        f"watchdog target"
                    )
        finally:
            blackbox.close()
            for sock in crowd:
                sock.close()


if __name__ == "__main__":
    main()
