"""Act stage, ledger: fences we set (persisted), the audit trail, and recent history.

A fence this watchdog set must not be forgotten when the watchdog restarts: an OSD left with
noup stays out of the cluster. Fences live in ``state_dir/fences.json`` (written atomically);
every decision, taken or refused, is appended to the audit file as one JSON line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from watchdog.act.guards import History

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)


class Ledger:
    """Thread-safe: the loop decides, remediation threads record results."""

    def __init__(self, state_dir: Path, audit_path: Path) -> None:
        self.state_dir = state_dir
        self.audit_path = audit_path
        self._lock = threading.Lock()
        self._fences: dict[str, dict[str, Any]] = self._load()
        self._last_action: dict[str, float] = {}
        self._actions: list[float] = []
        self._markdowns: defaultdict[str, list[float]] = defaultdict(list)

    @property
    def fences_path(self) -> Path:
        """Where the fences are kept."""
        return self.state_dir / "fences.json"

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.fences_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            path = self.fences_path
            log.error("cannot read %s: %s; earlier fences may be unknown", path, exc)  # noqa: TRY400
            return {}
        if data:
            log.warning("OSDs fenced by an earlier run, still fenced: %s", ", ".join(sorted(data)))
        return {str(k): dict(v) for k, v in data.items()}

    def fenced(self) -> dict[str, dict[str, Any]]:
        """OSDs this watchdog fenced and has not unfenced yet."""
        with self._lock:
            return dict(self._fences)

    def set_fence(self, daemon: str, pid: int | None) -> None:
        """Remember a fence before anything else happens to the OSD."""
        with self._lock:
            self._fences[daemon] = {"since": time.time(), "pid": pid}
            try:
                self._write_fences()
            except OSError:
                del self._fences[daemon]  # not on disk: the caller must not set it
                raise

    def clear_fence(self, daemon: str) -> None:
        """Forget a fence once it is lifted."""
        with self._lock:
            self._fences.pop(daemon, None)
            try:
                self._write_fences()
            except OSError as exc:
                # Harmless: the next start verifies the OSD and lifts the fence again.
                log.error("%s: fence lifted, but %s not updated: %s", daemon, self.fences_path, exc)  # noqa: TRY400

    def _write_fences(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        partial = self.fences_path.with_suffix(".tmp")
        partial.write_text(json.dumps(self._fences, indent=2, sort_keys=True))
        partial.replace(self.fences_path)  # never a half-written file

    def started(self, daemon: str, *, marks_down: bool) -> None:
        """A remediation begins: counts for cooldown, rate limit and the mark-down budget."""
        now = time.time()
        with self._lock:
            self._last_action[daemon] = now
            self._actions.append(now)
            if marks_down:
                self._markdowns[daemon].append(now)

    def history(self) -> History:
        """A copy for the guards."""
        with self._lock:
            return History(
                last_action=dict(self._last_action),
                actions=tuple(self._actions),
                markdowns={d: tuple(t) for d, t in self._markdowns.items()},
            )

    def audit(self, **record: Any) -> None:  # noqa: ANN401 - JSON values of any kind
        """Append one decision or step result; a failure to write is logged, not fatal."""
        line = json.dumps({"time": time.time(), **record}, sort_keys=True)
        with self._lock:
            try:
                self.audit_path.parent.mkdir(parents=True, exist_ok=True)
                with self.audit_path.open("a", encoding="utf-8") as audit:
                    audit.write(line + "\n")
            except OSError as exc:
                log.error("cannot append to the audit file %s: %s", self.audit_path, exc)  # noqa: TRY400
