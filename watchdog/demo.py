"""The self-contained demo: a zombie OSD made, caught and timed, with no Ceph around.

Simulated OSDs, the watchdog watching them, one OSD driven into the original failure (an fd
leak until accept() fails with EMFILE and the accept loop gives up, while its heartbeat
connections keep flowing), and the detection timed from the fault.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.act.steps import describe
from watchdog.config import ActConfig, parse_config
from watchdog.daemon import Watchdog
from watchdog.errors import SimulatorError
from watchdog.export import Health, SnapshotMetrics, serve
from watchdog.model import State
from watchdog.report import table
from watchdog.sim.cluster import SimCluster

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.model import Snapshot

SIM_NOFILE = 256  # the simulated OSDs' soft fd limit, low so the leak hits it in seconds
LEAK_PER_SECOND = 60
HEALTHY_WARMUP = 4.0
DETECT_DEADLINE = 30.0
CLEAR_SCREEN = "\x1b[H\x1b[J"


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo measured."""

    victim: str
    gave_up_at: float | None  # wall clock, reported by the simulated OSD
    detected_at: float | None  # wall clock of the zombie transition
    metrics_url: str

    @property
    def detection_seconds(self) -> float | None:
        """Seconds from the accept loop giving up to the zombie verdict."""
        if self.gave_up_at is None or self.detected_at is None:
            return None
        return self.detected_at - self.gave_up_at


def run_demo(osds: int, listen: str, say: Callable[[str], None], *, live: bool) -> DemoResult:
    """Run the whole demo; always stops every process it started."""
    with SimCluster(osds, nofile=SIM_NOFILE) as sim, tempfile.TemporaryDirectory() as state:
        config = parse_config(
            {
                "discovery": {"clusters": [sim.cluster]},
                "web": {"listen_address": listen},
                "cluster": {"source": "none"},  # simulated OSDs have no monitors
                "act": {"state_dir": state},  # the audit trail of this run only
            }
        )
        watchdog = Watchdog(config)
        server = serve(
            SnapshotMetrics(),
            Health(watchdog.latest, config.stall_after_seconds),
            config.web.host_port,
        )
        host, port = server.server_address[:2]
        url = f"http://{host!s}:{port}/metrics"
        zombie = threading.Event()
        detected: list[float] = []

        def show(snapshot: Snapshot) -> None:
            say((CLEAR_SCREEN if live else "") + table(snapshot) + "\n")
            for report in snapshot.osds:
                if report.status.state is State.ZOMBIE and not zombie.is_set():
                    detected.append(snapshot.wall_time(report.status.since))
                    zombie.set()

        loop = threading.Thread(target=watchdog.run, args=(show,), name="watchdog", daemon=True)
        say(
            f"{osds} simulated OSDs (cluster {sim.cluster!r}, fd limit {SIM_NOFILE}); "
            f"metrics on {url}\n"
        )
        try:
            loop.start()
            time.sleep(HEALTHY_WARMUP)  # the demo's own pacing: let people see a healthy table
            victim = osds // 2
            say(
                f">>> osd.{victim}: leaking {LEAK_PER_SECOND} fds/s "
                "until accept() fails with EMFILE\n"
            )
            sim.command(victim, "leak", str(LEAK_PER_SECOND))
            zombie.wait(DETECT_DEADLINE)
            gave_up = _gave_up_at(sim, victim)
            time.sleep(2 * config.loop.interval_seconds)  # two more tables after the verdict
            if detected:
                say(_scrape_excerpt(url, f"osd.{victim}"))
        finally:
            watchdog.stop()
            loop.join(timeout=10)
            server.shutdown()
            server.server_close()
    return DemoResult(f"osd.{victim}", gave_up, detected[0] if detected else None, url)


def _scrape_excerpt(url: str, daemon: str) -> str:
    """The lines of a real scrape that an alert on this OSD would fire on."""
    import requests  # noqa: PLC0415 - the daemon never needs it (~16 MiB resident)

    try:
        response = requests.get(url, timeout=5)
        response.raise_for_status()
    except requests.RequestException as exc:
        return f"could not scrape {url}: {exc}\n"

    def wanted(line: str) -> bool:
        if f'ceph_daemon="{daemon}"' not in line or not line.endswith(" 1.0"):
            return False
        public_outcome = line.startswith("osd_watchdog_probe_outcome{") and 'role="public"' in line
        return public_outcome or line.startswith("osd_watchdog_osd_state{")

    lines = [line for line in response.text.splitlines() if wanted(line)]
    return f"Scraped {url}:\n" + "".join(f"  {line}\n" for line in lines)


def _gave_up_at(sim: SimCluster, victim: int) -> float | None:
    try:
        event = sim.wait_event(victim, "gave_up", timeout=0.1)
    except SimulatorError:
        return None
    return float(event["at"])


def summary(result: DemoResult) -> str:
    """The closing lines of the demo."""
    if result.detection_seconds is None:
        return (
            f"NOT DETECTED: {result.victim} did not become a zombie within {DETECT_DEADLINE:.0f}s"
        )
    clock = time.strftime("%H:%M:%S", time.localtime(result.detected_at))
    action = describe(ActConfig(), result.victim)
    return (
        f"DETECTED: {result.victim} is a zombie (client accept path dead, process alive, "
        f"heartbeats flowing) at {clock}, {result.detection_seconds:.1f}s after its accept "
        f"loop gave up.\nRemediation on a real cluster, once enabled: {action}. Here it is "
        "dry-run, and its no_map guard refuses it: simulated OSDs have no monitors to ask.\n"
        "All simulated OSDs stopped."
    )
