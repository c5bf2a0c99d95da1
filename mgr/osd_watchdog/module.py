"""ceph-mgr module: the watchdogs' zombie verdicts as Ceph health checks.

Each host's osd-watchdog calls ``ceph osd-watchdog report -i -`` with its verdicts every
report interval (and at once when a verdict changes). The module keeps each host's latest
report and raises:

* OSD_ACCEPT_DEAD (HEALTH_ERR): an OSD the map says is up, whose watchdog found its client
  accept path dead. Ceph will not fail it over by itself, so its PGs' IO hangs until a
  person acts: that is data unavailable, not degraded.
* OSD_FD_PRESSURE (HEALTH_WARN): an OSD near its open-files limit.
* OSD_WATCHDOG_DOWN (HEALTH_WARN): a host with up OSDs whose watchdog reported once and
  has not within ``max_report_age`` seconds since, so a silent watchdog is itself visible
  (with ``warn_unreported_hosts``, also hosts whose watchdog never reported).

The latest verdicts are kept in the mgr's store when they change, so a standby that takes
over raises the same checks at once. Zombie verdicts and remediation steps reported by a
watchdog go to the cluster log, each once.
"""

import errno
import json
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import mgr_module  # type: ignore[import-not-found]
from mgr_module import MgrModule, Option

from .verdicts import Book, ClusterView, ReportError, parse_report, status_table

STORE_KEY = "verdicts"


class Module(MgrModule):  # type: ignore[misc]
    """The module ceph-mgr loads: commands, options, and the judging thread."""

    # Tentacle (20) asks every module for a registry of its decorated commands and fails to
    # load one without it ("type object 'Module' has no attribute 'CLICommand'"); ours is
    # empty, the commands are the COMMANDS list below. Older releases have no such registry.
    if hasattr(mgr_module, "CLICommandBase"):
        CLICommand = mgr_module.CLICommandBase.make_registry_subtype("OsdWatchdogCLICommand")
    NOTIFY_TYPES: List[str] = []  # noqa: RUF012 - no map notifications wanted: the thread polls

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
        self.book = Book(max_age=60.0)
        self.kept: Dict[str, Tuple[Any, ...]] = {}  # per host: what the store last got
        self.raised: Dict[str, Dict[str, Any]] = {}

    # -- mgr entry points ---------------------------------------------------------------

    def serve(self) -> None:
        """Load what the previous active mgr kept, then judge every few seconds."""
        with self.lock:
            self.book = Book(
                max_age=self._max_age(),
                min_remote_failures=self._min_remote(),
                warn_unreported=self._warn_unreported(),
            )
            kept = self.get_store(STORE_KEY)
            if kept:
                try:
                    self.book.load(kept, time.time())
                except (ValueError, KeyError, TypeError) as exc:
                    self.log.warning("ignoring the stored verdicts: %s", exc)
            self.kept = {host: self.book.persistent(host) for host in self.book.reports}
            self._judge()
        while not self.stop_event.wait(self._tick()):
            with self.lock:
                self._judge()

    def shutdown(self) -> None:
        """End serve()."""
        self.stop_event.set()

    def config_notify(self) -> None:
        """A module option changed."""
        with self.lock:
            self.book.max_age = self._max_age()
            self.book.min_remote_failures = self._min_remote()
            self.book.warn_unreported = self._warn_unreported()
            self._judge()

    def handle_command(self, inbuf: Optional[str], cmd: Dict[str, Any]) -> Tuple[int, str, str]:
        """One of COMMANDS: (return code, output, status text)."""
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
        now = time.time()
        with self.lock:
            accepted, refused, events = self.book.accept(report, self._view(), now)
            for event in events:
                self.cluster_log(
                    "cluster",
                    self.ClusterLogPrio.WARN,
                    f"osd-watchdog on {report.host}: {event.message}",
                )
            self._keep(report.host)
            self._judge()
        reply = {
            "accepted": [v.daemon for v in accepted.osds],
            "refused": refused,
            "events_through": self.book.logged_through.get(report.host, 0.0),
        }
        if refused:
            # Partly refused is an error the watchdog logs, but what was on this host is kept.
            return -errno.EPERM, self._json(reply), "refused: " + "; ".join(refused)
        return 0, self._json(reply), ""

    def _status(self, fmt: str) -> Tuple[int, str, str]:
        with self.lock:
            rows = self.book.status(self._view(), time.time())
        if fmt.startswith("json"):
            return 0, self._json(rows), ""
        return 0, status_table(rows), ""

    # -- judging ------------------------------------------------------------------------

    def _judge(self) -> None:
        checks = self.book.health_checks(self._view(), time.time())
        if checks != self.raised:
            self.set_health_checks(checks)
            self.raised = checks

    def _keep(self, host: str) -> None:
        """Write the verdicts to the store only when what a standby needs changed."""
        now = self.book.persistent(host)
        if self.kept.get(host) != now:
            self.set_store(STORE_KEY, self.book.dump())
            self.kept[host] = now

    def _view(self) -> ClusterView:
        osd_map = self.get("osd_map")
        up = {int(o["osd"]): bool(o["up"]) for o in osd_map.get("osds", [])}
        metadata = self.get("osd_metadata") or {}
        hosts = {int(k): str(v.get("hostname", "")) for k, v in metadata.items() if v}
        return ClusterView(up=up, hosts=hosts)

    def _max_age(self) -> float:
        return float(self.get_module_option("max_report_age"))

    def _min_remote(self) -> int:
        return int(self.get_module_option("min_remote_failures"))

    def _warn_unreported(self) -> bool:
        return bool(self.get_module_option("warn_unreported_hosts"))

    def _tick(self) -> float:
        # Often enough that a silent host shows within a few seconds of max_report_age.
        return max(1.0, min(5.0, self.book.max_age / 4))

    @staticmethod
    def _json(value: Any) -> str:  # noqa: ANN401 - any JSON value
        return json.dumps(value, sort_keys=True)
