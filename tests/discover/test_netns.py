"""An OSD whose sockets live in a network namespace of its own (Rook's pod networking, in
miniature): a veth, a 10.x address inside a namespace the test makes, simulated OSD processes
in it, and the watchdog on the host.

With CAP_SYS_ADMIN the watchdog reads the listeners and heartbeat connections inside the
OSDs' namespace and probes their addresses from its own side, as a client would reach them.
Without it, the OSDs are unobservable with the exact reason, never healthy, never zombies.
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import cycle_until, fast_config, require_root, require_tool, state_of
from tests.e2e.netns import Vantages
from watchdog.daemon import Watchdog
from watchdog.sim.cluster import SimCluster

pytestmark = pytest.mark.integration

POD = "10.77.1.2"  # inside namespace 0; the host side of its veth is 10.77.1.1


@pytest.fixture
def pod():
    require_root("making network namespaces needs root")
    require_tool("ip")
    with Vantages(1) as spaces, SimCluster(3, host=POD, prefix=spaces.prefix(0)) as sim:
        yield sim


def test_an_osd_in_its_own_network_namespace_is_observed_fully(pod):
    watchdog = Watchdog(fast_config(pod.cluster), acting=False)
    snapshot = cycle_until(watchdog, lambda s: all(state_of(s, f"osd.{i}") == "healthy"
                                                   for i in range(3)))  # fmt: skip
    for report in snapshot.osds:
        obs = report.observation
        assert obs.target.netns is not None  # not the watchdog's own namespace
        assert len(obs.target.listeners) == 8  # all found inside the pod's namespace
        assert {b.endpoint.host for b in obs.banners} == {POD}  # probed from the host side
        assert {b.outcome.value for b in obs.banners} == {"ok"}
        assert len(obs.listens) == 8  # accept queues read there too
    pod.command(1, "stall")
    snapshot = cycle_until(watchdog, lambda s: state_of(s, "osd.1") == "zombie")
    zombie = next(r for r in snapshot.osds if r.observation.target.daemon == "osd.1")
    # Heartbeat peers were counted inside the namespace: the verdict has that evidence.
    assert zombie.observation.heartbeat_connections
    assert "heartbeats still flow" in zombie.status.cause
    assert state_of(snapshot, "osd.0") == "healthy"


def test_without_the_privilege_to_enter_it_the_osds_are_unobservable_saying_why(pod):
    require_tool("setpriv")
    public = Path(tempfile.mkdtemp(prefix="osd-watchdog-netns-"))
    config = public / "watchdog.toml"
    config.write_text(
        f'[discovery]\nclusters = ["{pod.cluster}"]\n[cluster]\nsource = "none"\n'
        "[loop]\ninterval_seconds = 0.25\nprobe_timeout_seconds = 0.5\n"
        f'[act]\nstate_dir = "{public / "state"}"\n'
    )
    try:
        # Root, with every capability but CAP_SYS_ADMIN: /proc is readable, setns is not.
        out = subprocess.run(
            ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin",
             sys.executable, "-m", "watchdog", "check", "--json", "--config", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(public)
    assert out.returncode == 3, out.stdout + out.stderr  # Nagios UNKNOWN
    osds = json.loads(out.stdout)["osds"]
    assert len(osds) == 3
    for osd in osds:
        assert osd["state"] == "unobservable"
        assert "another network namespace" in osd["cause"]
        assert "CAP_SYS_ADMIN" in osd["cause"]
