"""The module's view of the map: up, and each OSD's host by its metadata and by CRUSH."""

from tests.mgr.logic import view


def osd_map(*entries):
    return {
        "epoch": 7,
        "osds": [{"osd": o, "up": up, "up_from": since} for o, up, since in entries],
    }


TREE = {"nodes": [{"id": -1, "name": "default", "type": "root", "children": [-2]},
                  {"id": -2, "name": "node1", "type": "host", "children": [0, 1]}]}  # fmt: skip


def test_an_osd_is_named_by_its_metadata_and_its_crush_host():
    asked: list[int] = []

    def metadata(osd):
        asked.append(osd)
        return {"hostname": "rook-ceph-osd-0-7f9" if osd == 0 else "node1"}

    seen, known = view.build_view(osd_map((0, True, 5), (1, False, 3), (2, True, 4)),
                                  view.crush_hosts(TREE), metadata, {})  # fmt: skip
    assert seen.up == {0: True, 1: False, 2: True}
    assert seen.names[0] == ("rook-ceph-osd-0-7f9", "node1")  # a Rook pod: both may speak
    assert seen.names[1] == ("node1",)
    assert seen.names[2] == ("node1",)  # metadata only, no CRUSH bucket
    assert seen.on(0, "node1")
    assert seen.on(0, "rook-ceph-osd-0-7f9")
    assert not seen.on(0, "node2")
    assert seen.host_of(0) == "node1"
    assert seen.up_on("node1") == [0, 2]
    assert seen.epoch == 7
    assert sorted(asked) == [0, 1, 2]
    # The next map: only a rebooted (up_from moved) or new OSD is asked for again.
    asked.clear()
    view.build_view(osd_map((0, True, 9), (1, False, 3), (2, True, 4), (3, True, 9)),
                    view.crush_hosts(TREE), metadata, known)  # fmt: skip
    assert sorted(asked) == [0, 3]


def test_an_osd_without_metadata_or_crush_host_has_no_host():
    seen, _ = view.build_view(osd_map((5, False, 0)), {}, lambda _osd: None, {})
    assert seen.names[5] == ()
    assert seen.owners == {}
