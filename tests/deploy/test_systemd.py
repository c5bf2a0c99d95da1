"""The systemd unit: accepted by systemd-analyze, hardened, and wired to the CLI's exit codes."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_tool
from tests.process import run_cli

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "osd-watchdog.service"


def installed_copy(tmp_path: Path) -> Path:
    """The unit as it would be installed, pointing at this checkout's console script."""
    script = shutil.which("osd-watchdog") or str(Path(sys.executable).parent / "osd-watchdog")
    assert Path(script).exists(), "the package is not installed (make install)"
    unit = tmp_path / UNIT.name
    # The unit names the command bare (systemd finds /usr/bin or /usr/local/bin/osd-watchdog).
    unit.write_text(UNIT.read_text().replace("=osd-watchdog ", f"={script} "))
    return unit


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    analyze = require_tool("systemd-analyze")
    out = subprocess.run(
        [analyze, "verify", str(installed_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_the_unit_is_rated_ok_by_systemd_analyze_security(tmp_path):
    analyze = require_tool("systemd-analyze")
    out = subprocess.run(
        [analyze, "security", "--offline=true", str(installed_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    level = re.search(
        r"Overall exposure level for osd-watchdog.service: ([\d.]+) (\w+)", out.stdout
    )
    assert level, out.stdout + out.stderr
    assert float(level.group(1)) <= 2.0  # systemd/README.md documents 1.5 OK
    assert level.group(2) == "OK"


def test_the_unit_is_a_notify_service_with_a_watchdog_and_no_restart_on_bad_config():
    unit = settings()
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["RestartPreventExitStatus"] == ["78"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["EnvironmentFile"] == ["-/etc/default/osd-watchdog"]
    assert unit["ExecStartPre"][0].endswith("check-config ${OSD_WATCHDOG_CONFIG}")
    assert unit["User"] == ["ceph"]
    assert unit["CapabilityBoundingSet"] == [""]
    assert "AF_NETLINK" in unit["RestrictAddressFamilies"][0]  # sock_diag needs it
    # The keep-alive must outlast the longest cycle the default config allows (3 s).
    assert unit["WatchdogSec"] == ["30s"]


def test_the_config_check_the_unit_runs_first_exits_78_on_a_bad_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[loop]\nintervall_seconds = 1\n")
    out = run_cli("check-config", str(bad))
    assert out.returncode == 78
    assert "loop.intervall_seconds: unknown key" in out.stderr


def test_the_cephadm_drop_in_adds_three_capabilities_and_systemd_accepts_it(tmp_path):
    analyze = require_tool("systemd-analyze")
    drop_in = UNIT.parent / "cephadm.conf"
    text = drop_in.read_text()
    caps = "CAP_DAC_READ_SEARCH CAP_SYS_PTRACE CAP_DAC_OVERRIDE"
    assert f"\nCapabilityBoundingSet={caps}\nAmbientCapabilities={caps}\n" in text
    assert "User=" not in text  # systemd cannot run a service as a uid without a user
    # The unit as systemd reads it with the drop-in beside it.
    unit = installed_copy(tmp_path)
    (tmp_path / f"{UNIT.name}.d").mkdir()
    (tmp_path / f"{UNIT.name}.d" / drop_in.name).write_text(text)
    out = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
