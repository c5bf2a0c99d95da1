"""/metrics is rendered once per cycle and served as the same bytes to every scraper."""

import gzip
import os
import resource
import threading
import urllib.request
from dataclasses import replace

import psutil
from prometheus_client.parser import text_string_to_metric_families

from tests.test_export import BUILD, golden_snapshot
from watchdog.export import Health, SnapshotMetrics, serve
from watchdog.exposition import Exposition


class Cycles:
    """Snapshots as the loop publishes them: a new object each cycle."""

    def __init__(self) -> None:
        self.snapshot = golden_snapshot()

    def publish(self) -> None:
        self.snapshot = replace(self.snapshot, cycles=self.snapshot.cycles + 1)

    def latest(self):
        return self.snapshot


def exposition(cycles: Cycles) -> Exposition:
    return Exposition(SnapshotMetrics(BUILD).families, cycles.latest)


def test_scrapes_of_one_cycle_share_one_render_and_a_new_cycle_renders_again():
    cycles = Cycles()
    metrics = exposition(cycles)
    first = metrics.body(gzipped=False)
    assert metrics.body(gzipped=False) is first
    assert gzip.decompress(metrics.body(gzipped=True)) == first
    assert metrics.renders == 1
    cycles.publish()
    second = metrics.body(gzipped=False)
    assert metrics.renders == 2
    assert b"osd_watchdog_loops_total 43.0" in second  # the new cycle's counter
    assert b"osd_watchdog_loops_total 42.0" in first


def test_concurrent_scrapes_of_a_new_cycle_render_it_once():
    cycles = Cycles()
    metrics = exposition(cycles)
    bodies: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: bodies.append(metrics.body(gzipped=True)))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(bodies) == 16
    assert len(set(bodies)) == 1
    assert metrics.renders == 1


def test_the_server_sends_gzip_to_scrapers_that_ask_and_plain_text_to_others():
    cycles = Cycles()
    server = serve(SnapshotMetrics(BUILD), Health(cycles.latest, 60), ("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"
    try:
        asked = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(asked, timeout=5) as response:  # noqa: S310 - loopback
            assert response.headers["Content-Encoding"] == "gzip"
            packed = response.read()
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.headers["Content-Encoding"] is None
            plain = response.read()
    finally:
        server.shutdown()
        server.server_close()
    assert gzip.decompress(packed) == plain
    assert b'osd_watchdog_osd_state{ceph_daemon="osd.1",state="zombie"} 1.0' in plain


def test_the_server_exports_its_own_process_families_read_at_each_new_cycle():
    cycles = Cycles()
    server = serve(SnapshotMetrics(BUILD), Health(cycles.latest, 60), ("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.server_address[1]}/metrics"

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            sample.name: sample.value
            for family in text_string_to_metric_families(text)
            if family.name.startswith("process_")
            for sample in family.samples
        }

    try:
        first = scrape()
        held = [os.open(os.devnull, os.O_RDONLY) for _ in range(20)]
        try:
            assert scrape() == first  # the same cycle: the same rendering
            cycles.publish()
            second = scrape()
        finally:
            for fd in held:
                os.close(fd)
    finally:
        server.shutdown()
        server.server_close()
    me = psutil.Process()
    assert abs(first["process_start_time_seconds"] - me.create_time()) < 1.0
    assert first["process_max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert second["process_open_fds"] >= first["process_open_fds"] + 20
    assert second["process_cpu_seconds_total"] >= first["process_cpu_seconds_total"]
    assert 1e6 < first["process_resident_memory_bytes"] < me.memory_info().rss * 2
