"""The shipped unit under a real systemd, on a package host and on a cephadm-style host.

Each host is a fresh Debian trixie root (systemd 257, D-Bus, polkitd) booted with
systemd-nspawn, running a Ceph 18 cluster whose daemons systemd starts (tests/e2e/booted.py).
The watchdog is installed the way an operator installs it: ``apt-get install`` of the
release's .debs (whose postinst enables and starts the unit), the key client.osd-watchdog
with its documented caps, a shipped example as /etc/ceph/osd-watchdog.toml (only the listen
port changed), and on the cephadm-style host the shipped drop-in. Then: the unit reports
READY, ``systemctl reload`` reloads it, a remediation's restart step goes through polkit (a
real polkitd on the container's D-Bus, the package's rule) to restart the OSD's own unit,
and a hung loop (SIGSTOP) is restarted by ``WatchdogSec``.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from tests.conftest import require_root, require_tool, unavailable
from tests.e2e.booted import BootedHost, UnitCluster
from tests.e2e.releases import fresh_root, root_of
from tests.e2e.test_real_ceph import mute_public
from tests.process import unused_port
from tests.shipped import CHECKOUT, EXAMPLES, key_caps, localized

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

SERVICE = "osd-watchdog.service"
REMEDIATION = ("fence", "restart", "verify", "unfence")


class Host:
    """A booted host with its cluster and the installed watchdog."""

    def __init__(self, booted: BootedHost, cluster: UnitCluster, port: int) -> None:
        self.booted = booted
        self.cluster = cluster
        self.port = port

    def service(self, *properties: str) -> dict[str, str]:
        return self.booted.show(SERVICE, *properties)

    def audit(self) -> list[dict[str, object]]:
        text = self.booted.run("cat", "/var/lib/osd-watchdog/audit.jsonl", check=False).stdout
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def wait_status(self, text: str, timeout: float = 60) -> None:
        def says() -> bool:
            return self.service("StatusText")["StatusText"] == text

        self.booted.wait(says, timeout, f"the unit's status to say {text!r}")


def boot_host(release_files: Path, tmp_path: Path, *, cephadm: bool) -> Iterator[Host]:
    """Boot a fresh trixie root, start its cluster, install and configure the watchdog."""
    require_root("booting a root with systemd-nspawn needs root")
    require_tool("systemd-nspawn")
    base = root_of("18")
    if base is None:
        unavailable("no Debian trixie root (scripts/ceph-roots.sh needs root and apt)")
    name = "cephadm-host" if cephadm else "package-host"
    with contextlib.ExitStack() as stack:
        root = stack.enter_context(fresh_root(base))
        if cephadm:
            # cephadm makes no user on the host; its daemons run as 167 in their containers.
            subprocess.run(["chroot", str(root), "userdel", "ceph"], check=True, timeout=60)
        booted = stack.enter_context(
            BootedHost(root, name, tmp_path / "boot.log", {release_files: "/root/debs"})
        )
        cluster = UnitCluster(booted, cephadm=cephadm)
        cluster.start()
        debs = booted.run("sh", "-c", "ls /root/debs/*.deb").stdout.split()
        booted.run("apt-get", "install", "-y", "--no-install-recommends", *debs)
        port = unused_port()
        install_config(cluster, port, cephadm=cephadm)
        # Like Ceph's own ceph-mgr-* packages, the module's package leaves the mgr running:
        # the README's install restarts it, then enables the module. (A cephadm mgr runs in
        # Ceph's image and sees the module through the spec's bind mount; this one runs from
        # the host's files.)
        booted.run("systemctl", "restart", cluster.unit("mgr.x"))
        cluster.wait_mgr_module("osd_watchdog")
        cluster.ceph("mgr", "module", "enable", "osd_watchdog")
        started = booted.run("systemctl", "restart", SERVICE, check=False)
        if started.returncode != 0:
            pytest.fail(f"{SERVICE} did not start: {booted.journal(SERVICE)[-3000:]}")
        host = Host(booted, cluster, port)
        host.wait_status("3 OSD(s): 3 healthy")
        yield host


def install_config(cluster: UnitCluster, port: int, *, cephadm: bool) -> None:
    """The README's install: the key with its documented caps, readable by the service's
    user; a shipped example as the config; on cephadm, the shipped drop-in."""
    run = cluster.host.run
    keyring = "/etc/ceph/ceph.client.osd-watchdog.keyring"
    cluster.ceph("auth", "get-or-create", "client.osd-watchdog", *key_caps(), "-o", keyring)
    run("chown", "ceph:ceph", keyring)
    run("chmod", "0600", keyring)
    example = (EXAMPLES / ("cephadm.toml" if cephadm else "remediation.toml")).read_text()
    config = localized(example, web__listen_address=f"127.0.0.1:{port}")
    run("install", "-m", "0644", "/dev/stdin", "/etc/ceph/osd-watchdog.toml", stdin=config)
    if cephadm:
        run("install", "-D", "-m", "0644", "/usr/share/osd-watchdog/systemd/cephadm.conf",
            "/etc/systemd/system/osd-watchdog.service.d/cephadm.conf")  # fmt: skip
        run("systemctl", "daemon-reload")


@pytest.fixture(scope="module")
def package_host(release_files, tmp_path_factory) -> Iterator[Host]:
    yield from boot_host(release_files, tmp_path_factory.mktemp("package"), cephadm=False)


@pytest.fixture(scope="module")
def cephadm_host(release_files, tmp_path_factory) -> Iterator[Host]:
    yield from boot_host(release_files, tmp_path_factory.mktemp("cephadm"), cephadm=True)


def remediate_a_zombie(host: Host) -> None:
    """Mute osd.1's public listeners; the watchdog must fence it, restart its unit (through
    polkit: the service is not root), see a new process answer, and unfence it."""
    cluster, booted = host.cluster, host.booted
    unit = cluster.unit("osd.1")
    booted.wait(cluster.clean, 90, "every PG active+clean")
    before = booted.show(unit, "MainPID")["MainPID"]
    mute_public(cluster, "osd.1")
    booted.wait(lambda: _done(host) == list(REMEDIATION), 120,
                f"fence, restart, verify, unfence done: {host.audit()}")  # fmt: skip
    after = booted.show(unit, "MainPID", "ActiveState", "NRestarts")
    assert after["MainPID"] != before
    assert after["ActiveState"] == "active"

    def back_in() -> bool:  # unfenced, then up ~2 s later
        osd = next(o for o in cluster.ceph_json("osd", "dump")["osds"] if o["osd"] == 1)
        return bool(osd["up"]) and "noup" not in osd["state"]

    booted.wait(back_in, 60, "osd.1 up again without noup")
    restart = next(r for r in host.audit() if r.get("step") == "restart")
    assert unit.removesuffix(".service") in str(restart["detail"])


def _done(host: Host) -> list[str]:
    return [str(r["step"]) for r in host.audit() if r.get("result") == "done" and "step" in r]


def test_on_a_package_host_the_shipped_unit_starts_and_says_ready(package_host):
    service = package_host.service("ActiveState", "SubState", "User", "NRestarts", "Type")
    assert service == {"ActiveState": "active", "SubState": "running", "User": "ceph",
                       "NRestarts": "0", "Type": "notify"}  # fmt: skip
    journal = package_host.booted.journal(SERVICE)
    assert "/etc/ceph/osd-watchdog.toml: ok" in journal  # ExecStartPre's check-config


def test_systemctl_reload_rereads_the_config_in_the_same_process(package_host):
    booted = package_host.booted
    pid = package_host.service("MainPID")["MainPID"]
    booted.run("systemctl", "reload", SERVICE)
    booted.wait(lambda: "configuration reloaded from /etc/ceph/osd-watchdog.toml"
                in booted.journal(SERVICE), 30, "the reload")  # fmt: skip
    package_host.wait_status("3 OSD(s): 3 healthy")
    assert package_host.service("MainPID")["MainPID"] == pid


def test_the_polkit_rule_allows_user_ceph_nothing_but_an_osd_restart(package_host):
    booted = package_host.booted

    def as_ceph(*argv: str) -> str:
        out = booted.run("runuser", "-u", "ceph", "--", "systemctl", "--no-ask-password",
                         *argv, check=False)  # fmt: skip
        return "refused" if out.returncode != 0 else "allowed"

    assert as_ceph("stop", package_host.cluster.unit("osd.0")) == "refused"
    assert as_ceph("restart", package_host.cluster.unit("mon.a")) == "refused"
    assert as_ceph("restart", "osd-watchdog.service") == "refused"


def test_on_a_package_host_a_zombie_is_restarted_through_polkit(package_host):
    remediate_a_zombie(package_host)


def test_a_hung_loop_is_killed_and_restarted_by_the_service_watchdog(package_host):
    booted = package_host.booted
    pid = package_host.service("MainPID")["MainPID"]
    booted.run("kill", "-STOP", pid)
    stopped = time.monotonic()
    # WatchdogSec=30s, then RestartSec=5s, then READY after the first cycle.
    booted.wait(lambda: package_host.service("MainPID")["MainPID"] not in {pid, "0"}, 60,
                "a new main process")  # fmt: skip
    assert time.monotonic() - stopped >= 25  # not before the watchdog timeout
    assert "Watchdog timeout" in booted.journal(SERVICE)
    package_host.wait_status("3 OSD(s): 3 healthy")
    assert int(package_host.service("NRestarts")["NRestarts"]) >= 1


def test_on_a_cephadm_style_host_a_zombie_is_restarted_through_polkit(cephadm_host):
    booted = cephadm_host.booted
    # The OSDs run as 167, a uid with no user; the service is user ceph (the package made
    # it, Debian's uid) with the drop-in's three capabilities.
    assert booted.run("getent", "passwd", "167", check=False).returncode != 0
    assert booted.run("id", "-u", "ceph").stdout.strip() == "64045"
    service = cephadm_host.service("User", "ActiveState", "AmbientCapabilities")
    caps = "cap_dac_override cap_dac_read_search cap_sys_ptrace"
    assert service == {"User": "ceph", "ActiveState": "active", "AmbientCapabilities": caps}
    remediate_a_zombie(cephadm_host)


def runbook(row: str, column: int) -> str:
    """A command from docs/runbook.md's table "On each kind of host" (column 1: package
    host, 2: cephadm host), for N = 1."""
    text = (CHECKOUT / "docs" / "runbook.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {row} |"))
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    quoted = re.search(r"`([^`]+)`", cells[column])
    assert quoted is not None, line
    return quoted.group(1).replace("\\|", "|").replace("N", "1")


def container_pid(host: Host, daemon: str) -> str:
    """The pid of a daemon as the booted host's own tools see it."""
    status = Path(f"/proc/{host.cluster.pid(daemon)}/status").read_text()
    pids = re.search(r"^NSpid:\s+\S+\s+(\S+)", status, re.MULTILINE)
    assert pids is not None, f"{daemon} is in no pid namespace of its own"
    return pids.group(1)


@pytest.mark.parametrize("kind", ["package", "cephadm"])
def test_the_runbooks_commands_find_the_osd_on_each_kind_of_host(kind, request):
    host = request.getfixturevalue(f"{kind}_host")
    column = 1 if kind == "package" else 2
    find_pid = runbook("the OSD's pid", column)
    found = host.booted.run("sh", "-c", f'{find_pid}; echo "$pid"')
    assert found.stdout.strip() == container_pid(host, "osd.1")
    log = host.booted.run("sh", "-c", runbook("the watchdog's log", column))
    assert "serving on http://" in log.stdout


@pytest.mark.parametrize("kind", ["package", "cephadm"])
def test_the_installed_service_reads_every_osds_ops_through_its_admin_socket(kind, request):
    """Stuck-op evidence needs the admin socket: the unit's user (with the drop-in's
    capabilities on cephadm, where the sockets belong to uid 167) must be able to ask it."""
    host = request.getfixturevalue(f"{kind}_host")

    def observable() -> dict[str, str]:
        text = requests.get(f"http://127.0.0.1:{host.port}/metrics", timeout=5).text
        found = re.findall(r'^osd_watchdog_osd_ops_observable\{[^}]*ceph_daemon="(osd\.\d+)"'
                           r"[^}]*\} (\S+)$", text, re.MULTILINE)  # fmt: skip
        return dict(found)

    host.booted.wait(lambda: observable() == {f"osd.{i}": "1.0" for i in range(3)}, 30,
                     f"every OSD's ops observable: {observable()}")  # fmt: skip
