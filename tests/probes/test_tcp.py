"""Each outcome of the banner probe, produced by a real listener on 127.0.0.1."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable
from watchdog.model import Endpoint, Msgr, Outcome
from watchdog.probes.tcp import classify_banner, probe_banners
from watchdog.sim.osd import V1_BANNER, V2_BANNER


def probe_banner(endpoint, timeout):
    """One endpoint, through the batch prober the cycle uses."""
    return probe_banners([endpoint], timeout, max_in_flight=1)[0]


def local(port, msgr=Msgr.ANY):
    return Endpoint("127.0.0.1", port, msgr)


def sends(data):
    return lambda conn: conn.sendall(data)


def test_a_v2_listener_that_sends_its_banner_is_ok(server):
    listener = server(sends(V2_BANNER))
    result = probe_banner(local(listener.port, Msgr.V2), timeout=2)
    assert result.outcome is Outcome.OK
    assert result.connect_seconds is not None
    assert result.banner_seconds is not None
    assert result.banner_seconds >= result.connect_seconds


def test_a_v1_listener_that_sends_its_banner_is_ok(server):
    listener = server(sends(V1_BANNER))
    assert probe_banner(local(listener.port, Msgr.V1), timeout=2).outcome is Outcome.OK


def test_a_banner_split_across_segments_is_still_ok(server):
    def trickle(conn):
        for byte in V2_BANNER[:8]:
            conn.send(bytes([byte]))

    listener = server(trickle)
    assert probe_banner(local(listener.port), timeout=2).outcome is Outcome.OK


def test_refused_port_is_reported_as_refused(free_port):
    result = probe_banner(local(free_port), timeout=2)
    assert result.outcome is Outcome.REFUSED
    assert result.connect_seconds is None


def test_a_listener_nobody_accepts_from_is_no_banner(server):
    listener = server(None)
    result = probe_banner(local(listener.port), timeout=0.3)
    assert result.outcome is Outcome.NO_BANNER
    assert result.connect_seconds is not None
    assert result.detail == "connected, no banner"


def fill_accept_queue(port, limit=8):
    """Connect until the kernel starts dropping SYNs; return the connections made."""
    held: list[socket.socket] = []
    for _ in range(limit):
        sock = socket.socket()
        sock.settimeout(0.3)
        try:
            sock.connect(("127.0.0.1", port))
        except TimeoutError:
            sock.close()
            return held
        held.append(sock)
    pytest.fail(f"accept queue of port {port} never filled")


def test_a_full_accept_queue_makes_the_connect_time_out(server):
    listener = server(None, backlog=1)
    held = fill_accept_queue(listener.port)
    try:
        result = probe_banner(local(listener.port), timeout=0.3)
    finally:
        for sock in held:
            sock.close()
    assert result.outcome is Outcome.TIMEOUT
    assert result.detail == "connect timed out"


def test_something_that_is_not_ceph_is_a_bad_banner(server):
    listener = server(sends(b"SSH-2.0-OpenSSH_9.2\r\n"))
    result = probe_banner(local(listener.port), timeout=2)
    assert result.outcome is Outcome.BAD_BANNER
    assert result.detail == "got b'SSH-2.0-O'"


def test_a_banner_of_the_other_protocol_is_a_bad_banner(server):
    listener = server(sends(V1_BANNER))
    result = probe_banner(local(listener.port, Msgr.V2), timeout=2)
    assert result.outcome is Outcome.BAD_BANNER


def test_accept_then_close_is_a_reset(server):
    listener = server(lambda conn: conn.close())
    result = probe_banner(local(listener.port), timeout=2)
    assert result.outcome is Outcome.RESET
    assert result.detail == "closed before banner"


def test_accept_then_rst_is_a_reset(server):
    def abort(conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    listener = server(abort)
    assert probe_banner(local(listener.port), timeout=2).outcome is Outcome.RESET


def test_a_partial_banner_then_silence_is_no_banner(server):
    listener = server(sends(b"ceph"))
    result = probe_banner(local(listener.port), timeout=0.3)
    assert result.outcome is Outcome.NO_BANNER
    assert result.detail == "partial banner b'ceph'"


def test_a_banner_stream_that_never_ends_is_read_only_up_to_the_banner(server):
    listener = server(sends(V2_BANNER + b"x" * 1_000_000))
    assert probe_banner(local(listener.port), timeout=2).outcome is Outcome.OK


def test_ipv6_loopback_is_probed():
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.bind(("::1", 0))
    except OSError:
        unavailable("no IPv6 loopback on this host")
    with sock:
        sock.listen(4)
        result = probe_banner(Endpoint("::1", sock.getsockname()[1]), timeout=0.3)
    assert result.outcome is Outcome.NO_BANNER


def test_results_come_back_in_input_order_whatever_finishes_first(server, free_port):
    silent = server(None)
    fast = server(sends(V2_BANNER))
    endpoints = [local(silent.port), local(free_port), local(fast.port)]
    outcomes = [r.outcome for r in probe_banners(endpoints, 0.3, max_in_flight=2)]
    assert outcomes == [Outcome.NO_BANNER, Outcome.REFUSED, Outcome.OK]


def test_endpoints_not_started_before_the_budget_are_our_error_not_the_osds(server):
    silent = server(None)
    endpoints = [local(silent.port)] * 3
    results = probe_banners(endpoints, 1.0, max_in_flight=1, budget=0.3)
    assert results[0].outcome is Outcome.NO_BANNER
    assert [r.outcome for r in results[1:]] == [Outcome.LOCAL_ERROR] * 2
    assert results[1].detail == "watchdog: not probed, cycle deadline reached"


CHILD = """
import json, os, resource, sys
from watchdog.model import Endpoint
from watchdog.probes.tcp import probe_banners
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
result = probe_banners([Endpoint("127.0.0.1", int(sys.argv[1]))], 1.0)[0]
print(json.dumps({"outcome": result.outcome.value, "detail": result.detail}))
"""


def test_our_own_emfile_is_a_local_error_never_blamed_on_the_osd(server):
    listener = server(sends(V2_BANNER))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(listener.port)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    result = json.loads(out.stdout)
    assert result["outcome"] == "local_error"
    assert "Too many open files" in result["detail"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", None),
        (b"ceph v", None),
        (b"ceph v2\n", Outcome.OK),
        (b"ceph v027", Outcome.OK),
        (b"ceph v3", Outcome.BAD_BANNER),
        (b"HTTP", Outcome.BAD_BANNER),
    ],
)
def test_banner_bytes_are_classified_as_soon_as_they_decide(data, expected):
    assert classify_banner(data, Msgr.ANY) is expected


# Real output captured from a Ceph 16.2 cluster (see the README in that folder).
SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "ceph-samples"


def test_every_banner_real_ceph_sent_is_ok_and_the_simulator_sends_the_same():
    records = [json.loads(line) for line in (SAMPLES / "banners.jsonl").read_text().splitlines()]
    sent = [bytes.fromhex(r["hex"]) for r in records if r["bytes"]]
    assert sent
    assert all(classify_banner(data, Msgr.ANY) is Outcome.OK for data in sent)
    assert {V2_BANNER, V1_BANNER[:9]} <= {d if len(d) == 26 else d[:9] for d in sent}
