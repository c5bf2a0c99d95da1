"""Export stage: the metric families of the latest snapshot, served on /metrics and /healthz.

The families are made only from the snapshot the loop last published, so a scrape never
waits for a probe and never sees half a cycle, and an OSD that disappears from the snapshot
disappears from /metrics without any ``.remove()`` bookkeeping.
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

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from watchdog import __version__
from watchdog.export_cluster import action_metrics, cluster_metrics, report_metrics
from watchdog.exposition import (
    PREFIX,
    Exposition,
    Family,
    Kept,
    add_optional,
    counter,
    gauge,
    label_set,
)
from watchdog.model import Snapshot, State
from watchdog.webauth import WebSecurity

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from watchdog.model import Endpoint

log = logging.getLogger(__name__)

ENDPOINT_LABELS = ("ceph_daemon", "role", "protocol", "address")
STATE_LABELS = ("ceph_daemon", "state")
STATES = tuple(State)


def _endpoint_labels(key: tuple[str, Endpoint]) -> str:
    daemon, endpoint = key
    return label_set(ENDPOINT_LABELS, (daemon, endpoint.role, endpoint.msgr, endpoint.address))


def _state_lines(family: Family, daemon: str, values: Iterable[float]) -> str:
    """One OSD's series of a family labelled by state, in state order, as text."""
    return "".join(
        family.line(label_set(STATE_LABELS, (daemon, state)), value)
        for state, value in zip(STATES, values, strict=True)
    )


class SnapshotMetrics:
    """The metric families of a snapshot (and the build info, snapshot or not)."""

    def __init__(self, build: dict[str, str] | None = None) -> None:
        build = build or {"version": __version__, "python_version": platform.python_version()}
        self.build = gauge("build_info", "Version of the watchdog.", tuple(sorted(build)))
        self.build.add_metric([build[k] for k in sorted(build)], 1.0)
        self._endpoints: Kept[tuple[str, Endpoint]] = Kept()
        self._state_sets: Kept[tuple[str, State]] = Kept()
        self._entered: Kept[tuple[str, tuple[int, ...]]] = Kept()

    def _endpoint(self, daemon: str, endpoint: Endpoint) -> str:
        return self._endpoints.get((daemon, endpoint), _endpoint_labels)

    def families(self, snapshot: Snapshot | None) -> Iterator[Family]:
        """Every family, in exposition order."""
        yield self.build
        if snapshot is None:
            return
        yield from self._loop(snapshot)
        yield from self._states(snapshot)
        yield from self._per_endpoint(snapshot)
        yield from self._process(snapshot)
        yield from cluster_metrics(snapshot)
        yield from report_metrics(snapshot)
        for kept in (self._endpoints, self._state_sets, self._entered):
            kept.rotate()

    @staticmethod
    def _loop(snapshot: Snapshot) -> Iterator[Family]:
        duration = gauge("loop_duration_seconds", "Duration of the last probe cycle.")
        duration.add_metric([], snapshot.cycle_seconds)
        last = gauge("last_loop_timestamp_seconds", "Wall-clock time the last cycle ended.")
        last.add_metric([], snapshot.taken_at)
        loops = counter("loops", "Probe cycles completed.", (), {(): snapshot.cycles})
        stalls = counter(
            "self_stalls",
            "Cycles whose evidence was discarded because the watchdog itself was frozen.",
            (),
            {(): snapshot.self_stalls},
        )
        ok = gauge("probe_run_success", "1 if the prober ran without an error.", ("probe",))
        took = gauge("probe_run_duration_seconds", "Time a prober took.", ("probe",))
        for run in snapshot.probe_runs:
            ok.add_metric([run.name], 0.0 if run.error else 1.0)
            took.add_metric([run.name], run.duration_seconds)
        yield from (duration, last, loops, stalls, ok, took)
        yield from action_metrics(snapshot)
        if snapshot.listen_overflows is not None:
            yield counter(
                "host_listen_overflows",
                "Host-wide TcpExt ListenOverflows: connections dropped by full accept queues.",
                (),
                {(): snapshot.listen_overflows},
            )

    def _states(self, snapshot: Snapshot) -> Iterator[Family]:
        labels, one = STATE_LABELS, ("ceph_daemon",)
        state = gauge("osd_state", "1 for the state the OSD is in, 0 for the others.", labels)
        since = gauge("osd_state_since_timestamp_seconds", "When the OSD entered its state.", one)
        entered = Family(
            f"{PREFIX}_osd_transitions", "Transitions into each state.", "counter", labels
        )
        restarts = Family(
            f"{PREFIX}_osd_restarts", "New OSD processes seen after the first.", "counter", one
        )
        for report in snapshot.osds:
            daemon, status = report.observation.target.daemon, report.status
            # Seven lines each, the same while the state (or the count) holds: kept as text.
            state.add_text(
                self._state_sets.get(
                    (daemon, status.state),
                    lambda key: _state_lines(state, key[0], (float(s is key[1]) for s in STATES)),
                )
            )
            counts = tuple(report.transitions.get(s, 0) for s in STATES)
            entered.add_text(
                self._entered.get(
                    (daemon, counts), lambda key: _state_lines(entered, key[0], key[1])
                )
            )
            since.add_metric([daemon], snapshot.wall_time(status.since))
            restarts.add_metric([daemon], report.restarts)
        yield from (state, since, entered, restarts)

    def _per_endpoint(self, snapshot: Snapshot) -> Iterator[Family]:
        # One series per endpoint, labelled with the outcome it had: the seven zeros of a
        # full state set were half of all series at 1,000 endpoints and told nothing that
        # `== 1` on the one present does not (dashboards and rules select that way). A
        # separate probe_success would repeat outcome="ok" for every endpoint: cut.
        outcome = gauge(
            "probe_outcome", "1, labelled with the outcome of the last probe.",
            (*ENDPOINT_LABELS, "outcome"),
        )  # fmt: skip
        duration = gauge(
            "probe_duration_seconds", "Duration of the last probe (connect to banner).",
            ENDPOINT_LABELS,
        )  # fmt: skip
        # Only the exceptional ones, as for `fenced`: a 1 for every listener still there
        # was a quarter of all series and told nothing probe_outcome's presence does not.
        vanished = gauge(
            "listener_vanished",
            "1 for each listener the OSD process had that is gone while the process lives.",
            ENDPOINT_LABELS,
        )
        queue = gauge(
            "listen_queue_length", "Connections waiting in the accept queue.", ENDPOINT_LABELS
        )
        for report in snapshot.osds:
            obs = report.observation
            daemon = obs.target.daemon
            # The probes share the target's endpoint objects: one label lookup each.
            seen: dict[int, str] = {}
            for result in obs.banners:
                labels = seen[id(result.endpoint)] = self._endpoint(daemon, result.endpoint)
                outcome.add_labelled(f'{labels},outcome="{result.outcome}"', 1.0)
                duration.add_labelled(labels, result.duration_seconds)
            for listener in obs.target.listeners:
                if listener.inode is not None and not listener.present:
                    vanished.add_labelled(self._endpoint(daemon, listener.endpoint), 1.0)
            for sample in obs.listens:
                labels = seen.get(id(sample.endpoint)) or self._endpoint(daemon, sample.endpoint)
                queue.add_labelled(labels, sample.queue)
        yield from (outcome, duration, vanished, queue)

    def _process(self, snapshot: Snapshot) -> Iterator[Family]:
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
        # The limit is the same for every listener of a process (ms_tcp_listen_backlog):
        # one series per OSD, not one per endpoint.
        backlog = gauge("osd_listen_backlog", "Smallest accept queue limit of the OSD.", one)
        observable = gauge(
            "osd_ops_observable", "1 if the OSD's admin socket told what its ops do.", one
        )
        in_flight = gauge(
            "osd_ops_in_flight", "Ops waiting on the OSD itself: queued, running.", one
        )
        oldest = gauge("osd_oldest_op_seconds", "Age of the oldest of those ops.", one)
        for report in snapshot.osds:
            obs = report.observation
            daemon = obs.target.daemon
            if obs.fds.ratio is not None:
                open_fds.add_metric([daemon], obs.fds.open_fds)
                max_fds.add_metric([daemon], obs.fds.limit)
                ratio.add_metric([daemon], obs.fds.ratio)
            add_optional(eta, [daemon], obs.fds.seconds_to_exhaustion)
            add_optional(heartbeats, [daemon], obs.heartbeat_connections)
            if obs.listens:
                backlog.add_metric([daemon], min(s.backlog for s in obs.listens))
            if obs.target.incarnation is not None:  # a process here to ask
                observable.add_metric([daemon], 1.0 if obs.ops.observed else 0.0)
            if obs.ops.observed:
                in_flight.add_metric([daemon], obs.ops.in_flight)
                oldest.add_metric([daemon], obs.ops.oldest_seconds)
        yield from (open_fds, max_fds, ratio, eta, heartbeats, backlog)
        yield from (observable, in_flight, oldest)


class ProcessFamilies:
    """The watchdog's own process_* families (CPU, memory, fds, start time).

    Every exporter has them; prometheus_client's process collector reads them at each
    rendering, so once per cycle like the rest.
    """

    def __init__(self) -> None:
        self._registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self._registry)

    @property
    def lines(self) -> list[str]:
        """Fresh values of this process, as text."""
        return [generate_latest(self._registry).decode()]


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
    metrics: SnapshotMetrics,
    health: Health,
    address: tuple[str, int],
    security: WebSecurity | None = None,
) -> ThreadingHTTPServer:
    """Start the HTTP(S) server in a daemon thread; the caller shuts it down."""
    guard = security or WebSecurity()
    process = ProcessFamilies()
    exposition = Exposition(lambda snapshot: [*metrics.families(snapshot), process], health.latest)

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
