"""The command line: exit codes and exact messages."""

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchdog.cli import app
from watchdog.sim.osd import V2_BANNER

FIXTURES = Path(__file__).parent / "fixtures" / "config"
runner = CliRunner()


def config_file(tmp_path: Path, cluster: str, extra: str = "") -> Path:
    path = tmp_path / "watchdog.toml"
    path.write_text(
        "[loop]\ninterval_seconds = 0.25\nprobe_timeout_seconds = 0.5\n"
        f'[discovery]\nclusters = ["{cluster}"]\n[cluster]\nsource = "none"\n{extra}'
    )
    return path


def test_check_config_accepts_a_valid_file():
    result = runner.invoke(app, ["check-config", str(FIXTURES / "valid-full.toml")])
    assert result.exit_code == 0
    assert result.stdout == f"{FIXTURES / 'valid-full.toml'}: ok\n"


def test_check_config_exits_78_listing_every_problem():
    path = FIXTURES / "several-problems.toml"
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 78
    assert result.stderr == (
        f"invalid configuration in {path}:\n"
        "  - loop.interval_seconds: expected a number, got a string 'fast'\n"
        "  - loop.max_in_flight: must be at least 1, got 0\n"
        "  - web.port: unknown key\n"
    )


def test_run_refuses_a_bad_config_with_78_before_doing_anything():
    result = runner.invoke(app, ["run", "--config", str(FIXTURES / "unknown-key.toml")])
    assert result.exit_code == 78
    assert "loop.intervall_seconds: unknown key" in result.stderr


def test_check_on_a_host_without_osds_says_so_in_one_line_and_exits_unknown(tmp_path):
    result = runner.invoke(
        app, ["check", "--config", str(config_file(tmp_path, "no-such-cluster"))]
    )
    assert result.exit_code == 3
    assert result.stdout == (
        "OSD-WATCHDOG UNKNOWN - no OSDs found on this host "
        "(no process named ceph-osd, no static targets)\n"
    )


def test_check_with_a_bad_config_is_unknown_for_nagios():
    result = runner.invoke(app, ["check", "--config", str(FIXTURES / "unknown-key.toml")])
    assert result.exit_code == 3


@pytest.mark.integration
def test_check_is_ok_on_healthy_osds_and_critical_on_a_zombie(sim, tmp_path):
    # The simulated OSDs are seconds old: without this they would still be in startup grace.
    path = config_file(tmp_path, sim.cluster, "[assess]\nstartup_grace_seconds = 0\n")
    healthy = runner.invoke(app, ["check", "--config", str(path)])
    assert healthy.exit_code == 0, healthy.stdout
    assert healthy.stdout.startswith(
        "OSD-WATCHDOG OK - 3 OSD(s) healthy | starting=0;;;0 healthy=3;;;0 fd_pressure=0;;;0 "
    )
    assert re.search(r"'osd\.0_fd_ratio'=0\.\d{4};0\.8;1;0;1( |$)", healthy.stdout)
    sim.command(2, "stall")
    broken = runner.invoke(app, ["check", "--config", str(path), "--json"])
    assert broken.exit_code == 2
    states = {o["ceph_daemon"]: o["state"] for o in json.loads(broken.stdout)["osds"]}
    assert states == {"osd.0": "healthy", "osd.1": "healthy", "osd.2": "zombie"}


@pytest.mark.integration
def test_discover_lists_each_osd_and_its_listeners(sim, tmp_path):
    result = runner.invoke(app, ["discover", "--config", str(config_file(tmp_path, sim.cluster))])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"osd.0 (cluster {sim.cluster}, pid {sim.osds[0].pid})"
    port = sim.osds[0].ready["ports"]["public"][0]
    assert lines[1] == f"  public    v2:127.0.0.1:{port}"
    assert len(lines) == 3 * 9


def test_probe_prints_each_outcome_and_exits_1_if_any_failed(server, free_port):
    listener = server(lambda conn: conn.sendall(V2_BANNER))
    result = runner.invoke(
        app, ["probe", f"v2:127.0.0.1:{listener.port}", f"127.0.0.1:{free_port}"]
    )
    assert result.exit_code == 1
    first, second = result.stdout.splitlines()
    assert first.startswith(f"v2:127.0.0.1:{listener.port} ok ")
    assert second.startswith(f"127.0.0.1:{free_port} refused ")


def test_probe_json_gives_one_object_per_address(server):
    listener = server(lambda conn: conn.sendall(V2_BANNER))
    result = runner.invoke(app, ["probe", "--json", f"127.0.0.1:{listener.port}"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["outcome"] == "ok"


def test_probe_rejects_a_bad_address_with_usage_exit_2():
    result = runner.invoke(app, ["probe", "db-host:6800"])
    assert result.exit_code == 2
    assert "'db-host:6800': 'db-host' is not an IP address" in result.stderr


def test_an_unknown_log_level_is_a_usage_error():
    result = runner.invoke(app, ["--log-level", "loud", "check-config", "x"])
    assert result.exit_code == 2
    assert "unknown log level 'loud'" in result.stderr
