"""What an operator installs is what runs: the release's .debs, installed with apt-get into a
fresh Debian root of each release the matrix runs (bookworm with Ceph 16, trixie with 18, sid
with 20, each on that release's own python3 packages), against a real cluster of that root.

The cluster's daemons run from the same root (cephadm-style containers), its mgr loads the
osd_watchdog module from where ceph-mgr-osd-watchdog put it, and the watchdog is the
package's /usr/bin/osd-watchdog, run as user ceph with the package's example config for a
package host (examples/host.toml: report to the module, remediation a dry run), only its
listen port changed. It sees the host's processes the way a host install does: the host's
/proc, the host's network.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

import pytest

from tests.conftest import unavailable
from tests.e2e.conftest import Watched, require_ceph, throwaway_cluster
from tests.e2e.faults import unmute_listeners
from tests.e2e.releases import Release, fresh_root, install_debs, root_of
from tests.e2e.test_mgr_module import MAX_AGE, enable_module, health, wait_health
from tests.e2e.test_real_ceph import HEALTHY, mute_public
from tests.process import Daemon, unused_port
from tests.shipped import EXAMPLES, key_caps, localized

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.e2e.cluster import CephCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def installed_ceph(request: pytest.FixtureRequest, release_files: Path) -> Iterator[CephCluster]:
    """A cluster run from a fresh root of one release, with the .debs installed in it."""
    require_ceph()
    number = request.param
    base = root_of(number)
    if base is None:
        unavailable(f"no Debian root for Ceph {number} (scripts/ceph-roots.sh needs root, apt)")
    debs = sorted(release_files.glob("*.deb"))
    with fresh_root(base) as root:
        install_debs(root, debs)
        with throwaway_cluster(release=Release(number, root), our_module=None) as cluster:
            yield cluster


class InstalledWatchdog(Watched):
    """/usr/bin/osd-watchdog of the cluster's root, as its unit runs it: user ceph, the
    config in /etc/ceph, the state in /var/lib/osd-watchdog; the host's /proc and network."""

    def __init__(self, cluster: CephCluster, config: str) -> None:
        root = cluster.release.root
        assert root is not None
        self.root = root
        self.port = unused_port()
        (root / "etc/ceph/osd-watchdog.toml").write_text(
            localized(config, web__listen_address=f"127.0.0.1:{self.port}")
        )
        user = ceph_user(root)
        state = root / "var/lib/osd-watchdog"  # what StateDirectory= makes
        state.mkdir(mode=0o750, exist_ok=True)
        os.chown(state, *user)
        script = (
            f"mount --rbind /proc {root}/proc && exec chroot --userspec={user[0]}:{user[1]} "
            f"{root} /usr/bin/osd-watchdog run --config /etc/ceph/osd-watchdog.toml"
        )
        self.daemon = Daemon(
            root / "etc/ceph/osd-watchdog.toml",
            argv=["unshare", "--mount", "--", "sh", "-c", script],
        )

    def stop(self) -> None:
        self.daemon.stop()


def provision(cluster: CephCluster) -> None:
    """What the README's install does on the host: a minimal ceph.conf, and the watchdog's key
    with the documented caps, readable by user ceph."""
    root = cluster.release.root
    assert root is not None
    (root / "etc/ceph/ceph.conf").write_text(cluster.ceph("config", "generate-minimal-conf"))
    keyring = root / "etc/ceph/ceph.client.osd-watchdog.keyring"
    shutil.copyfile(cluster.client_key("client.osd-watchdog", *key_caps()), keyring)
    os.chown(keyring, *ceph_user(root))
    keyring.chmod(0o600)


def ceph_user(root: Path) -> tuple[int, int]:
    """The uid and gid of user ceph in the root."""
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, gid, *_ = line.split(":")
        if name == "ceph":
            return int(uid), int(gid)
    pytest.fail("the root has no user ceph")


@pytest.mark.releases("16", "18", "20")
def test_the_installed_packages_catch_a_zombie_and_put_it_in_ceph_health(installed_ceph):
    ceph = installed_ceph
    root = ceph.release.root
    assert root is not None
    # The package's conffile is the shipped example, byte for byte.
    installed = (root / "etc/ceph/osd-watchdog.toml").read_text()
    assert installed == (EXAMPLES / "osd-watchdog.toml").read_text()
    assert (root / "usr/share/ceph/mgr/osd_watchdog/module.py").exists()

    enable_module(ceph)  # the installed module: the cluster adds none from the checkout
    provision(ceph)
    # A staged rollout is quiet: no watchdog has reported yet, so no OSD_WATCHDOG_DOWN, even
    # well past max_report_age.
    quiet_until = time.monotonic() + MAX_AGE + 4
    while time.monotonic() < quiet_until:
        assert "OSD_WATCHDOG_DOWN" not in health(ceph)["checks"]
        time.sleep(1)  # bounded by quiet_until

    watch = InstalledWatchdog(ceph, (EXAMPLES / "host.toml").read_text())
    try:
        watch.wait_states(HEALTHY)
        pid, muted = mute_public(ceph, "osd.1")
        watch.daemon.wait_for_log("osd.1: suspect -> zombie", timeout=30)
        seen = wait_health(
            ceph, lambda h: "OSD_ACCEPT_DEAD" in h["checks"], 30, "OSD_ACCEPT_DEAD raised"
        )
        (detail,) = [d["message"] for d in seen["checks"]["OSD_ACCEPT_DEAD"]["detail"]]
        assert detail.startswith("osd.1 on ")
        assert "client accept path dead" in detail
        assert "OSD_WATCHDOG_DOWN" not in seen["checks"]
        unmute_listeners(pid, muted)
        wait_health(
            ceph, lambda h: "OSD_ACCEPT_DEAD" not in h["checks"], 30, "OSD_ACCEPT_DEAD cleared"
        )
        watch.wait_states(HEALTHY, timeout=30)
    finally:
        watch.stop()
        sys.stdout.write("".join(watch.daemon.lines[-40:]))  # shown when the test fails
