"""Export stage: one custom collector over the latest snapshot, served on /metrics and /healthz.

The collector only reads the snapshot the loop last published, so a scrape never waits for a
probe and never sees half a cycle, and an OSD that disappears from the snapshot disappears from
/metrics without any ``.remove()`` bookkeeping.
"""

from __future__ import annotations

import logging
import platform
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from watchdog import __version__
from watchdog.export_cluster import PREFIX, action_metrics, cluster_metrics, gauge
from watchdog.exposition import Exposition
from watchdog.model import Outcome, Snapshot, State
from watchdog.webauth import WebSecurity

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

    from watchdog.model import Endpoint

log = logging.getLogger(__name__)

ENDPOINT_LABELS = ("ceph_daemon", "role", "protocol", "address")


def _endpoint_labels(daemon: str, endpoint: Endpoint) -> list[str]:
    return [daemon, str(endpoint.role), str(endpoint.msgr), endpoint.address]


class SnapshotCollector:
    """Yields metric families from whatever snapshot ``latest()`` returns."""

    def __init__(
        self, latest: Callable[[], Snapshot | None], build: dict[str, str] | None = None
    ) -> None:
        self.latest = latest
        self.build = build or {
            "version": __version__,
            "python_version": platform.python_version(),
        }

    def collect(self) -> Iterator[Metric]:
        """Called by the registry on each scrape."""
        build = InfoMetricFamily(f"{PREFIX}_build", "Version of the watchdog.")
        build.add_metric([], self.build)
        yield build
        snapshot = self.latest()
        if snapshot is None:
            return
        yield from self._loop(snapshot)
        yield from self._states(snapshot)
        yield from self._banners(snapshot)
        yield from self._process(snapshot)
        yield from cluster_metrics(snapshot)

    def describe(self) -> list[Metric]:
        """Nothing to describe up front: families depend on the snapshot."""
        return []

    @staticmethod
    def _loop(snapshot: Snapshot) -> Iterator[Metric]:
        duration = gauge("loop_duration_seconds", "Duration of the last probe cycle.")
        duration.add_metric([], snapshot.cycle_seconds)
        last = gauge("last_loop_timestamp_seconds", "Wall-clock time the last cycle ended.")
        last.add_metric([], snapshot.taken_at)
        loops = CounterMetricFamily(f"{PREFIX}_loops", "Probe cycles completed.")
        loops.add_metric([], snapshot.cycles)
        stalls = CounterMetricFamily(
            f"{PREFIX}_self_stalls",
            "Cycles whose evidence was discarded because the watchdog itself was frozen.",
        )
        stalls.add_metric([], snapshot.self_stalls)
        ok = gauge("probe_run_success", "1 if the prober ran without an error.", ("probe",))
        took = gauge("probe_run_duration_seconds", "Time a prober took.", ("probe",))
        for run in snapshot.probe_runs:
            ok.add_metric([run.name], 0.0 if run.error else 1.0)
            took.add_metric([run.name], run.duration_seconds)
        yield from (duration, last, loops, stalls, ok, took)
        yield from action_metrics(snapshot)
        if snapshot.listen_overflows is not None:
            overflows = CounterMetricFamily(
                f"{PREFIX}_host_listen_overflows",
                "Host-wide TcpExt ListenOverflows: connections dropped by full accept queues.",
            )
            overflows.add_metric([], snapshot.listen_overflows)
            yield overflows

    @staticmethod
    def _states(snapshot: Snapshot) -> Iterator[Metric]:
        labels = ("ceph_daemon", "state")
        state = gauge("osd_state", "1 for the state the OSD is in, 0 for the others.", labels)
        since = gauge(
            "osd_state_since_timestamp_seconds", "When the OSD entered its state.", ("ceph_daemon",)
        )
        entered = CounterMetricFamily(
            f"{PREFIX}_osd_transitions", "Transitions into each state.", labels=list(labels)
        )
        restarts = CounterMetricFamily(
            f"{PREFIX}_osd_restarts",
            "New OSD processes seen after the first.",
            labels=["ceph_daemon"],
        )
        for report in snapshot.osds:
            daemon, status = report.observation.target.daemon, report.status
            for candidate in State:
                state.add_metric([daemon, candidate], 1.0 if status.state is candidate else 0.0)
                entered.add_metric([daemon, candidate], report.transitions.get(candidate, 0))
            since.add_metric([daemon], snapshot.wall_time(status.since))
            restarts.add_metric([daemon], report.restarts)
        yield from (state, since, entered, restarts)

    @staticmethod
    def _banners(snapshot: Snapshot) -> Iterator[Metric]:
        success = gauge("probe_success", "1 if the listener sent a Ceph banner.", ENDPOINT_LABELS)
        # One series per endpoint, labelled with the outcome it had: the seven zeros of a
        # full state set were half of all series at 1,000 endpoints and told nothing that
        # `== 1` on the one present does not (dashboards and rules select that way).
        outcome = gauge(
            "probe_outcome", "1, labelled with the outcome of the last probe.",
            (*ENDPOINT_LABELS, "outcome"),
        )  # fmt: skip
        duration = gauge("probe_duration_seconds", "Duration of the last probe.", ENDPOINT_LABELS)
        connect = gauge(
            "probe_connect_seconds", "TCP connect time of the last probe.", ENDPOINT_LABELS
        )
        banner = gauge(
            "probe_banner_seconds", "Time from connect start to banner.", ENDPOINT_LABELS
        )
        listening = gauge(
            "listener_present", "1 if the listening socket still exists.", ENDPOINT_LABELS
        )
        for report in snapshot.osds:
            daemon = report.observation.target.daemon
            for result in report.observation.banners:
                labels = _endpoint_labels(daemon, result.endpoint)
                success.add_metric(labels, 1.0 if result.outcome is Outcome.OK else 0.0)
                outcome.add_metric([*labels, result.outcome], 1.0)
                duration.add_metric(labels, result.duration_seconds)
                _add_optional(connect, labels, result.connect_seconds)
                _add_optional(banner, labels, result.banner_seconds)
            for listener in report.observation.target.listeners:
                if listener.inode is not None:
                    listening.add_metric(
                        _endpoint_labels(daemon, listener.endpoint), float(listener.present)
                    )
        yield from (success, outcome, duration, connect, banner, listening)

    @staticmethod
    def _process(snapshot: Snapshot) -> Iterator[Metric]:
        one = ("ceph_daemon",)
        open_fds = gauge("osd_open_fds", "Open file descriptors of the OSD process.", one)
        max_fds = gauge("osd_max_fds", "Soft RLIMIT_NOFILE of the OSD process.", one)
        ratio = gauge("osd_fd_ratio", "Open fds as a fraction of the soft limit.", one)
        eta = gauge(
            "osd_fd_exhaustion_seconds", "Predicted seconds until the fd limit is hit.", one
        )
        heartbeats = gauge(
            "osd_heartbeat_connections", "Accepted peer connections on heartbeat listeners.", one
        )
        queue = gauge(
            "listen_queue_length", "Connections waiting in the accept queue.", ENDPOINT_LABELS
        )
        backlog = gauge("listen_backlog", "Accept queue limit of the listener.", ENDPOINT_LABELS)
        for report in snapshot.osds:
            obs = report.observation
            daemon = obs.target.daemon
            if obs.fds.ratio is not None:
                open_fds.add_metric([daemon], obs.fds.open_fds)
                max_fds.add_metric([daemon], obs.fds.limit)
                ratio.add_metric([daemon], obs.fds.ratio)
            _add_optional(eta, [daemon], obs.fds.seconds_to_exhaustion)
            _add_optional(heartbeats, [daemon], obs.heartbeat_connections)
            for sample in obs.listens:
                labels = _endpoint_labels(daemon, sample.endpoint)
                queue.add_metric(labels, sample.queue)
                backlog.add_metric(labels, sample.backlog)
        yield from (open_fds, max_fds, ratio, eta, heartbeats, queue, backlog)


def _add_optional(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)


class Health:
    """Decides /healthz: the loop must have finished a cycle recently."""

    def __init__(self, latest: Callable[[], Snapshot | None], stall_after: float) -> None:
        self.latest = latest
        self.stall_after = stall_after
        self.started = time.time()

    def check(self, now: float) -> tuple[bool, str]:
        """(healthy, one-line reason)."""
        snapshot = self.latest()
        last = snapshot.taken_at if snapshot else self.started
        age = now - last
        if age > self.stall_after:
            return (
                False,
                f"stalled: last cycle ended {age:.1f}s ago (limit {self.stall_after:.1f}s)",
            )
        return True, f"ok: last cycle ended {age:.1f}s ago"


def serve(
    registry: CollectorRegistry,
    health: Health,
    address: tuple[str, int],
    security: WebSecurity | None = None,
) -> ThreadingHTTPServer:
    """Start the HTTP(S) server in a daemon thread; the caller shuts it down."""
    guard = security or WebSecurity()
    exposition = Exposition(registry, health.latest)

    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a slow or silent client costs one thread for at most this long

        def setup(self) -> None:
            super().setup()
            if isinstance(self.request, ssl.SSLSocket):
                # Handshake here, in this connection's thread, not in the accept loop.
                self.request.do_handshake()

        def do_GET(self) -> None:
            if not guard.authorized(self.headers.get("Authorization")):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="osd-watchdog"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
                body = exposition.body(gzipped=gzipped)
                self._send(200, body, CONTENT_TYPE_LATEST, "gzip" if gzipped else None)
                return
            self._send(*_respond(path, health))

        def _send(
            self, code: int, body: bytes, content_type: str, encoding: str | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            if encoding is not None:
                self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
            log.debug("http: %s", format % args)

    server_class = type(
        "MetricsServer",
        (ThreadingHTTPServer,),
        {
            "address_family": _family(address[0]),
            "daemon_threads": True,
            # A client that fails the TLS handshake or hangs up is routine: no traceback.
            "handle_error": lambda _self, _request, client: log.debug("http: %s failed", client),
        },
    )
    server: ThreadingHTTPServer = server_class(address, Handler)
    if guard.ssl_context is not None:
        server.socket = guard.ssl_context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


def _respond(path: str, health: Health) -> tuple[int, bytes, str]:
    """(status, body, content type) for one GET other than /metrics."""
    if path == "/healthz":
        ok, reason = health.check(time.time())
        return 200 if ok else 503, f"{reason}\n".encode(), "text/plain"
    if path == "/":
        page = b'<html><body><h1>ceph-osd-watchdog</h1><a href="/metrics">metrics</a> '
        return 200, page + b'<a href="/healthz">healthz</a></body></html>', "text/html"
    return 404, b"not found\n", "text/plain"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
