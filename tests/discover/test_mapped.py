"""The merge of what the host shows with the OSD map: the remote sample of other hosts' OSDs."""

from watchdog.discover.mapped import HostIdentity, remote_sample
from watchdog.model import ClusterMap, MapOsd


def test_the_remote_sample_covers_every_osd_by_that_many_other_hosts_and_no_more():
    hosts = [f"host{h:02d}" for h in range(7)]
    osds = {
        f"osd.{i}": MapOsd(f"osd.{i}", up=True, in_=True, hostname=hosts[i % 7]) for i in range(50)
    }
    cluster_map = ClusterMap(epoch=1, osds=osds)
    covered: dict[str, list[str]] = {}
    for me in hosts:
        for osd in remote_sample(cluster_map, me, vantages=2, limit=1000):
            assert osd.hostname != me
            covered.setdefault(osd.daemon, []).append(me)
    assert set(covered) == set(osds)
    assert {len(v) for v in covered.values()} == {2}
    # Each host's share is about 2/7 of the cluster, not all of it.
    shares = [len(remote_sample(cluster_map, me, vantages=2, limit=1000)) for me in hosts]
    assert max(shares) <= 2 * 8
    assert len(remote_sample(cluster_map, "host00", vantages=2, limit=5)) == 5


def test_this_host_is_known_by_the_name_its_osds_booted_under():
    import socket  # noqa: PLC0415

    from watchdog.model import Incarnation, Target  # noqa: PLC0415

    real = socket.gethostname()
    here = HostIdentity.of(None)
    assert real in here.names
    assert real.split(".", 1)[0] in here.names
    running = [Target("osd.3", "ceph", Incarnation(1, 0.0), ())]
    fqdn = MapOsd("osd.3", up=True, in_=True, hostname=real)
    elsewhere = MapOsd("osd.3", up=True, in_=True, hostname="other-host")
    # The map's own spelling wins; without a map entry naming us, the short name.
    assert here.name_in(ClusterMap(epoch=1, osds={"osd.3": fqdn}), running) == real
    assert here.name_in(ClusterMap(epoch=1, osds={"osd.3": elsewhere}), running) == min(
        here.names, key=len
    )
    assert here.name_in(None, running) == min(here.names, key=len)
    # cluster.hostname (a container's or pod's name) overrides everything.
    pod = HostIdentity.of("rook-ceph-osd-3-abc")
    assert pod.names == frozenset({"rook-ceph-osd-3-abc"})
    assert pod.name_in(ClusterMap(epoch=1, osds={"osd.3": fqdn}), running) == "rook-ceph-osd-3-abc"
