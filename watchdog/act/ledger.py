"""Act stage, ledger: what this watchdog did, kept in ``state_dir`` so a restart forgets nothing.

* ``fences.json``: OSDs we fenced, each with the steps still to run. A fence must not be
  forgotten: an OSD left with noup stays out of the cluster. The next start (or reload)
  resumes them.
* ``history.json``: when each remediation started, for the cooldown, the hourly rate and the
  mark-down budget. Rebuilt from the audit trail when missing; when unreadable, the guards
  refuse for their longest window instead of starting again from "nothing happened".
* the audit file: every decision, taken or refused, and every step result, one JSON line.

Both state files are written whole and renamed into place, never half-written.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from watchdog.act.guards import History
from watchdog.stepkinds import marks_down

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

log = logging.getLogger(__name__)

KEEP_SECONDS = 86400.0  # no guard looks further back (cooldown_seconds is at most a day)


@dataclass(frozen=True, slots=True)
class Fence:
    """An OSD this watchdog fenced (noup set), and how to finish its remediation."""

    since: float  # wall clock
    pid: int | None  # the process that was fenced
    steps_left: tuple[str, ...] | None  # None: a record from before the journal
    unit: str | None = None  # the systemd unit its process ran in

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Fence:
        """From fences.json; raises on a wrong shape."""
        left = raw.get("steps_left")
        pid, unit = raw.get("pid"), raw.get("unit")
        return cls(
            since=float(raw.get("since", 0.0)),
            pid=int(pid) if pid is not None else None,
            steps_left=tuple(str(s) for s in left) if isinstance(left, list) else None,
            unit=unit if isinstance(unit, str) else None,
        )

    def json(self) -> dict[str, Any]:
        """For fences.json."""
        left = list(self.steps_left) if self.steps_left is not None else None
        return {"since": self.since, "pid": self.pid, "steps_left": left, "unit": self.unit}


@dataclass(frozen=True, slots=True)
class Started:
    """One remediation started: for the cooldown, the hourly rate and the mark-down budget."""

    daemon: str
    at: float  # wall clock
    marks_down: bool

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Started:
        """From history.json or an audit record; raises on a wrong shape."""
        return cls(str(raw["daemon"]), float(raw["at"]), bool(raw["marks_down"]))


class Ledger:
    """Thread-safe: the loop decides, remediation threads record results."""

    def __init__(self, state_dir: Path, audit_path: Path) -> None:
        self.state_dir = state_dir
        self.audit_path = audit_path
        self._lock = threading.Lock()
        self._fences: dict[str, Fence] = self._load_fences()
        self._started: list[Started] = []
        self._unknown_before: float | None = None
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # told every audit record
        self._load_history()

    @property
    def fences_path(self) -> Path:
        """Where the fences are kept."""
        return self.state_dir / "fences.json"

    @property
    def history_path(self) -> Path:
        """Where the guard history is kept."""
        return self.state_dir / "history.json"

    def _load_fences(self) -> dict[str, Fence]:
        try:
            data = json.loads(self.fences_path.read_text())
            fences = {str(k): Fence.parse(dict(v)) for k, v in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            path = self.fences_path
            log.error("cannot read %s: %s; earlier fences may be unknown", path, exc)  # noqa: TRY400
            return {}
        if fences:
            log.warning(
                "OSDs fenced by an earlier run, still fenced: %s", ", ".join(sorted(fences))
            )
        return fences

    def _load_history(self) -> None:
        try:
            data = json.loads(self.history_path.read_text())
            started = [Started.parse(e) for e in data["started"]]
            unknown = data.get("unknown_before")
            self._unknown_before = None if unknown is None else float(unknown)
        except FileNotFoundError:
            started = self._from_audit()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self._unknown_before = time.time()
            log.error(  # noqa: TRY400 - a state, not a crash: the guards refuse for a while
                "guard history %s is unreadable (%s): refusing remediation for the guards' "
                "longest window rather than assuming nothing happened",
                self.history_path,
                exc,
            )
            started = []
        self._started = started
        if self._unknown_before is not None:
            try:
                self._write_history()  # so a restart does not extend the wait
            except OSError as exc:
                log.error("cannot rewrite %s: %s", self.history_path, exc)  # noqa: TRY400

    def _from_audit(self) -> list[Started]:
        """The remediations the audit trail says were started (a first run has none)."""
        try:
            lines = self.audit_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            log.info("no guard history in %s yet: nothing was remediated here", self.state_dir)
            return []
        except OSError as exc:
            self._unknown_before = time.time()
            log.error("cannot read %s to rebuild the history: %s", self.audit_path, exc)  # noqa: TRY400
            return []
        started = []
        for line in lines:
            try:
                record = json.loads(line)
                if record.get("result") == "started":
                    # The action label joins the step names: "fence_restart_verify_unfence".
                    marks = marks_down(str(record.get("action", "")).split("_"))
                    started.append(
                        Started(str(record["ceph_daemon"]), float(record["time"]), marks)
                    )
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut short by a crash: the rest still counts
        log.info("guard history rebuilt from %s: %d remediation(s)", self.audit_path, len(started))
        return started

    def fenced(self) -> dict[str, Fence]:
        """OSDs this watchdog fenced and has not unfenced yet."""
        with self._lock:
            return dict(self._fences)

    def set_fence(
        self, daemon: str, pid: int | None, steps_left: list[str], unit: str | None = None
    ) -> None:
        """Remember a fence before anything else happens to the OSD; raises OSError.

        ``unit``: the systemd unit its process runs in, for a restart resumed after it died.
        """
        with self._lock:
            self._fences[daemon] = Fence(time.time(), pid, tuple(steps_left), unit)
            try:
                self._write_fences()
            except OSError:
                del self._fences[daemon]  # not on disk: the caller must not set it
                raise

    def progress(self, daemon: str, steps_left: list[str]) -> None:
        """A step of a fenced OSD's remediation is done: the next start resumes after it."""
        with self._lock:
            if daemon not in self._fences:
                return
            self._fences[daemon] = replace(self._fences[daemon], steps_left=tuple(steps_left))
            try:
                self._write_fences()
            except OSError as exc:
                # The older record is still safe: resuming repeats a step (restart, verify).
                log.error("%s: cannot record progress in %s: %s", daemon, self.fences_path, exc)  # noqa: TRY400

    def clear_fence(self, daemon: str) -> None:
        """Forget a fence once it is lifted."""
        with self._lock:
            self._fences.pop(daemon, None)
            try:
                self._write_fences()
            except OSError as exc:
                # Harmless: the next start verifies the OSD and lifts the fence again.
                log.error("%s: fence lifted, but %s not updated: %s", daemon, self.fences_path, exc)  # noqa: TRY400

    def _write(self, path: Path, data: object) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True))
        partial.replace(path)  # never a half-written file

    def _write_fences(self) -> None:
        self._write(self.fences_path, {d: f.json() for d, f in self._fences.items()})

    def _write_history(self) -> None:
        started = [asdict(e) for e in self._started]
        self._write(self.history_path, {"started": started, "unknown_before": self._unknown_before})

    def started(self, daemon: str, *, marks_down: bool) -> None:
        """A remediation begins: it counts for cooldown, rate limit and the mark-down budget."""
        now = time.time()
        with self._lock:
            self._started = [e for e in self._started if now - e.at < KEEP_SECONDS]
            self._started.append(Started(daemon, now, marks_down))
            try:
                self._write_history()
            except OSError as exc:
                log.error("cannot record the remediation in %s: %s", self.history_path, exc)  # noqa: TRY400

    def history(self) -> History:
        """A copy for the guards."""
        with self._lock:
            last: dict[str, float] = {}
            markdowns: defaultdict[str, list[float]] = defaultdict(list)
            for entry in self._started:
                last[entry.daemon] = max(last.get(entry.daemon, 0.0), entry.at)
                if entry.marks_down:
                    markdowns[entry.daemon].append(entry.at)
            return History(
                last_action=last,
                actions=tuple(e.at for e in self._started),
                markdowns={d: tuple(t) for d, t in markdowns.items()},
                unknown_before=self._unknown_before,
            )

    def audit(self, **record: Any) -> None:  # noqa: ANN401 - JSON values of any kind
        """Append one decision or step result; a failure to write is logged, not fatal.

        Then each listener gets the record (the mgr reporter puts it in the cluster log).
        """
        entry = {"time": time.time(), **record}
        line = json.dumps(entry, sort_keys=True)
        with self._lock:
            try:
                self.audit_path.parent.mkdir(parents=True, exist_ok=True)
                with self.audit_path.open("a", encoding="utf-8") as audit:
                    audit.write(line + "\n")
            except OSError as exc:
                log.error("cannot append to the audit file %s: %s", self.audit_path, exc)  # noqa: TRY400
        for listener in self.listeners:
            listener(entry)
