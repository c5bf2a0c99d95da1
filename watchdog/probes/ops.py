"""Probe stage, ops prober: does the OSD get its work done? Asked of its admin socket.

Per OSD and cycle, two small commands on its admin socket (watchdog/host/asok.py):

* ``dump_ops_in_flight``: the ops it holds now with their ages and stages; a handful of
  bytes on an idle OSD. Only the ops that wait on this OSD itself count (queued for a PG,
  running): an op waiting for a replica's answer says the replica is stuck, not this OSD;
* ``perf dump`` of the ``osd`` logger: its counters of finished client ops (``op``) and
  replica ops (``subop``), about 3 kB, the same size whatever the load.

An OSD whose op threads are stuck keeps its messengers and heartbeats: every banner probe
passes, while its in-flight ops age and the finished counters stand still. One whose disk is
slow keeps finishing ops; an idle one holds none. Telling those apart is assess's job; this
prober only reads. Local, with no cephx key: it needs the OSD's uid (or root) to connect.
"""

from __future__ import annotations

# Imported whole here, not on first use: a watchdog that has dropped its privileges (or
# runs from a Python it can no longer read) cannot load a module later.
import concurrent.futures
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from watchdog.host import asok
from watchdog.model import Incarnation, OpsOutcome, OpsSample

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from watchdog.model import Target

WORKERS = 8  # admin sockets asked at once: a hanging one costs one worker one timeout
# Seconds before looking again for the admin socket of a process that had none (or none we
# may reach): doubling from the first to the last. Looking reads every fd of the process and
# the host's unix socket table: at 125 OSDs without one, doing it every cycle took a second
# of CPU per cycle. The first wait is short: an OSD found just after its start may not
# have made its socket yet.
SEARCH_AGAIN = (2.0, 60.0)


class Missing(NamedTuple):
    """A process whose admin socket was not found: its sample until ``look_at``."""

    look_at: float  # monotonic time of the next look
    wait: float  # seconds waited before this look; the next wait is twice that
    sample: OpsSample


# Where an op waits on this OSD itself (Ceph's op tracker "flag_point"). Every other stage
# waits on something else: "waiting for sub ops" on the replicas, "waiting for readable" on
# a replica's read lease, "waiting for peered", "delayed", a scrub. When one OSD's op threads
# stop, its peers' ops wait for its sub ops: they are victims, not culprits, and are not
# counted against them.
OWN_STAGES = frozenset({
    "initiated", "header_read", "throttled", "all_read", "dispatched", "queued for pg",
    "reached pg", "started", "waiting for rw locks", "no flag points reached",
})  # fmt: skip


def sample_ops(path: Path, timeout: float) -> OpsSample:
    """One look at the ops of the OSD behind ``path``; failures are outcomes."""
    try:
        ops = asok.ask(path, {"prefix": "dump_ops_in_flight", "format": "json"}, timeout)
        perf = asok.ask(path, {"prefix": "perf dump", "logger": "osd", "format": "json"}, timeout)
    except TimeoutError:
        return OpsSample(OpsOutcome.TIMEOUT, detail="its admin socket did not answer in time")
    except PermissionError as exc:
        return OpsSample(OpsOutcome.ACCESS_DENIED, detail=str(exc))
    except OSError as exc:
        denied = "access denied" in str(exc)
        return OpsSample(OpsOutcome.ACCESS_DENIED if denied else OpsOutcome.UNREACHABLE,
                         detail=str(exc))  # fmt: skip
    return parse(ops, perf)


def parse(ops: Any, perf: Any) -> OpsSample:  # noqa: ANN401 - the OSD's JSON
    """The sample from the two answers (checked field by field)."""
    listed = ops.get("ops", []) if isinstance(ops, dict) else []
    oldest, stage, own = 0.0, "", 0
    for op in listed:
        if not isinstance(op, dict):
            continue
        data = op.get("type_data")
        where = str(data.get("flag_point", "")) if isinstance(data, dict) else ""
        if where not in OWN_STAGES:
            continue
        own += 1
        age = op.get("age")
        if isinstance(age, int | float) and age > oldest:
            oldest, stage = float(age), where
    counters = perf.get("osd", {}) if isinstance(perf, dict) else {}
    finished = [counters.get(name) for name in ("op", "subop")]
    completed = sum(finished) if all(isinstance(n, int) for n in finished) else None  # type: ignore[arg-type]
    return OpsSample(
        OpsOutcome.OK,
        in_flight=own,
        oldest_seconds=oldest,
        oldest_stage=stage,
        completed=completed,
    )


class OpsProbe:
    """Asks every local OSD's admin socket, several at once; remembers where each one is."""

    name = "ops"

    def __init__(self, proc_root: Path) -> None:
        self.proc_root = proc_root
        self._paths: dict[Incarnation, Path] = {}
        self._not_found: dict[Incarnation, Missing] = {}
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="ops")

    def run(self, targets: Sequence[Target], *, timeout: float) -> dict[str, OpsSample]:
        """One sample per OSD with a process here; static targets are absent."""
        local = [t for t in targets if t.incarnation is not None and not t.blind_reason]
        futures = {
            t.daemon: self._pool.submit(self._one, t.incarnation, timeout)
            for t in local
            if t.incarnation is not None
        }
        found = {}
        for daemon, future in futures.items():
            try:
                found[daemon] = future.result(timeout=timeout * 2)
            except concurrent.futures.TimeoutError:
                found[daemon] = OpsSample(OpsOutcome.TIMEOUT, detail="no answer in time")
        self._paths = {t.incarnation: p for t in local
                       if t.incarnation and (p := self._paths.get(t.incarnation))}  # fmt: skip
        here = {t.incarnation for t in local}
        self._not_found = {i: seen for i, seen in self._not_found.items() if i in here}
        return found

    def _one(self, incarnation: Incarnation, timeout: float) -> OpsSample:
        path = self._paths.get(incarnation)
        if path is None:
            looked = self._not_found.get(incarnation)
            if looked is not None and time.monotonic() < looked.look_at:
                return looked.sample
            try:
                path = asok.find(self.proc_root, incarnation.pid)
            except OSError as exc:
                outcome = (OpsOutcome.ACCESS_DENIED if isinstance(exc, PermissionError)
                           else OpsOutcome.UNREACHABLE)  # fmt: skip
                detail = f"finding its admin socket: {exc}"
                missing = OpsSample(outcome, detail=detail)
                wait = SEARCH_AGAIN[0] if looked is None else min(looked.wait * 2, SEARCH_AGAIN[1])
                self._not_found[incarnation] = Missing(time.monotonic() + wait, wait, missing)
                return missing
            self._paths[incarnation] = path
        sample = sample_ops(path, timeout)
        if not sample.observed:
            self._paths.pop(incarnation, None)  # found again next time
        return sample

    def close(self) -> None:
        """Let the worker threads go."""
        self._pool.shutdown(wait=False, cancel_futures=True)
