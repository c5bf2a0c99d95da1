"""A real Prometheus scraping a real watchdog that watches simulated OSDs: the alert fires
when one OSD turns zombie and resolves when it heals, and every dashboard query evaluates."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import require_tool, wait_for
from tests.deploy.conftest import DEPLOY
from tests.process import Daemon, unused_port

pytestmark = pytest.mark.integration

RULES = DEPLOY / "prometheus" / "osd-watchdog.rules.yml"
DASHBOARD = DEPLOY / "grafana" / "osd-watchdog.json"


class Prometheus:
    """One Prometheus server of our own, on loopback, in a temporary directory."""

    def __init__(self, workdir: Path, target: str) -> None:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "osd-watchdog", "static_configs": [{"targets": [target]}]}
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{unused_port()}"
        self.log = (workdir / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                require_tool("prometheus"),
                f"--config.file={workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, 30, "Prometheus to be ready")

    def _ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    def query(self, expr: str) -> list[dict]:
        reply = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=5)
        body = reply.json()
        assert body["status"] == "success", f"{expr}: {body}"
        return body["data"]["result"]

    def alerts(self, name: str) -> list[dict]:
        body = requests.get(f"{self.url}/api/v1/alerts", timeout=5).json()
        return [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == name]

    def stop(self) -> None:
        self.proc.terminate()  # our own child, by pid
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.log.close()


@pytest.fixture
def stack(sim, tmp_path) -> Iterator[tuple[object, Prometheus]]:
    port = unused_port()
    config = tmp_path / "watchdog.toml"
    config.write_text(
        "[loop]\ninterval_seconds = 0.5\nprobe_timeout_seconds = 0.5\n"
        f'[web]\nlisten_address = "127.0.0.1:{port}"\n'
        f'[discovery]\nclusters = ["{sim.cluster}"]\n[cluster]\nsource = "none"\n'
        f'[act]\nstate_dir = "{tmp_path / "state"}"\n'
        "[assess]\nstartup_grace_seconds = 0\n"
    )
    daemon = Daemon(config)
    try:
        prometheus = Prometheus(tmp_path, f"127.0.0.1:{port}")
        try:
            yield daemon, prometheus
        finally:
            prometheus.stop()
    finally:
        daemon.stop()


def dashboard_queries() -> list[str]:
    """The dashboard's queries with Grafana's variables filled in as Grafana would."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return [
        e.replace("$instance", ".*").replace("$ceph_daemon", ".*").replace("$__rate_interval", "1m")
        for e in exprs
    ]


def test_the_zombie_alert_fires_through_prometheus_and_resolves_after_healing(sim, stack):
    _, prometheus = stack

    def healthy_osds() -> int:
        return len(prometheus.query('osd_watchdog_osd_state{state="healthy"} == 1'))

    wait_for(lambda: healthy_osds() == 3, 30, "three healthy OSDs in Prometheus")
    for expr in dashboard_queries():
        prometheus.query(expr)  # every dashboard query is valid PromQL on the real series
    timeline = dashboard_queries()[0]

    def states() -> dict[str, str]:
        return {r["metric"]["ceph_daemon"]: r["value"][1] for r in prometheus.query(timeline)}

    assert states() == {"osd.0": "0", "osd.1": "0", "osd.2": "0"}  # 0 is healthy

    sim.command(1, "stall")

    def firing() -> list[dict]:
        return [a for a in prometheus.alerts("CephOSDZombie") if a["state"] == "firing"]

    wait_for(firing, 60, "CephOSDZombie to fire")
    [alert] = firing()
    assert alert["labels"]["ceph_daemon"] == "osd.1"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == (
        "osd.1 accepts no client connections but is still up"
    )
    assert states()["osd.1"] == "4"  # zombie on the dashboard's state timeline

    sim.command(1, "heal")
    wait_for(lambda: not prometheus.alerts("CephOSDZombie"), 60, "CephOSDZombie to resolve")
    wait_for(lambda: healthy_osds() == 3, 30, "osd.1 healthy again")
