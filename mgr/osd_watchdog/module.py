"""ceph-mgr module: the watchdogs' zombie verdicts as Ceph health checks.

Each host's osd-watchdog calls ``ceph osd-watchdog report -i -`` with its verdicts every
report keepalive (and at once when a verdict changes). The module keeps each host's latest
report (book.py) and raises:

* OSD_ACCEPT_DEAD (HEALTH_ERR): an OSD the map says is up, whose watchdog found its client
  accept path dead. Ceph will not fail it over by itself, so its PGs' IO hangs until a
  person acts: that is data unavailable, not degraded.
* OSD_FD_PRESSURE (HEALTH_WARN): an OSD near its open-files limit.
* OSD_UNREACHABLE (HEALTH_WARN): other hosts cannot reach an OSD its own host sees answer.
* OSD_WATCHDOG_DOWN (HEALTH_WARN): a host with up OSDs whose watchdog reported once and
  has not within ``max_report_age`` seconds since (or two of the keepalives its reports
  declare, if longer), so a silent watchdog is itself visible (with
  ``warn_unreported_hosts``, also hosts whose watchdog never reported).

What it costs the mgr: above all, the commands themselves (ceph-mgr charges ~2 ms of CPU
for any command to a Python module), so each reply asks the watchdogs for a keepalive that
keeps their unchanged reports within ``keepalive_rate`` a second all together (book.pace).
A report is judged against a view of the OSD map made when the map
changes (at most every MAP_EVERY seconds), not per report, and changes only its own host's
part of the checks; ``set_health_checks`` runs only when a check changes. Each host's states
are kept in the store under a key of its own, written when they change, so a standby that
takes over raises the same checks at once. Zombie verdicts and remediation steps reported by
a watchdog go to the cluster log, each once.
"""

import errno
import json
import threading
import time
from typing import Any, Dict, Optional, Tuple

import mgr_module  # type: ignore[import-not-found]
from mgr_module import MgrModule, Option

from . import store
from .book import MIN_KEEPALIVE_RATE, Book
from .report import ReportError, parse_report
from .text import status_table
from .view import Known, build_view, crush_hosts

MAP_EVERY = 2.0  # seconds between two views of a changing map: each converts the whole map
LOAD_WAIT = 30.0  # seconds a command waits for serve() to load the kept verdicts


class Module(MgrModule):  # type: ignore[misc]
    """The module ceph-mgr loads: commands, options, and the judging thread."""

    # Tentacle (20) asks every module for a registry of its decorated commands and fails to
    # load one without it ("type object 'Module' has no attribute 'CLICommand'"); ours is
    # empty, the commands are the COMMANDS list below. Older releases have no such registry.
    if hasattr(mgr_module, "CLICommandBase"):
        CLICommand = mgr_module.CLICommandBase.make_registry_subtype("OsdWatchdogCLICommand")
    NOTIFY_TYPES = [mgr_module.NotifyType.osd_map]  # noqa: RUF012 - the mgr reads it

    COMMANDS = [  # noqa: RUF012 - the mgr reads this class attribute
        {
            "cmd": "osd-watchdog report",
            "desc": "Hand this host's watchdog verdicts to the module (JSON on -i)",
            "perm": "w",
        },
        {
            "cmd": "osd-watchdog status",
            "desc": "Every OSD with the latest watchdog verdict on it",
            "perm": "r",
        },
    ]
    MODULE_OPTIONS = [  # noqa: RUF012 - the mgr reads this class attribute
        Option(
            name="max_report_age",
            type="secs",
            default=60,
            desc="A host's report older than this is ignored, and the host is reported "
            "in OSD_WATCHDOG_DOWN if it has up OSDs",
        ),
        Option(
            name="warn_unreported_hosts",
            type="bool",
            default=False,
            desc="Also raise OSD_WATCHDOG_DOWN for hosts with up OSDs whose watchdog has "
            "never reported (turn on once every OSD host runs one)",
        ),
        Option(
            name="keepalive_rate",
            type="float",
            default=10.0,
            min=MIN_KEEPALIVE_RATE,
            desc="Unchanged reports a second that all watchdogs together may send: the "
            "module asks each for a keepalive of (hosts reporting / this), in steps of 30 s, "
            "when that is longer than its own (each report costs the mgr about 2 ms of CPU)",
        ),
        Option(
            name="min_remote_failures",
            type="int",
            default=2,
            min=1,
            desc="Other hosts that must fail to reach an OSD that its own host sees "
            "answering before OSD_UNREACHABLE is raised",
        ),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - the mgr's own
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self.book = Book(max_age=60.0)
        self.kept: Dict[str, Tuple[Any, ...]] = {}  # per host: what the store last got
        self.shards: Dict[str, int] = {}  # per host: how many store values it has
        self.raised: Dict[str, Dict[str, Any]] = {}
        self.known: Dict[int, Known] = {}
        self.crush: Dict[int, str] = {}
        self.crush_version: Optional[int] = None
        self.map_changed = True
        self.view_at = 0.0  # monotonic time of the last view
        self.ticked_at = 0.0  # monotonic time of the last tick
        # Set once serve() has loaded every host's verdicts: judging before that would clear
        # the checks of hosts not loaded yet, so nothing judges, and reports wait.
        self.loaded = threading.Event()

    # -- mgr entry points ---------------------------------------------------------------

    def serve(self) -> None:
        """Load what the previous active mgr kept, then judge as time passes."""
        with self.lock:
            # What the previous active mgr last raised, raised again before anything else:
            # the new mgr sends its first health report as soon as its OSDs have reported
            # to it, whichever of its modules have started by then. (Raised from __init__
            # instead, the mgr drops them: the module is not yet among its running ones.)
            self._raise_kept()
            self.book = Book(
                max_age=self._max_age(),
                min_remote_failures=self._min_remote(),
                warn_unreported=self._warn_unreported(),
                keepalive_rate=self._keepalive_rate(),
            )
            # Up states first, with no metadata (at 10,000 OSDs metadata takes seconds):
            # enough to judge the kept verdicts against.
            self._view(metadata=False)
            self._load(time.time())
            self.loaded.set()
            self._tick()
            self._view()
        while not self.stop_event.is_set():
            self.wake.wait(self._next_turn())
            self.wake.clear()
            with self.lock:
                if self.map_changed and time.monotonic() - self.view_at >= MAP_EVERY:
                    self._view()
                if time.monotonic() - self.ticked_at >= self._every():
                    self._tick()

    def shutdown(self) -> None:
        """End serve()."""
        self.stop_event.set()
        self.wake.set()

    def notify(self, notify_type: Any, notify_id: str) -> None:  # noqa: ANN401, ARG002
        """The OSD map changed: a new view at the next turn of the thread."""
        if str(getattr(notify_type, "value", notify_type)) == "osd_map":
            self.map_changed = True
            self.wake.set()

    def config_notify(self) -> None:
        """A module option changed."""
        with self.lock:
            self.book.max_age = self._max_age()
            self.book.min_remote_failures = self._min_remote()
            self.book.warn_unreported = self._warn_unreported()
            self.book.keepalive_rate = self._keepalive_rate()
            if self.loaded.is_set():
                self._tick()

    def handle_command(self, inbuf: Optional[str], cmd: Dict[str, Any]) -> Tuple[int, str, str]:
        """One of COMMANDS: (return code, output, status text)."""
        if not self.loaded.wait(LOAD_WAIT):
            return -errno.EAGAIN, "", "osd-watchdog: the module is still loading its verdicts"
        if cmd["prefix"] == "osd-watchdog report":
            return self._report(inbuf or "")
        if cmd["prefix"] == "osd-watchdog status":
            return self._status(cmd.get("format", "plain"))
        return -errno.EINVAL, "", f"unknown command {cmd['prefix']}"

    # -- commands -----------------------------------------------------------------------

    def _report(self, text: str) -> Tuple[int, str, str]:
        try:
            report = parse_report(text)
        except ReportError as exc:
            return -errno.EINVAL, "", f"osd-watchdog report refused: {exc}"
        with self.lock:
            try:
                kept, refused, events = self.book.accept(report, time.time())
            except ReportError as exc:  # the whole report: nothing of it is kept
                reply = {"accepted": [], "refused": [str(exc)], "events_through": 0.0}
                return -errno.EPERM, _json(reply), f"osd-watchdog report refused: {exc}"
            except Exception as exc:  # a bug must not stop the module judging the others
                self.log.exception("judging the report of %s", report.host)
                return -errno.EINVAL, "", f"osd-watchdog report not judged: {exc!r}"
            for event in events:
                self.cluster_log(
                    "cluster",
                    self.ClusterLogPrio.WARN,
                    f"osd-watchdog on {report.host}: {event.message}",
                )
            self._keep(report.host)
            self._judge()
            keepalive = self.book.pace()
        reply = {
            "accepted": kept,
            "refused": refused,
            "events_through": self.book.logged_through.get(report.host, 0.0),
            "keepalive": keepalive,
        }
        if refused:
            # Partly refused is an error the watchdog logs, but what was on this host is kept.
            return -errno.EPERM, _json(reply), "refused: " + "; ".join(refused)
        return 0, _json(reply), ""

    def _status(self, fmt: str) -> Tuple[int, str, str]:
        with self.lock:
            rows = self.book.status(time.time())
        if fmt.startswith("json"):
            return 0, _json(rows), ""
        return 0, status_table(rows), ""

    # -- judging ------------------------------------------------------------------------

    def _view(self, metadata: bool = True) -> None:
        """A view of the map as it is now; metadata only for new or rebooted OSDs.

        Without ``metadata``, OSDs are named by their CRUSH host alone and asked about at
        the next view.
        """
        self.map_changed = False
        self.view_at = time.monotonic()
        version = self.get_osdmap().get_crush_version()
        if version != self.crush_version:
            self.crush = crush_hosts(self.get("osd_map_tree"))
            self.crush_version = version
        view, self.known = build_view(
            self.get("osd_map"),
            self.crush,
            (lambda osd: self.get_metadata("osd", str(osd))) if metadata else (lambda _: None),
            self.known,
        )
        self.book.set_view(view)
        self._judge()

    def _tick(self) -> None:
        self.ticked_at = time.monotonic()
        for host in self.book.tick(time.time()):  # left the map and went silent
            for key in store.keys(host, self.shards.pop(host, 1)):
                self.set_store(key, None)
            self.kept.pop(host, None)
        self._judge()

    def _judge(self) -> None:
        if not self.loaded.is_set():
            return
        checks = self.book.health_checks()
        if checks != self.raised:
            self.set_health_checks(checks)
            self.raised = checks
            self.set_store(store.CHECKS_KEY, store.checks_value(checks))

    def _raise_kept(self) -> None:
        text = self.get_store(store.CHECKS_KEY)
        if not text:
            return
        try:
            checks = store.load_checks(text)
        except ValueError as exc:  # judged afresh once the verdicts are loaded
            self.log.warning("ignoring the kept checks: %s", exc)
            return
        self.set_health_checks(checks)
        self.raised = checks
        self.log.info("raised the %d checks the previous active mgr kept", len(checks))

    def _keep(self, host: str) -> None:
        """Write a host's values to the store only when what a standby needs changed."""
        now = self.book.persistent(host)
        if self.kept.get(host) == now:
            return
        values = store.host_values(self.book, host)
        keys = store.keys(host, max(len(values), self.shards.get(host, 1)))
        for index, key in enumerate(keys):
            self.set_store(key, values[index] if index < len(values) else None)
        self.kept[host] = now
        self.shards[host] = len(values)

    def _load(self, now: float) -> None:
        started = time.monotonic()
        found = self.get_store_prefix(store.PREFIX)
        entries = {k[k.index(store.PREFIX) :]: v for k, v in found.items()}
        bad, self.shards = store.load(self.book, entries, now)
        for host in bad:
            self.log.warning("ignoring the stored verdicts of %s: unreadable", host)
        legacy = self.get_store(store.LEGACY_KEY)
        if legacy:
            try:
                store.load_legacy(self.book, legacy, now)
            except (ValueError, KeyError, TypeError, ReportError) as exc:
                self.log.warning("ignoring the stored verdicts of an older version: %s", exc)
        for host in self.book.reports:
            self.kept[host] = () if legacy else self.book.persistent(host)
            self._keep(host)  # a legacy host gets keys of its own
        if legacy:
            self.set_store(store.LEGACY_KEY, None)
        self.log.info(
            "loaded the verdicts of %d hosts from the store in %.2fs",
            len(self.book.reports), time.monotonic() - started,
        )  # fmt: skip

    def _next_turn(self) -> float:
        """Seconds to the next tick, or to the next view when the map changed."""
        now = time.monotonic()
        due = self.ticked_at + self._every()
        if self.map_changed:
            due = min(due, self.view_at + MAP_EVERY)
        return max(0.05, due - now)

    def _every(self) -> float:
        # Often enough that a silent host shows within a few seconds of max_report_age.
        return max(1.0, min(5.0, self.book.max_age / 4))

    def _max_age(self) -> float:
        return float(self.get_module_option("max_report_age"))

    def _min_remote(self) -> int:
        return int(self.get_module_option("min_remote_failures"))

    def _keepalive_rate(self) -> float:
        return float(self.get_module_option("keepalive_rate"))

    def _warn_unreported(self) -> bool:
        return bool(self.get_module_option("warn_unreported_hosts"))


def _json(value: Any) -> str:  # noqa: ANN401 - any JSON value
    return json.dumps(value, sort_keys=True)
