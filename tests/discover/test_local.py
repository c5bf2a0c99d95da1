"""Local discovery against real (simulated) OSD processes."""

import contextlib
import os
import socket
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import cycle_until, fast_config
from watchdog.daemon import Watchdog
from watchdog.discover.local import (
    LocalDiscovery,
    _Memory,
    find_osd_processes,
    parse_osd_cmdline,
)
from watchdog.host.sockdiag import TcpSocket, dump_listeners
from watchdog.model import Msgr, Outcome, Role, State

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (
            ["/usr/bin/ceph-osd", "-f", "--cluster", "ceph", "--id", "3", "--setuser", "ceph"],
            ("osd.3", "ceph"),
        ),
        (["ceph-osd", "-i", "12"], ("osd.12", "ceph")),
        (["ceph-osd", "--id=7", "--cluster=backup"], ("osd.7", "backup")),
        (["ceph-osd", "-n", "osd.5"], ("osd.5", "ceph")),
        (["ceph-osd", "--mkfs"], None),
        (["ceph-osd", "-i", "admin"], None),
    ],
)
def test_osd_id_and_cluster_come_from_the_command_line(cmdline, expected):
    assert parse_osd_cmdline(cmdline) == expected


def test_simulated_osds_are_found_with_their_incarnation(sim):
    found = find_osd_processes(["ceph-osd"], [sim.cluster])
    assert [(o.daemon, o.incarnation.pid) for o in found] == [
        (f"osd.{i}", sim.osds[i].pid) for i in range(3)
    ]
    assert all(o.cluster == sim.cluster for o in found)


def test_processes_with_other_names_or_clusters_are_ignored(sim):
    assert find_osd_processes(["ceph-osdx"], [sim.cluster]) == []
    assert find_osd_processes(["ceph-osd"], ["no-such-cluster"]) == []


def test_all_eight_listeners_are_found_with_roles_from_the_bind_order(sim):
    watchdog = Watchdog(fast_config(sim.cluster), acting=False)
    targets = watchdog.discovery.run(None, {}).targets
    target = targets[0]
    ports = sim.osds[0].ready["ports"]
    labelled = [(e.role, e.msgr, e.port) for e in target.endpoints]
    assert labelled == [
        (role, msgr, ports[role][index])
        for role in (Role.PUBLIC, Role.CLUSTER, Role.HB_FRONT, Role.HB_BACK)
        for index, msgr in enumerate((Msgr.V2, Msgr.V1))
    ]


def test_a_listener_closed_while_the_process_lives_is_remembered_and_refused(sim):
    watchdog = Watchdog(fast_config(sim.cluster), acting=False)
    watchdog.discovery.run(None, {})
    sim.command(1, "give_up", "close")
    sim.command(1, "exhaust")
    public_v2 = sim.osds[1].ready["ports"]["public"][0]

    def public_closed(snapshot):
        report = snapshot.osds[1]
        gone = [li for li in report.observation.target.listeners if not li.present]
        return any(li.endpoint.port == public_v2 for li in gone)

    snapshot = cycle_until(watchdog, public_closed)
    results = {b.endpoint.port: b.outcome for b in snapshot.osds[1].observation.banners}
    assert results[public_v2] is Outcome.REFUSED
    assert public_v2 not in {s.port for s in dump_listeners().values()}


def test_a_reload_keeps_the_listener_a_zombie_closed_and_its_fd_trend(sim):
    """A reload swaps settings, never state: the closed listener is still probed (refused)."""
    config = fast_config(sim.cluster)
    watchdog = Watchdog(config, acting=False)
    watchdog.discovery.run(None, {})
    sim.command(1, "give_up", "close")
    sim.command(1, "exhaust")
    public_v2 = sim.osds[1].ready["ports"]["public"][0]

    def public_refused(snapshot):
        results = {b.endpoint.port: b.outcome for b in snapshot.osds[1].observation.banners}
        return results.get(public_v2) is Outcome.REFUSED

    before = cycle_until(watchdog, public_refused)
    trend_before = dict(watchdog.probers.fds._history)
    watchdog._apply(replace(config, loop=replace(config.loop, probe_timeout_seconds=0.4)))
    snapshot = watchdog.cycle()  # the first cycle after the reload
    assert public_refused(snapshot)
    # Nor are the states: no OSD starts over, none is judged anew from "first seen".
    assert [r.transitions.get(State.STARTING) for r in snapshot.osds] == [1, 1, 1]
    assert snapshot.osds[1].status.since >= before.osds[1].status.since
    kept = snapshot.osds[0].status
    assert (kept.state, kept.since) == (before.osds[0].status.state, before.osds[0].status.since)
    assert set(watchdog.probers.fds._history) == set(trend_before)


def test_a_healed_messenger_rebinding_its_ports_replaces_the_old_listeners(sim):
    watchdog = Watchdog(fast_config(sim.cluster), acting=False)
    sim.command(1, "give_up", "close")
    sim.command(1, "exhaust")
    cycle_until(
        watchdog, lambda s: any(not li.present for li in s.osds[1].observation.target.listeners)
    )
    sim.command(1, "heal")
    snapshot = cycle_until(
        watchdog,
        lambda s: (
            all(li.present for li in s.osds[1].observation.target.listeners)
            and all(b.outcome is Outcome.OK for b in s.osds[1].observation.banners)
        ),
    )
    endpoints = snapshot.osds[1].observation.target.endpoints
    assert len(endpoints) == 8
    assert [e.role for e in endpoints].count(Role.PUBLIC) == 2


def listening(port: int, inode: int) -> TcpSocket:
    return TcpSocket("127.0.0.1", port, "0.0.0.0", 0, 0, 512, 0, inode)


def test_rebound_listeners_keep_their_roles_by_address_whatever_their_fd_order():
    memory = _Memory()
    first = [listening(6800 + i, 100 + i) for i in range(8)]  # public v2 ... hb_back v1
    LocalDiscovery._update(memory, first)
    assert memory.complete
    # Public (6800/6801) and hb_front (6804/6805) rebind on their own ports, and the new
    # sockets come back in a different fd order: hb_front's first.
    rebound = [
        *first[2:4],
        *first[6:8],
        listening(6804, 204),
        listening(6805, 205),
        listening(6800, 200),
        listening(6801, 201),
    ]
    LocalDiscovery._update(memory, rebound)
    roles = {li.endpoint.port: (li.endpoint.role, li.inode) for li in memory.listeners.values()}
    assert roles[6800] == (Role.PUBLIC, 200)
    assert roles[6801] == (Role.PUBLIC, 201)
    assert roles[6804] == (Role.HB_FRONT, 204)
    assert roles[6805] == (Role.HB_FRONT, 205)


def test_known_listeners_are_read_with_a_dump_filtered_to_their_ports(sim):
    """A busy host's other listeners are not read while the OSDs' own are all there."""
    asked: list[object] = []

    def recording(ports=None):
        asked.append(None if ports is None else frozenset(ports))
        return dump_listeners(ports)

    unrelated = socket.socket()
    unrelated.bind(("127.0.0.1", 0))
    unrelated.listen(1)
    with unrelated:
        discovery = LocalDiscovery(Path("/proc"), ["ceph-osd"], [sim.cluster])
        discovery.discover(recording)  # first sight: every listener must be looked at
        assert asked == [None]
        asked.clear()
        targets, listening = discovery.discover(recording)
        ports = {
            p for osd in sim.osds.values() for ports in osd.ready["ports"].values() for p in ports
        }
        assert asked == [frozenset(ports)]
        assert unrelated.getsockname()[1] not in {s.port for s in listening.values()}
        assert all(li.present for t in targets for li in t.listeners)
        # A listener gone: the filtered dump shows it, and a full one looks for a rebind.
        sim.command(1, "give_up", "close")
        sim.command(1, "exhaust")
        public_v2 = sim.osds[1].ready["ports"]["public"][0]
        for _ in range(40):
            with contextlib.suppress(OSError):  # a client: its accept fails, the loop gives up
                socket.create_connection(("127.0.0.1", public_v2), timeout=0.5).close()
            asked.clear()
            targets, _ = discovery.discover(recording)
            gone = {li.endpoint.port for t in targets for li in t.listeners if not li.present}
            if public_v2 in gone:
                break
            threading.Event().wait(0.1)
        assert asked == [frozenset(ports), None]


def test_processes_are_named_from_the_configured_proc_root_not_from_proc(tmp_path):
    """A /proc mounted elsewhere (a container's view of the host's) is the one read, whole."""
    pid = os.getpid()  # a real process, so it exists; /proc names it python, not ceph-osd
    fake = tmp_path / "proc"
    (fake / str(pid)).mkdir(parents=True)
    real = Path("/proc")
    (fake / "stat").write_text((real / "stat").read_text())  # boot time, for create_time
    stat = (real / str(pid) / "stat").read_text()
    # The same start time as the real process, under another name.
    (fake / str(pid) / "stat").write_text(
        stat.replace(stat[stat.index("(") : stat.rindex(")") + 1], "(ceph-osd)")
    )
    (fake / str(pid) / "status").write_text((real / str(pid) / "status").read_text())
    (fake / str(pid) / "comm").write_text("ceph-osd\n")
    (fake / str(pid) / "cmdline").write_bytes(b"/usr/bin/ceph-osd\0-i\x0042\0--cluster\0far\0")
    try:
        found = find_osd_processes(["ceph-osd"], ["far"], fake)
        assert [(o.daemon, o.cluster, o.incarnation.pid) for o in found] == [("osd.42", "far", pid)]
        assert find_osd_processes(["ceph-osd"], ["far"], real) == []
    finally:
        find_osd_processes(["ceph-osd"], [], real)  # psutil back on the real /proc
