"""The cephadm specs: valid for Ceph's own ServiceSpec of every release, and wired to the
image and to the watchdog's config."""

from __future__ import annotations

import json
import subprocess
import tomllib

import pytest
import yaml

from tests.conftest import require_root, unavailable
from tests.e2e.pods import entrypoint
from tests.shipped import CHECKOUT
from watchdog.config import parse_config

pytestmark = pytest.mark.integration

CEPHADM = CHECKOUT / "deploy" / "cephadm"
SPECS = ("osd-watchdog.yaml", "mgr.yaml")
# Read the spec on stdin, check it as `ceph orch apply -i` does, print what cephadm keeps.
CHECK = """
import json, sys, yaml
from ceph.deployment.service_spec import ServiceSpec
spec = ServiceSpec.from_json(yaml.safe_load(sys.stdin))
spec.validate()
print(json.dumps(spec.to_json()))
"""


def ceph_python(release: str) -> list[str]:
    """A Python with that release's python3-ceph-common (ceph.deployment)."""
    if release == "16":
        return ["/usr/bin/python3"]
    require_root("the other releases' Python is in their Debian roots (chroot)")
    from tests.e2e.releases import root_of  # noqa: PLC0415 - builds the roots on first use

    root = root_of(release)
    if root is None:
        unavailable(f"no Debian root for Ceph {release} (scripts/ceph-roots.sh)")
    return ["chroot", str(root), "python3"]


@pytest.mark.parametrize("release", ["16", "18", "20"])
@pytest.mark.parametrize("name", SPECS)
def test_ceph_own_service_spec_accepts_the_spec(release, name):
    out = subprocess.run([*ceph_python(release), "-c", CHECK], input=(CEPHADM / name).read_text(),
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    if "No module named 'ceph'" in out.stderr:
        unavailable("python3-ceph-common is not installed (the README's test command does it)")
    assert out.returncode == 0, out.stderr
    kept = json.loads(out.stdout)
    shipped = yaml.safe_load((CEPHADM / name).read_text())
    assert kept["service_type"] == shipped["service_type"]
    assert kept.get("spec", {}) == shipped.get("spec", {})  # nothing dropped or renamed


def test_the_spec_runs_the_image_as_the_osds_uid_on_the_hosts_pid_and_network():
    spec = yaml.safe_load((CEPHADM / "osd-watchdog.yaml").read_text())["spec"]
    assert (spec["uid"], spec["gid"]) == (167, 167)
    assert {"--pid=host", "--net=host", "--read-only"} <= set(spec["args"])
    assert "entrypoint" not in spec  # the image's own ENTRYPOINT and CMD


def test_the_spec_gives_the_image_the_config_its_cmd_reads():
    spec = yaml.safe_load((CEPHADM / "osd-watchdog.yaml").read_text())["spec"]
    _, cmd = entrypoint()
    config_path = cmd[cmd.index("--config") + 1]  # /etc/osd-watchdog/osd-watchdog.toml
    mounts = {inside.split(":")[0]: host for host, inside in spec["volume_mounts"].items()}
    host_dir = mounts[config_path.rsplit("/", 1)[0]]
    assert host_dir in spec["dirs"]
    text = spec["files"][f"{host_dir}/{config_path.rsplit('/', 1)[1]}"]
    config = parse_config(tomllib.loads(text))
    assert config.cluster.source == "cli"
    assert config.report.enabled
    assert config.act.dry_run  # a container cannot restart an OSD through the host's systemd
    assert config.web.host_port[1] in spec["ports"]
    assert mounts["/var/lib/osd-watchdog"] == "state"
    assert str(config.act.state_dir) == "/var/lib/osd-watchdog"


def test_the_mgr_spec_mounts_the_module_where_the_package_installs_it():
    spec = yaml.safe_load((CEPHADM / "mgr.yaml").read_text())
    (volume,) = [a for a in spec["extra_container_args"] if a.startswith("/")]
    host, inside, mode = volume.split(":")
    assert host == inside == "/usr/share/ceph/mgr/osd_watchdog"
    assert mode == "ro"
