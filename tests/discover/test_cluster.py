"""Parsing the OSD map: real `ceph osd dump` and `ceph osd metadata` output from Ceph 16.2."""

import json
from pathlib import Path

import pytest

from watchdog.discover.cluster import parse_osd_dump
from watchdog.discover.mapped import expected_here, label_roles
from watchdog.errors import MapParseError
from watchdog.model import Endpoint, Incarnation, Listener, Msgr, Role, Target

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "ceph-samples"
DUMP = json.loads((SAMPLES / "osd-dump.json").read_text())
METADATA = json.loads((SAMPLES / "osd-metadata.json").read_text())


def port_roles() -> dict[tuple[str, int], tuple[Role, Msgr]]:
    """What osd-port-roles.txt says each port of each OSD is (the lab's ground truth)."""
    names = {"public": Role.PUBLIC, "cluster": Role.CLUSTER}
    names |= {"heartbeat_front": Role.HB_FRONT, "heartbeat_back": Role.HB_BACK}
    truth = {}
    for line in (SAMPLES / "osd-port-roles.txt").read_text().splitlines():
        fields = line.split()
        if len(fields) == 7 and fields[0].startswith("osd.") and fields[3].isdigit():
            truth[(fields[0], int(fields[3]))] = (names[fields[1]], Msgr(fields[2]))
    return truth


def test_every_address_of_every_osd_gets_the_role_ceph_gave_it():
    cluster_map = parse_osd_dump(DUMP, METADATA)
    truth = port_roles()
    assert len(truth) == 24
    found = {
        (osd.daemon, e.port): (e.role, e.msgr)
        for osd in cluster_map.osds.values()
        for e in osd.endpoints
    }
    assert found == truth


def test_state_flags_and_hostnames_come_through():
    cluster_map = parse_osd_dump(DUMP, METADATA)
    assert cluster_map.epoch == DUMP["epoch"]
    assert "sortbitwise" in cluster_map.flags
    osd = cluster_map.osds["osd.0"]
    assert (osd.up, osd.in_, osd.noup, osd.nodown) == (True, True, False, False)
    assert osd.hostname == "vm"


def test_per_osd_noup_and_nodown_and_a_down_osd():
    dump = json.loads(json.dumps(DUMP))
    dump["osds"][1]["state"] = ["exists", "noup", "nodown"]
    dump["osds"][1]["up"] = 0
    osd = parse_osd_dump(dump).osds["osd.1"]
    assert (osd.up, osd.noup, osd.nodown, osd.hostname) == (False, True, True, None)


@pytest.mark.parametrize(
    "broken",
    [{}, {"epoch": 3}, {"epoch": 3, "osds": [{"osd": "x"}]}, [], "garbage", None],
)
def test_garbage_is_one_clear_error(broken):
    with pytest.raises(MapParseError, match="unexpected osd dump"):
        parse_osd_dump(broken)


def test_blank_addresses_of_a_never_booted_osd_are_skipped():
    dump = {
        "epoch": 5,
        "osds": [
            {
                "osd": 4,
                "up": 0,
                "in": 0,
                "public_addrs": {"addrvec": [{"type": "v2", "addr": "0.0.0.0:0", "nonce": 0}]},
            }
        ],
    }
    assert parse_osd_dump(dump).osds["osd.4"].endpoints == ()


def test_roles_from_the_map_replace_guessed_ones():
    cluster_map = parse_osd_dump(DUMP, METADATA)
    public = next(e for e in cluster_map.osds["osd.0"].endpoints if e.role is Role.PUBLIC)
    guessed = Endpoint(public.host, public.port)  # what discovery saw: no role
    target = Target("osd.0", "ceph", Incarnation(1, 1.0), (Listener(guessed, 5),))
    [listener] = label_roles(target, cluster_map).listeners
    assert listener.endpoint == public
    assert listener.inode == 5


def test_an_osd_placed_on_this_host_without_a_process_is_expected_here():
    cluster_map = parse_osd_dump(DUMP, METADATA)
    running = [Target("osd.0", "ceph", Incarnation(1, 1.0))]
    missing = expected_here(cluster_map, running, frozenset({"vm"}), "ceph")
    assert sorted(t.daemon for t, _ in missing) == ["osd.1", "osd.2"]
    target, osd = missing[0]
    assert target.incarnation is None
    assert osd.up
    assert all(not li.present for li in target.listeners)
    assert expected_here(cluster_map, running, frozenset({"other-host"}), "ceph") == []
