"""Export stage, cluster side: what the monitors believe, and what we did to the cluster."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.exposition import Family, counter, gauge

if TYPE_CHECKING:
    from collections.abc import Iterator

    from watchdog.model import Snapshot


def cluster_metrics(snapshot: Snapshot) -> Iterator[Family]:
    """What the monitors believe, and how asking them went."""
    status = snapshot.map_status
    if status is None:  # no cluster view configured
        return
    source = [status.source]
    up = gauge("monitor_up", "1 if the last OSD map request succeeded.", ("source",))
    up.add_metric(source, 1.0 if status.last_ok else 0.0)
    requests = counter(
        "monitor_requests", "OSD map requests made.", ("source",), {status.source: status.attempts}
    )
    failures = counter(
        "monitor_failures",
        "OSD map requests that failed.",
        ("source",),
        {status.source: status.failures},
    )
    yield from (up, requests, failures)
    if status.last_seconds is not None:
        took = gauge(
            "monitor_request_duration_seconds",
            "Duration of the last OSD map request.",
            ("source",),
        )
        took.add_metric(source, status.last_seconds)
        yield took
    if status.cluster_map is not None and status.fetched_at is not None:
        fetched = gauge(
            "map_last_success_timestamp_seconds",
            "When the OSD map was last read.",
            ("source",),
        )
        fetched.add_metric(source, snapshot.wall_time(status.fetched_at))
        epoch = gauge("map_epoch", "Epoch of the last OSD map read.")
        epoch.add_metric([], status.cluster_map.epoch)
        flags = gauge("map_cluster_flag", "Cluster-wide OSD map flags that are set.", ("flag",))
        for name in sorted(status.cluster_map.flags):
            flags.add_metric([name], 1.0)
        yield from (fetched, epoch, flags)
    map_up = gauge("map_osd_up", "1 if the OSD map says the OSD is up.", ("ceph_daemon",))
    map_in = gauge("map_osd_in", "1 if the OSD map says the OSD is in.", ("ceph_daemon",))
    per_osd = gauge("map_osd_flag", "Per-OSD noup and nodown flags.", ("ceph_daemon", "flag"))
    for report in snapshot.osds:
        osd = report.observation.map_osd
        if osd is not None:
            map_up.add_metric([osd.daemon], float(osd.up))
            map_in.add_metric([osd.daemon], float(osd.in_))
            per_osd.add_metric([osd.daemon, "noup"], float(osd.noup))
            per_osd.add_metric([osd.daemon, "nodown"], float(osd.nodown))
    yield from (map_up, map_in, per_osd)


def action_metrics(snapshot: Snapshot) -> Iterator[Family]:
    """Remediations by result, refusals by guard, and the fences this watchdog holds."""
    actions = counter(
        "actions",
        "Remediations decided, by result (dry_run, started... done, failed, refused).",
        ("action", "result"),
        snapshot.actions_total,
    )
    refusals = counter(
        "guard_refusals",
        "Remediations a safety guard refused, by guard.",
        ("guard",),
        snapshot.refusals_total,
    )
    fenced = gauge(
        "fenced",
        "1 for each OSD this watchdog fenced (noup) and has not unfenced.",
        ("ceph_daemon",),
    )
    for daemon in snapshot.fenced:
        fenced.add_metric([daemon], 1.0)
    failed = counter(
        "action_step_failures",
        "Remediation steps that failed, by OSD and step; a fenced OSD stays fenced.",
        ("ceph_daemon", "step"),
        snapshot.step_failures_total,
    )
    yield from (actions, refusals, fenced, failed)


def report_metrics(snapshot: Snapshot) -> Iterator[Family]:
    """How handing the verdicts to the osd_watchdog mgr module goes (when it is on)."""
    status = snapshot.report_status
    if status is None:
        return
    if status.last_ok is not None:
        up = gauge("mgr_report_up", "1 if the mgr module took the last report whole.")
        up.add_metric([], 1.0 if status.last_ok else 0.0)
        yield up
    if status.keepalive_seconds is not None:
        keepalive = gauge(
            "mgr_report_keepalive_seconds",
            "Seconds between two unchanged reports: report.keepalive_seconds, or what the "
            "mgr module asks for if longer.",
        )
        keepalive.add_metric([], status.keepalive_seconds)
        yield keepalive
    yield counter("mgr_reports", "Reports sent to the mgr module.", (), {(): status.attempts})
    yield counter(
        "mgr_report_failures",
        "Reports the mgr module did not take, or took only in part.",
        (),
        {(): status.failures},
    )
    if snapshot.remote:
        reached = gauge(
            "remote_osd_reached",
            "1 if another host's OSD sent its banner to this host (report.remote_probes).",
            ("ceph_daemon",),
        )
        for result in snapshot.remote:
            reached.add_metric([result.daemon], 1.0 if result.ok else 0.0)
        yield reached
