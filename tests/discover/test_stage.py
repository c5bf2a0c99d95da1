"""The discover stage as a whole: every target of a cycle, the vanished ones included."""

from watchdog.config import parse_config
from watchdog.discover.stage import Discovery
from watchdog.host import sockdiag
from watchdog.model import ClusterMap, Endpoint, Incarnation, MapOsd, Msgr, Role, Target

STATIC = {"daemon": "osd.20", "endpoints": [{"address": "v2:127.0.0.1:1"}]}


def config(**discovery):
    return parse_config(
        {
            "discovery": {"clusters": ["no-such-cluster"], **discovery},
            "cluster": {"source": "none", "hostname": "this-host"},
        }
    )


def placed(daemon: str, hostname: str, *, up: bool = True) -> MapOsd:
    endpoint = Endpoint("10.0.0.1", 6800, Msgr.V2, Role.PUBLIC)
    return MapOsd(daemon, up=up, in_=True, endpoints=(endpoint,), hostname=hostname)


def test_an_osd_the_map_places_here_without_a_process_is_a_target_not_running():
    osds = {d.daemon: d for d in (placed("osd.7", "this-host"), placed("osd.8", "elsewhere"))}
    found = Discovery(config()).run(ClusterMap(1, osds=osds), {})
    assert [(t.daemon, t.not_running) for t in found.targets] == [("osd.7", True)]
    assert [li.present for li in found.targets[0].listeners] == [False]
    assert [(r.name, r.error) for r in found.runs] == [("discover", "")]


def test_an_osd_seen_before_and_gone_now_is_not_running_and_static_targets_always_run():
    seen = Target("osd.3", incarnation=Incarnation(4242, 1.0), blind_reason="old")
    found = Discovery(config(static_targets=[STATIC])).run(None, {"osd.3": seen})
    targets = {t.daemon: t for t in found.targets}
    assert targets["osd.20"].not_running is False
    assert targets["osd.3"].not_running is True
    assert targets["osd.3"].blind_reason == ""  # discovery worked: the process is gone


def test_without_local_discovery_the_map_is_no_evidence_that_a_process_is_missing():
    osds = {"osd.7": placed("osd.7", "this-host")}
    found = Discovery(config(local=False)).run(ClusterMap(1, osds=osds), {})
    assert found.targets == []
    assert found.runs == []


def test_a_failed_discovery_makes_known_processes_unobservable_never_gone(monkeypatch):
    def broken(*_args):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(sockdiag, "dump_listeners", broken)
    seen = Target("osd.3", incarnation=Incarnation(4242, 1.0))
    osds = {"osd.7": placed("osd.7", "this-host")}
    found = Discovery(config()).run(ClusterMap(1, osds=osds), {"osd.3": seen})
    assert [(t.daemon, t.not_running) for t in found.targets] == [("osd.3", False)]
    assert "local discovery failed" in found.targets[0].blind_reason
    assert "Too many open files" in found.runs[0].error
    assert dict(found.listening) == {}
