"""Probe stage, orchestration: run every prober over the targets, one observation per OSD.

Listen, banner, fd and ops probes run over every target with a process or an address to try;
the heartbeat count (the one whose cost grows with the host's connections, see
bench/RESULTS.md) only over OSDs whose client path just failed, since only they need the
evidence. Targets discovery marked ``not_running`` are observed as gone without a probe.
The host-wide accept-queue counter is read once per cycle beside them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from watchdog.model import FdOutcome, FdSample, Observation, OpsOutcome, OpsSample
from watchdog.probes import run_probe
from watchdog.probes.fds import FdProbe
from watchdog.probes.listen import HeartbeatProbe, ListenProbe
from watchdog.probes.netstat import listen_overflows
from watchdog.probes.ops import OpsProbe
from watchdog.probes.remote import RemoteProbe
from watchdog.probes.tcp import BannerProbe

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from watchdog.config import Config
    from watchdog.host.sockdiag import TcpSocket
    from watchdog.model import ClusterMap, MapOsd, ProbeRun, RemoteResult, Target


@dataclass(frozen=True, slots=True)
class Probed:
    """What the probe stage hands to assess: one observation per target, and host facts."""

    observations: list[Observation]
    runs: list[ProbeRun]
    listen_overflows: int | None = None


@dataclass(slots=True)
class Probers:
    """The explicit list of probers the loop runs."""

    banner: BannerProbe
    fds: FdProbe
    heartbeat: HeartbeatProbe
    ops: OpsProbe
    remote: RemoteProbe
    proc_root: Path

    @classmethod
    def from_config(cls, config: Config, keep: Probers | None = None) -> Probers:
        """Probers configured as the config says; ``keep``: a reload, the fd trend stays."""
        proc_root = config.discovery.proc_root
        banner = BannerProbe(config.loop.max_in_flight, config.loop.cycle_deadline)
        if keep is None:
            fds = FdProbe(proc_root, config.assess.fd_trend_window_seconds)
            ops = OpsProbe(proc_root)
            remote = RemoteProbe(banner, config.report.interval_seconds)
        else:
            fds, ops, remote = keep.fds, keep.ops, keep.remote
            fds.proc_root = ops.proc_root = proc_root
            fds.window = config.assess.fd_trend_window_seconds
            remote.banner, remote.every = banner, config.report.interval_seconds
        return cls(
            banner=banner, fds=fds, heartbeat=HeartbeatProbe(), ops=ops, remote=remote,
            proc_root=proc_root,
        )  # fmt: skip

    def observe(
        self,
        targets: list[Target],
        listening: Mapping[int, TcpSocket],
        cluster_map: ClusterMap | None,
        timeout: float,
    ) -> Probed:
        """Every probe over every target, combined into one observation per OSD.

        ``listening`` is the host's LISTEN dump (by inode) that discovery took this cycle.
        """
        gone = [
            Observation(t, alive=False, map_osd=_map_osd(cluster_map, t))
            for t in targets
            if t.not_running
        ]
        targets = [t for t in targets if not t.not_running]
        listens, listen_run = run_probe(ListenProbe(listening), targets, timeout)
        banners, banner_run = run_probe(self.banner, targets, timeout)
        fds, fd_run = run_probe(self.fds, targets, timeout)
        ops, ops_run = run_probe(self.ops, targets, timeout)
        self.fds.forget_except({t.incarnation for t in targets if t.incarnation})
        wall = time.time()  # create_time is wall-clock, so the age must be too
        observations = [
            Observation(
                target=t,
                alive=fds.get(t.daemon, FdSample(FdOutcome.OK)).outcome is not FdOutcome.GONE,
                banners=banners.get(t.daemon, ()),
                fds=fds.get(t.daemon, FdSample(FdOutcome.NOT_LOCAL)),
                ops=ops.get(t.daemon, OpsSample(OpsOutcome.NOT_LOCAL)),
                listens=listens.get(t.daemon, ()),
                process_age_seconds=_age(t, wall),
                map_osd=_map_osd(cluster_map, t),
            )
            for t in targets
        ]
        # Heartbeat evidence is only needed where the client path failed: look only there.
        failing = [o.target for o in observations if _client_failing(o)]
        beats, beat_run = run_probe(self.heartbeat, failing, timeout)
        observations = [_with_heartbeats(o, beats.get(o.target.daemon)) for o in observations]
        overflows, netstat_run = listen_overflows(self.proc_root)
        runs = [listen_run, banner_run, fd_run, ops_run, beat_run, netstat_run]
        return Probed(observations + gone, runs, overflows)

    def observe_remote(
        self, remote: Sequence[Target], timeout: float
    ) -> tuple[tuple[RemoteResult, ...], list[ProbeRun]]:
        """Other hosts' OSDs from here (the second vantage point), in the order given.

        Run after this host's OSDs are judged: its time never counts against the cycle's
        deadline, and a slow remote round can never look like a stall of our own.
        """
        if not remote:
            return (), []
        by_osd, run = run_probe(self.remote, remote, timeout)
        return tuple(by_osd[t.daemon] for t in remote if t.daemon in by_osd), [run]


def _map_osd(cluster_map: ClusterMap | None, target: Target) -> MapOsd | None:
    return cluster_map.osds.get(target.daemon) if cluster_map is not None else None


def _age(target: Target, wall: float) -> float | None:
    if target.incarnation is None:
        return None
    return max(0.0, wall - target.incarnation.create_time)


def _client_failing(observation: Observation) -> bool:
    return any(b.outcome.is_failure for b in observation.client_banners)


def _with_heartbeats(observation: Observation, count: int | None) -> Observation:
    return observation if count is None else replace(observation, heartbeat_connections=count)
