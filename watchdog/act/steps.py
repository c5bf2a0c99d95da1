"""Act stage, steps: each remediation step is a small plug-in with one contract.

A step does one thing to one OSD under a timeout and returns a line saying what it did, or
raises ``StepError`` saying why not. Steps are chosen and ordered in ``act.steps``; the
explicit registry is ``build_steps``.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from watchdog.credentials import WEBHOOK_TOKEN_ENV, child_environment, read_secret, shown_url
from watchdog.errors import MonitorError, SecretError, StepError, StepInterruptedError
from watchdog.host import procfs

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    from watchdog.config import ActConfig
    from watchdog.monitor import MonClient


@dataclass(frozen=True, slots=True)
class Incident:
    """The OSD a remediation is about, and the evidence."""

    daemon: str
    state: str
    cause: str
    pid: int | None
    at: float  # wall clock of the transition
    # The systemd unit the process ran in, read while it lived (kept with a fence, so a
    # resumed remediation restarts the right unit after the old process is gone).
    unit: str | None = None

    @property
    def osd_id(self) -> str:
        """The number alone, as ``ceph osd down`` and unit names want it."""
        return self.daemon.removeprefix("osd.")


class LoopView(Protocol):
    """What a step may know of the loop: its observations, its cycles, its shutdown."""

    stop_event: threading.Event

    def answered(self, daemon: str, old_pid: int | None) -> bool:
        """True once a new process of the OSD answers on every listener."""
        ...

    def wait_cycle(self, timeout: float) -> bool:
        """Wait for the next published cycle; False when shutting down."""
        ...


class Step(Protocol):
    """The contract every step follows."""

    name: str

    def run(self, event: Incident, timeout: float) -> str:
        """Do it within ``timeout`` seconds; return what was done or raise StepError."""
        ...


def _mon(mon: MonClient | None, prefix: str, ids: list[str], timeout: float) -> str:
    if mon is None:
        raise StepError("no monitor client (cluster.source = 'none')")
    try:
        text = mon.send(prefix, ids, timeout)
    except MonitorError as exc:
        raise StepError(str(exc)) from exc
    # `ceph osd down 99` says "osd.99 does not exist." and still exits 0.
    if "does not exist" in text or "doesn't exist" in text:
        raise StepError(f"{prefix} {' '.join(ids)}: {text}")
    return f"{prefix} {' '.join(ids)}: {text or 'ok'}"


class MonStep:
    """A step made of monitor commands, run in order; each names the OSD by id or name."""

    def __init__(self, name: str, mon: MonClient | None, commands: tuple[str, ...]) -> None:
        self.name = name
        self.mon = mon
        self.commands = commands  # "PREFIX daemon" or "PREFIX id"

    def run(self, event: Incident, timeout: float) -> str:
        """Run each command; the first failure stops the step."""
        done = []
        for command in self.commands:
            prefix, _, which = command.rpartition(" ")
            ids = [event.daemon if which == "daemon" else event.osd_id]
            done.append(_mon(self.mon, prefix, ids, timeout))
        return "; ".join(done)


def fence(mon: MonClient | None) -> MonStep:
    """``osd add-noup`` then ``osd down``: down, and it stays down, so clients fail over.

    noup goes first, so the OSD cannot undo the mark-down by booting again at once.
    """
    return MonStep("fence", mon, ("osd add-noup daemon", "osd down id"))


def markdown(mon: MonClient | None) -> MonStep:
    """A bare ``osd down``: a zombie is up again within seconds (design.md s3); on request."""
    return MonStep("markdown", mon, ("osd down id",))


def unfence(mon: MonClient | None) -> MonStep:
    """``osd rm-noup``: let the (restarted, verified) OSD back in."""
    return MonStep("unfence", mon, ("osd rm-noup daemon",))


def unit_of(pid: int | None, proc_root: Path = Path("/proc")) -> str | None:
    """The systemd unit a process runs in, or None (no process, no unit, unreadable)."""
    if pid is None:
        return None
    try:
        return procfs.systemd_unit(proc_root, pid)
    except OSError:
        return None


def fill(part: str, event: Incident) -> str:
    """Replace {id} and {daemon}; any other braces are left alone (scripts use them)."""
    return part.replace("{id}", event.osd_id).replace("{daemon}", event.daemon)


def _run_command(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        out = subprocess.run(  # noqa: S603 - argv from the operator's config, no shell
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env or child_environment(),
        )
    except FileNotFoundError as exc:
        raise StepError(f"{argv[0]}: not found") from exc
    except OSError as exc:  # e.g. EMFILE: we are at our own fd limit
        raise StepError(f"{argv[0]}: cannot start: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise StepError(f"{' '.join(argv)}: still running after {timeout:g}s") from exc
    if out.returncode != 0:
        raise StepError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return " ".join(argv)


class Restart:
    """``systemctl restart ceph-osd@N``, or the configured command (containers).

    Placeholders: ``{id}``, ``{daemon}``; ``{unit}``, the systemd unit the OSD's process runs
    in (cephadm's ``ceph-<fsid>@osd.N.service``); ``{fsid}``, the cluster's, as the monitors
    give it now (``ceph fsid``).
    """

    name = "restart"

    def __init__(
        self, config: ActConfig, mon: MonClient | None = None, proc_root: Path = Path("/proc")
    ) -> None:
        self.config = config
        self.mon = mon
        self.proc_root = proc_root

    def argv(self, event: Incident, *, resolve: bool = True) -> list[str]:
        """The exact command line for this OSD ({unit}, {fsid} left as is unless ``resolve``)."""
        if self.config.restart_command:
            parts = [fill(part, event) for part in self.config.restart_command]
        else:
            unit = self.config.restart_unit_template.replace("{id}", event.osd_id)
            parts = [self.config.systemctl_command, "restart", unit]
        if not resolve:
            return parts
        if any("{unit}" in part for part in parts):
            unit = self._unit(event)
            parts = [part.replace("{unit}", unit) for part in parts]
        if any("{fsid}" in part for part in parts):
            fsid = self._fsid(event)
            parts = [part.replace("{fsid}", fsid) for part in parts]
        return parts

    def _fsid(self, event: Incident) -> str:
        if self.mon is None:
            raise StepError(f"{event.daemon}: {{fsid}} needs the monitors, and none is configured")
        try:
            answer = self.mon.command("fsid", timeout=10)
        except MonitorError as exc:
            raise StepError(f"{event.daemon}: cannot ask the monitors for the fsid: {exc}") from exc
        fsid = answer.get("fsid") if isinstance(answer, dict) else None
        if not isinstance(fsid, str) or not fsid:
            raise StepError(f"{event.daemon}: the monitors' fsid answer has no fsid: {answer!r}")
        return fsid

    def _unit(self, event: Incident) -> str:
        """The unit the OSD's process runs in (``{unit}``: cephadm's names hold the fsid)."""
        if event.unit is not None:
            return event.unit  # read while the process lived: its pid may now be another's
        if event.pid is None:
            raise StepError(f"{event.daemon}: no process, so no unit to restart ({{unit}})")
        try:
            unit = procfs.systemd_unit(self.proc_root, event.pid)
        except OSError as exc:
            raise StepError(f"{event.daemon}: cannot read its unit: {exc}") from exc
        if unit is None:
            raise StepError(
                f"{event.daemon}: pid {event.pid} runs in no systemd service ({{unit}} needs one)"
            )
        return unit

    def run(self, event: Incident, timeout: float) -> str:
        """Run it and wait for it to return."""
        return _run_command(self.argv(event), timeout)


class Verify:
    """Wait until a new process of the OSD answers with its banner on every listener."""

    name = "verify"

    def __init__(
        self, answered: Callable[[str, int | None], bool], wait_cycle: Callable[[float], bool]
    ) -> None:
        self.answered = answered
        self.wait_cycle = wait_cycle  # the next cycle's observations, or False on shutdown

    def run(self, event: Incident, timeout: float) -> str:
        """Judge each cycle the loop publishes until the check holds or time runs out."""
        started = time.monotonic()
        deadline = started + timeout
        while not self.answered(event.daemon, event.pid):
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepError(f"{event.daemon}: no new process answering within {timeout:g}s")
            if not self.wait_cycle(left):
                waited = time.monotonic() - started
                raise StepInterruptedError(f"{event.daemon}: stopped waiting after {waited:.1f}s")
        return f"{event.daemon}: a new process answers on every listener"


def event_environment(event: Incident) -> dict[str, str]:
    """The event as OSD_WATCHDOG_* variables, for exec."""
    fields = {f"OSD_WATCHDOG_{k.upper()}": str(v) for k, v in asdict(event).items()}
    return {**child_environment(), **fields, "OSD_WATCHDOG_OSD_ID": event.osd_id}


class Exec:
    """Any command, with the event described in its environment."""

    name = "exec"

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def run(self, event: Incident, timeout: float) -> str:
        """Run the command."""
        argv = [fill(part, event) for part in self.argv]
        return _run_command(argv, timeout, env=event_environment(event))


class Webhook:
    """A JSON POST (chat, incident tools), with bounded retries."""

    name = "webhook"

    def __init__(self, config: ActConfig, stop: threading.Event) -> None:
        if config.webhook_url is None:
            raise StepError("webhook needs act.webhook_url")
        self.url = config.webhook_url
        self.retries = config.webhook_retries
        self.per_try = config.webhook_timeout_seconds
        self.token_file = config.webhook_token_file
        self.stop = stop

    def run(self, event: Incident, timeout: float) -> str:
        """POST the event; retry on errors and 5xx, at most ``retries`` more times."""
        headers = {"Content-Type": "application/json"}
        try:  # read at each use (a rotated token applies at once), never logged
            token = read_secret(self.token_file, WEBHOOK_TOKEN_ENV)
        except SecretError as exc:
            raise StepError(f"webhook token: {exc}") from None
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps({"source": "ceph-osd-watchdog", **asdict(event)})
        import requests  # noqa: PLC0415 - only this step needs it (~16 MiB resident)

        deadline = time.monotonic() + timeout
        problem = ""
        for attempt in range(self.retries + 1):
            left = min(self.per_try, deadline - time.monotonic())
            if left <= 0:
                break
            try:
                reply = requests.post(self.url, data=body, headers=headers, timeout=left)
            except requests.RequestException as exc:
                problem = f"{type(exc).__name__}"
            else:
                if reply.status_code < 500:
                    if reply.status_code >= 400:
                        raise StepError(f"webhook: HTTP {reply.status_code}")
                    return f"webhook: HTTP {reply.status_code} after {attempt + 1} attempt(s)"
                problem = f"HTTP {reply.status_code}"
            if self.stop.wait(min(2.0**attempt * 0.5, max(0.0, deadline - time.monotonic()))):
                break
        raise StepError(f"webhook: gave up after {self.retries + 1} attempt(s): {problem}")


class Maker(NamedTuple):
    """How one step (``stepkinds.KINDS``) is put in words and built."""

    words: Callable[[ActConfig, str, str], str]  # (config, daemon, osd id) -> the plan
    build: Callable[[ActConfig, MonClient | None, LoopView], Step]


def _restart_words(config: ActConfig, daemon: str, _: str) -> str:
    command = Restart(config).argv(Incident(daemon, "", "", None, 0.0), resolve=False)
    return f"restart it ({' '.join(command)})"


MAKERS: dict[str, Maker] = {
    "fence": Maker(
        lambda _, d, i: f"fence {d} (ceph osd add-noup {d}; ceph osd down {i})",
        lambda _, mon, __: fence(mon),
    ),
    "markdown": Maker(
        lambda _, d, i: f"mark {d} down (ceph osd down {i})", lambda _, mon, __: markdown(mon)
    ),
    "restart": Maker(_restart_words, lambda config, mon, _: Restart(config, mon)),
    "verify": Maker(
        lambda *_: "wait until a new process answers on every listener",
        lambda _, __, loop: Verify(loop.answered, loop.wait_cycle),
    ),
    "unfence": Maker(
        lambda _, d, __: f"unfence it (ceph osd rm-noup {d})", lambda _, mon, __: unfence(mon)
    ),
    "exec": Maker(
        lambda config, *_: f"run {' '.join(config.exec_command)}",
        lambda config, *_: Exec(config.exec_command),
    ),
    "webhook": Maker(
        lambda config, *_: f"POST the event to {shown_url(config.webhook_url or '')}",
        lambda config, _, loop: Webhook(config, loop.stop_event),
    ),
}


def describe(config: ActConfig, daemon: str) -> str:
    """The configured steps for one OSD, in words, with the exact commands."""
    osd_id = daemon.removeprefix("osd.")
    return ", then ".join(MAKERS[name].words(config, daemon, osd_id) for name in config.steps)


def build_steps(
    config: ActConfig,
    names: list[str],
    mon: MonClient | None,
    loop: LoopView,
) -> dict[str, Step]:
    """The steps named, by name."""
    return {name: MAKERS[name].build(config, mon, loop) for name in names}
