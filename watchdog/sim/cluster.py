"""Simulator: start, wire, break and stop a set of simulated OSD processes (for the demo and tests).

Every process is started here, tracked by pid and ended here; the children also die with
their parent (PR_SET_PDEATHSIG) and when their stdin closes, so nothing outlives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from collections.abc import Sequence

from watchdog.errors import SimulatorError

STARTUP_TIMEOUT = 15.0
REPLY_TIMEOUT = 10.0


@dataclass
class SimProcess:
    """One running simulated OSD and what it has told us."""

    osd_id: int
    proc: subprocess.Popen[str]
    ready: dict[str, Any]
    replies: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    events: list[dict[str, Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.proc.pid

    def heartbeat_addresses(self, host: str) -> list[str]:
        """Where peers connect for heartbeats: the v2 hb_front and hb_back listeners."""
        ports = self.ready["ports"]
        return [f"{host}:{ports['hb_front'][0]}", f"{host}:{ports['hb_back'][0]}"]


class SimCluster:
    """A set of simulated OSDs on one loopback address."""

    def __init__(  # noqa: PLR0913 - keyword-only settings of one simulated cluster
        self,
        count: int = 3,
        *,
        cluster: str | None = None,
        nofile: int = 0,
        host: str = "127.0.0.1",
        backlog: int = 0,
        prefix: Sequence[str] = (),
        pods: Sequence[tuple[Sequence[str], str]] = (),
        peered: bool = True,
    ) -> None:
        self.count = count
        # Run each OSD through this first, e.g. ["ip", "netns", "exec", NAME]: an OSD in a
        # network namespace of its own, as in a Rook pod.
        self.prefix = list(prefix)
        # Or one (prefix, address) per OSD: each OSD in a namespace of its own, as Rook runs
        # one OSD per pod. ``count`` is then the number of pods.
        self.pods = [(list(p), a) for p, a in pods]
        if self.pods:
            self.count = len(self.pods)
        self.peered = peered  # False: no heartbeats (pods that cannot reach each other)
        self.cluster = cluster or f"sim{os.getpid()}"
        self.nofile = nofile
        self.host = host
        self.backlog = backlog  # 0: the simulator's default (Ceph's 512)
        self.osds: dict[int, SimProcess] = {}

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Start every OSD, then connect each one's heartbeats to all the others."""
        try:
            for osd_id in range(self.count):
                self.osds[osd_id] = self._spawn(osd_id)
            for osd_id in self.osds if self.peered else ():
                self._peer(osd_id)
        except BaseException:
            self.close()
            raise

    def _placed(self, osd_id: int) -> tuple[list[str], str]:
        """Where an OSD runs: (the prefix to start it through, the address it binds)."""
        return self.pods[osd_id] if self.pods else (self.prefix, self.host)

    def _spawn(self, osd_id: int) -> SimProcess:
        prefix, host = self._placed(osd_id)
        argv = [*prefix, sys.executable, "-m", "watchdog.sim.osd", "--id", str(osd_id)]
        argv += ["--cluster", self.cluster, "--host", host]
        if self.nofile:
            argv += ["--nofile", str(self.nofile)]
        if self.backlog:
            argv += ["--backlog", str(self.backlog)]
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert proc.stdout is not None  # noqa: S101 - Popen with PIPE always sets it
        line = _readline(proc, STARTUP_TIMEOUT)
        ready = json.loads(line) if line else {}
        if ready.get("event") != "ready":
            proc.kill()
            proc.wait()
            raise SimulatorError(f"simulated osd.{osd_id} did not start (said {line!r})")
        sim = SimProcess(osd_id, proc, ready)
        sim.reader = threading.Thread(target=self._read, args=(sim,), daemon=True)
        sim.reader.start()
        return sim

    @staticmethod
    def _read(sim: SimProcess) -> None:
        assert sim.proc.stdout is not None  # noqa: S101
        with sim.proc.stdout:  # the reader owns stdout and closes it at EOF
            for line in sim.proc.stdout:
                message = json.loads(line)
                if "reply" in message:
                    sim.replies.put(message)
                else:
                    with sim.changed:
                        sim.events.append(message)
                        sim.changed.notify_all()

    def _peer(self, osd_id: int) -> None:
        others = [o for i, o in self.osds.items() if i != osd_id]
        addresses = [a for o in others for a in o.heartbeat_addresses(self._placed(o.osd_id)[1])]
        if addresses:
            self.command(osd_id, "peers", *addresses)

    def command(self, osd_id: int, *words: str) -> dict[str, Any]:
        """Send one command and return its reply; raise SimulatorError on an error reply."""
        sim = self.osds[osd_id]
        assert sim.proc.stdin is not None  # noqa: S101
        try:
            sim.proc.stdin.write(" ".join(words) + "\n")
            sim.proc.stdin.flush()
            reply = sim.replies.get(timeout=REPLY_TIMEOUT)
        except (OSError, queue.Empty) as exc:
            raise SimulatorError(f"osd.{osd_id} did not answer {words[0]!r}: {exc}") from exc
        if reply["reply"] != "ok":
            raise SimulatorError(f"osd.{osd_id} refused {words[0]!r}: {reply.get('error')}")
        return reply

    def wait_event(self, osd_id: int, name: str, timeout: float) -> dict[str, Any]:
        """Block until the OSD reports event ``name``; raise SimulatorError on timeout."""
        sim = self.osds[osd_id]
        deadline = time.monotonic() + timeout
        with sim.changed:
            while True:
                for event in sim.events:
                    if event.get("event") == name:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SimulatorError(f"osd.{osd_id} never reported {name!r}")
                sim.changed.wait(left)

    def kill(self, osd_id: int) -> None:
        """SIGKILL one OSD (a crash) and reap it."""
        sim = self.osds[osd_id]
        sim.proc.kill()
        _reap(sim)

    def restart(self, osd_id: int) -> SimProcess:
        """Start a new incarnation of an OSD and re-wire the heartbeats both ways."""
        old = self.osds[osd_id]
        if old.proc.poll() is None:
            self.kill(osd_id)
        self.osds[osd_id] = self._spawn(osd_id)
        self._peer(osd_id)
        new = self.osds[osd_id]
        for other in self.osds:
            if other != osd_id:
                self.command(other, "peers", *new.heartbeat_addresses(self._placed(osd_id)[1]))
        return new

    def close(self) -> None:
        """End every child we started (by its pid) and reap it: EOF on stdin asks it to exit."""
        for sim in self.osds.values():
            _reap(sim)


def end_child(proc: subprocess.Popen[str], grace: float) -> None:
    """Close the stdin of a child that stops at EOF; kill it (by its pid) after ``grace`` s."""
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(BrokenPipeError):  # it is already gone
            proc.stdin.close()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _reap(sim: SimProcess) -> None:
    end_child(sim.proc, grace=2)
    if sim.reader is not None:
        sim.reader.join(timeout=REPLY_TIMEOUT)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    """First line of a child's stdout, or '' if it does not come in time."""
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    return result[0] if result else ""
