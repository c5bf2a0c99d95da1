"""Run as an unprivileged user against OSDs of another user: "unobservable", with the reason,
and never "healthy" (design.md: a watchdog that cannot look must say so)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import require_root

pytestmark = pytest.mark.integration

# Imports everything first (the interpreter lives where user nobody may not read), then drops
# to nobody, then runs `osd-watchdog check --json` in-process.
AS_NOBODY = """
import os, sys
import watchdog.cli, watchdog.daemon, watchdog.report, watchdog.probes.observe
import encodings.ascii, encodings.idna  # stdlib codecs load lazily; not after the drop
os.setgroups([]); os.setgid(65534); os.setuid(65534)
sys.argv = ["osd-watchdog", "check", "--json", "--config", sys.argv[1]]
watchdog.cli.main()
"""


def test_a_watchdog_without_access_reports_unobservable_never_healthy(sim):
    require_root("needs root to drop to user nobody")
    # pytest's tmp_path is private to root: nobody could not read the config there.
    public = Path(tempfile.mkdtemp(prefix="osd-watchdog-nobody-"))
    public.chmod(0o755)
    config = public / "watchdog.toml"
    config.write_text(
        f'[discovery]\nclusters = ["{sim.cluster}"]\n[cluster]\nsource = "none"\n'
        "[loop]\ninterval_seconds = 0.25\nprobe_timeout_seconds = 0.5\n"
    )
    config.chmod(0o644)
    try:
        out = subprocess.run(
            [sys.executable, "-c", AS_NOBODY, str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
    finally:
        shutil.rmtree(public)
    assert out.returncode == 3, out.stdout + out.stderr  # Nagios UNKNOWN
    osds = json.loads(out.stdout)["osds"]
    assert len(osds) == 3
    for osd in osds:
        assert osd["state"] == "unobservable"
        assert "access denied" in osd["cause"]
        assert osd["open_fds"] is None
