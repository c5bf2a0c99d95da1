"""The daemon as a real process: serves, reloads on SIGHUP, keeps a good config, stops cleanly."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.process import Daemon, unused_port, write_config

pytestmark = pytest.mark.integration


def test_the_daemon_serves_reloads_and_stops_cleanly(sim, tmp_path):
    port = unused_port()
    config = tmp_path / "watchdog.toml"
    write_config(config, sim.cluster, port)
    daemon = Daemon(config)
    try:
        daemon.wait_for_log("osd.2: starting -> healthy")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert b'ceph_daemon="osd.2",state="healthy"} 1.0' in response.read()
        config.write_text("[loop]\nbogus = 1\n")
        daemon.proc.send_signal(signal.SIGHUP)
        line = daemon.wait_for_log("reload failed, keeping the previous configuration")
        assert "loop.bogus: unknown key" in "".join(daemon.lines)
        write_config(config, sim.cluster, port, interval=0.5)
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_for_log(f"configuration reloaded from {config}")
        sim.command(1, "stall")
        line = daemon.wait_for_log("osd.1: suspect -> zombie")
        assert "the process lives and its heartbeats still flow" in line
        # Simulated OSDs have no monitors: the guard that checks the nodown flags refuses.
        daemon.wait_for_log("osd.1: not acting (no_map: no fresh OSD map")
    finally:
        code = daemon.stop()
    assert code == 0
    assert "INFO watchdog: stopped" in "".join(daemon.lines)


def test_a_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = tmp_path / "watchdog.toml"
        write_config(config, "none", port)
        out = subprocess.run(
            [sys.executable, "-m", "watchdog", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert out.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr


def test_sigint_stops_the_daemon_too(tmp_path):
    config = tmp_path / "watchdog.toml"
    write_config(config, "none", unused_port())
    daemon = Daemon(config)
    daemon.wait_for_log("serving on http://")
    os.kill(daemon.proc.pid, signal.SIGINT)
    assert daemon.stop() == 0
