"""The second vantage point: other hosts' OSDs probed from here, through real listeners."""

from watchdog.model import Endpoint, Listener, Msgr, RemoteResult, Role, Target
from watchdog.probes.remote import RemoteProbe
from watchdog.probes.tcp import BannerProbe
from watchdog.sim.osd import V2_BANNER


def remote(daemon: str, *ports: int) -> Target:
    listeners = tuple(Listener(Endpoint("127.0.0.1", p, Msgr.V2, Role.PUBLIC)) for p in ports)
    return Target(daemon, "ceph", None, listeners)


def test_an_osd_is_reached_when_any_public_address_sends_its_banner(server, free_port):
    answering = server(lambda conn: conn.sendall(V2_BANNER))
    probe = RemoteProbe(BannerProbe(max_in_flight=8), every=0.0)
    found = probe.run(
        [remote("osd.4", free_port, answering.port), remote("osd.5", free_port)], timeout=2
    )
    assert found["osd.4"] == RemoteResult(
        "osd.4", ok=True, detail=f"v2:127.0.0.1:{free_port} refused"
    )
    assert found["osd.5"] == RemoteResult(
        "osd.5", ok=False, detail=f"v2:127.0.0.1:{free_port} refused"
    )


def test_between_two_rounds_the_last_results_stand_and_nothing_is_probed(server, free_port):
    calls = []

    def answer(conn):
        calls.append(1)
        conn.sendall(V2_BANNER)

    answering = server(answer)
    probe = RemoteProbe(BannerProbe(max_in_flight=8), every=3600.0)
    first = probe.run([remote("osd.4", answering.port)], timeout=2)
    assert first["osd.4"].ok
    answering.close()  # gone: a new round would say so
    again = probe.run([remote("osd.4", answering.port), remote("osd.6", free_port)], timeout=2)
    assert again == first  # the same round's results; osd.6 waits for the next round
    assert len(calls) == 1
