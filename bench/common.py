"""Shared by the benchmarks: loopback listeners, process cost readings, blackbox_exporter."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")
# `--smoke`: every script runs at a tiny size in the test suite (tests/test_bench.py), so a
# benchmark that no longer runs fails CI instead of rotting until someone needs its figures.
SMOKE = "--smoke" in sys.argv
ARGS = [a for a in sys.argv[1:] if a != "--smoke"]


def arg(index: int, default: float) -> float:
    """Positional argument ``index`` (``--smoke`` aside), or ``default``."""
    return float(ARGS[index]) if len(ARGS) > index else default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(repeat: int, work: Callable[[], object]) -> float:
    """Median wall time of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its finished children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


BLACKBOX_CONFIG = """modules:
  ceph_banner:
    prober: tcp
    timeout: 1s
    tcp:
      preferred_ip_protocol: ip4
      query_response:
        - expect: "^ceph v"
"""


class Blackbox:
    """prometheus-blackbox-exporter with a module that expects a Ceph banner (v2 or v1)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("prometheus-blackbox-exporter") or shutil.which("blackbox_exporter")
        if binary is None:
            raise SystemExit("install prometheus-blackbox-exporter (Debian) to run this benchmark")
        config = workdir / "blackbox.yml"
        config.write_text(BLACKBOX_CONFIG)
        self.url = f"http://127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--web.listen-address={self.url[7:]}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.session = requests.Session()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                self.session.get(f"{self.url}/metrics", timeout=1)
            except requests.ConnectionError:
                time.sleep(0.1)
            else:
                return
        raise SystemExit("blackbox_exporter did not start")

    def probe(self, port: int) -> bool:
        reply = self.session.get(
            f"{self.url}/probe",
            params={"target": f"127.0.0.1:{port}", "module": "ceph_banner"},
            timeout=5,
        )
        return "probe_success 1" in reply.text

    def round(self, ports: list[int], in_flight: int) -> tuple[float, int]:
        """Probe every port once with ``in_flight`` requests at a time: (seconds, successes)."""
        started = time.monotonic()
        with ThreadPoolExecutor(in_flight) as pool:
            ok = sum(pool.map(self.probe, ports))
        return time.monotonic() - started, ok

    def close(self) -> None:
        self.session.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)
