"""The ops prober against a real UNIX socket speaking the admin socket protocol, found the way
the prober finds an OSD's: through this process's own /proc entry."""

import json
import os
import socket
import struct
import threading
import types
from pathlib import Path

import pytest

from watchdog.host import asok
from watchdog.model import Incarnation, OpsOutcome, Target
from watchdog.probes import ops
from watchdog.probes.ops import OpsProbe, parse, sample_ops


def op(age: float, stage: str) -> dict:
    return {"description": "osd_op(client.4150.0:71 2.1c ...)", "age": age,
            "type_data": {"flag_point": stage, "events": []}}  # fmt: skip


# What a Ceph 16.2 OSD answered with its op threads stopped (tests/e2e/test_ops_stall.py).
STUCK = {"ops": [op(4.0, "queued for pg")], "num_ops": 1}
VICTIM = {"ops": [op(4.0, "waiting for sub ops"), op(2.0, "waiting for readable")], "num_ops": 2}
PERF = {"osd": {"op": 20662, "subop": 19000, "op_wip": 0}}


class AdminSocket:
    """A listening UNIX socket named like an OSD's, answering each command from ``answers``."""

    def __init__(self, directory: Path, answers: dict[str, object], *, silent: bool = False):
        self.path = directory / "ceph-osd.9.asok"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(8)
        self.answers, self.silent = answers, silent
        self.asked: list[dict[str, str]] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                request = b""
                while not request.endswith(b"\0"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                command = json.loads(request.rstrip(b"\0"))
                self.asked.append(command)
                if self.silent:
                    conn.recv(1)  # until the prober gives up and closes
                    continue
                body = json.dumps(self.answers[command["prefix"]]).encode()
                conn.sendall(struct.pack(">I", len(body)) + body)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def admin_socket(tmp_path):
    made = []

    def make(answers, **kwargs):
        made.append(AdminSocket(tmp_path, answers, **kwargs))
        return made[-1]

    yield make
    for item in made:
        item.close()


def test_the_osds_admin_socket_is_found_from_its_process(admin_socket):
    served = admin_socket({})
    found = asok.find(Path("/proc"), os.getpid())
    assert found == Path(f"/proc/{os.getpid()}/root") / str(served.path).lstrip("/")


def test_ops_waiting_on_the_osd_itself_are_counted_with_the_oldest_age(admin_socket):
    served = admin_socket({"dump_ops_in_flight": STUCK, "perf dump": PERF})
    sample = sample_ops(served.path, 1.0)
    assert sample.outcome is OpsOutcome.OK
    assert (sample.in_flight, sample.oldest_seconds, sample.oldest_stage) == (
        1,
        4.0,
        "queued for pg",
    )
    assert sample.completed == 20662 + 19000
    assert served.asked == [
        {"prefix": "dump_ops_in_flight", "format": "json"},
        {"prefix": "perf dump", "logger": "osd", "format": "json"},
    ]


def test_ops_waiting_on_other_osds_are_not_counted_against_this_one():
    """A primary whose write waits for a stuck replica is the victim, not the culprit."""
    sample = parse(VICTIM, PERF)
    assert (sample.in_flight, sample.oldest_seconds) == (0, 0.0)


def test_an_admin_socket_that_never_answers_is_a_timeout(admin_socket):
    served = admin_socket({}, silent=True)
    assert sample_ops(served.path, 0.2).outcome is OpsOutcome.TIMEOUT


def test_no_admin_socket_is_unreachable_and_said_so():
    probe = OpsProbe(Path("/proc"))
    target = Target("osd.9", incarnation=Incarnation(os.getpid(), 1.0))
    sample = probe.run([target], timeout=0.5)["osd.9"]
    assert sample.outcome is OpsOutcome.UNREACHABLE
    assert "listens on no admin socket" in sample.detail
    probe.close()


def test_a_process_without_an_admin_socket_is_looked_at_again_only_after_a_wait(
    admin_socket, monkeypatch
):
    """Looking is the costly part (every fd, the unix socket table): not every cycle. The
    waits double from 2 s; the clock is the test's, so no timing decides the outcome."""
    clock = types.SimpleNamespace(now=1000.0)
    monkeypatch.setattr(ops, "time", types.SimpleNamespace(monotonic=lambda: clock.now))
    looks: list[int] = []
    real_find = asok.find

    def counted(root: Path, pid: int) -> Path:
        looks.append(pid)
        return real_find(root, pid)

    monkeypatch.setattr(asok, "find", counted)
    probe = OpsProbe(Path("/proc"))
    target = Target("osd.9", incarnation=Incarnation(os.getpid(), 1.0))

    def outcome_at(now: float) -> OpsOutcome:
        clock.now = now
        return probe.run([target], timeout=0.5)["osd.9"].outcome

    try:
        assert outcome_at(1000.0) is OpsOutcome.UNREACHABLE
        assert outcome_at(1001.9) is OpsOutcome.UNREACHABLE
        assert len(looks) == 1  # within the first 2 s: not looked at again
        assert outcome_at(1002.0) is OpsOutcome.UNREACHABLE
        assert len(looks) == 2  # looked again; the next wait is 4 s
        admin_socket({"dump_ops_in_flight": STUCK, "perf dump": PERF})  # made now
        assert outcome_at(1005.9) is OpsOutcome.UNREACHABLE
        assert len(looks) == 2
        assert outcome_at(1006.0) is OpsOutcome.OK
        assert len(looks) == 3
        assert outcome_at(1006.5) is OpsOutcome.OK  # found: kept, not looked for again
        assert len(looks) == 3
    finally:
        probe.close()


def test_the_probe_asks_every_local_osd_and_skips_static_targets(admin_socket):
    admin_socket({"dump_ops_in_flight": STUCK, "perf dump": PERF})
    probe = OpsProbe(Path("/proc"))
    local = Target("osd.9", incarnation=Incarnation(os.getpid(), 1.0))
    static = Target("osd.12")
    found = probe.run([local, static], timeout=1.0)
    assert set(found) == {"osd.9"}
    assert found["osd.9"].in_flight == 1
    probe.close()
