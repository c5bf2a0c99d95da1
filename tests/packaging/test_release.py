"""What a release ships: a wheel, an sdist and two Debian packages, built from this checkout
by scripts/build-release.sh (lintian-clean, or the build fails), holding the shipped files."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.shipped import CHECKOUT
from watchdog import __version__

pytestmark = pytest.mark.integration


def deb_files(deb: Path, into: Path) -> Path:
    """The package's files, unpacked (dpkg-deb -x) into ``into``."""
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True, timeout=60)
    return into


def deb_field(deb: Path, name: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    return out.stdout.strip()


def test_the_version_is_one_and_every_changelog_names_it():
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    changelog = (CHECKOUT / "CHANGELOG.md").read_text()
    newest = re.search(r"^## (\S+)", changelog, re.MULTILINE)
    assert newest is not None
    assert newest.group(1) == __version__
    debian = (CHECKOUT / "debian" / "changelog").read_text().splitlines()[0]
    assert debian.startswith(f"ceph-osd-watchdog ({__version__}) ")
    manual = (CHECKOUT / "docs" / "osd-watchdog.1").read_text()
    assert f'"ceph-osd-watchdog {__version__}"' in manual


def test_the_wheel_and_sdist_carry_the_version_and_the_licence(release_files):
    wheel = release_files / f"ceph_osd_watchdog-{__version__}-py3-none-any.whl"
    sdist = release_files / f"ceph_osd_watchdog-{__version__}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"ceph_osd_watchdog-{__version__}.dist-info/METADATA").decode()
    assert "watchdog/cli.py" in names
    assert any(".dist-info/" in n and n.endswith("/LICENSE") for n in names)
    assert "License: Apache-2.0" in metadata
    assert "Requires-Python: >=3.11" in metadata
    with tarfile.open(sdist) as archive:
        members = {Path(m).name for m in archive.getnames()}
    assert {"LICENSE", "pyproject.toml", "README.md"} <= members


def test_the_wheel_installs_into_a_new_venv_and_runs(release_files, tmp_path):
    """pip install of the wheel alone (its dependencies from the index), then the command."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    wheel = next(release_files.glob("*.whl"))
    pip = subprocess.run([str(venv / "bin/pip"), "install", "--quiet", str(wheel)],
                         capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    example = CHECKOUT / "examples" / "osd-watchdog.toml"
    out = subprocess.run([str(venv / "bin/osd-watchdog"), "check-config", str(example)],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{example}: ok"


def test_the_daemon_package_holds_the_shipped_unit_rule_config_and_man_page(
    release_files, tmp_path
):
    deb = release_files / f"osd-watchdog_{__version__}_all.deb"
    files = deb_files(deb, tmp_path / "pkg")
    units = list(files.glob("**/systemd/system/osd-watchdog.service"))
    assert len(units) == 1
    shipped = {
        units[0]: CHECKOUT / "systemd" / "osd-watchdog.service",
        files / "usr/share/polkit-1/rules.d/50-osd-watchdog-restart.rules":
            CHECKOUT / "systemd" / "50-osd-watchdog-restart.rules",
        files / "etc/ceph/osd-watchdog.toml": CHECKOUT / "examples" / "osd-watchdog.toml",
        files / "etc/default/osd-watchdog": CHECKOUT / "systemd" / "osd-watchdog.default",
        files / "usr/share/osd-watchdog/systemd/cephadm.conf":
            CHECKOUT / "systemd" / "cephadm.conf",
    }  # fmt: skip
    for installed, source in shipped.items():
        assert installed.read_bytes() == source.read_bytes(), installed
    for example in (CHECKOUT / "examples").glob("*.toml"):
        if example.name != "osd-watchdog.toml":  # that one is the conffile itself
            copy = files / "usr/share/doc/osd-watchdog/examples" / example.name
            assert copy.read_bytes() == example.read_bytes(), example.name
    assert (files / "usr/share/man/man1/osd-watchdog.1.gz").exists()
    assert (files / "usr/bin/osd-watchdog").readlink() == Path("../share/osd-watchdog/osd-watchdog")
    # Its own copy of the package, not in dist-packages (python3-watchdog owns that name).
    assert (files / "usr/share/osd-watchdog/watchdog/cli.py").exists()
    assert not list(files.glob("usr/lib/python3*"))
    depends = deb_field(deb, "Depends")
    for package in ("python3-typer", "python3-psutil", "python3-prometheus-client",
                    "python3-requests", "python3-yaml", "python3-bcrypt", "adduser"):  # fmt: skip
        assert package in depends
    conffiles = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
                               check=True, timeout=60).stdout  # fmt: skip
    assert b"osd-watchdog.toml" in conffiles


def test_the_mgr_module_package_puts_the_module_where_ceph_mgr_looks(release_files, tmp_path):
    deb = release_files / f"ceph-mgr-osd-watchdog_{__version__}_all.deb"
    files = deb_files(deb, tmp_path / "pkg")
    module = files / "usr/share/ceph/mgr/osd_watchdog"
    for source in (CHECKOUT / "mgr" / "osd_watchdog").glob("*.py"):
        assert (module / source.name).read_bytes() == source.read_bytes()
    assert deb_field(deb, "Depends").startswith("ceph-mgr")
