"""Probe stage, banner prober: a fresh TCP connection per endpoint and a bounded read of the banner.

All endpoints of a cycle are probed at once from one thread with non-blocking sockets and a
selector: a cycle where some listeners are black holes then costs about one timeout, not one
timeout per black hole, and no thread is spent per probe. Each endpoint still gets exactly one
honest attempt under the caller's timeout: no retries, no sleeps.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from watchdog.model import BANNERS, BannerResult, Endpoint, Msgr, Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from watchdog.model import Target

MAX_BANNER = max(len(b) for b in BANNERS.values())

# errno values meaning *we* could not try (our fds, our ports, our memory): never the OSD's fault.
LOCAL_ERRNOS = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.EADDRNOTAVAIL, errno.EPERM}
)
CONNECT_ERRNOS = {
    errno.ECONNREFUSED: Outcome.REFUSED,
    errno.ETIMEDOUT: Outcome.TIMEOUT,
    errno.ECONNRESET: Outcome.RESET,
    errno.EHOSTUNREACH: Outcome.UNREACHABLE,
    errno.ENETUNREACH: Outcome.UNREACHABLE,
}


def classify_banner(data: bytes, msgr: Msgr) -> Outcome | None:
    """Judge the bytes read so far: OK, BAD_BANNER, or None while more bytes are needed."""
    wanted = (BANNERS[msgr],) if msgr in BANNERS else tuple(BANNERS.values())
    for banner in wanted:
        if data[: len(banner)] == banner:
            return Outcome.OK
    if any(banner.startswith(data) for banner in wanted):
        return None
    return Outcome.BAD_BANNER


@dataclass(slots=True)
class _Attempt:
    index: int  # position in the caller's list, so results come back in order
    endpoint: Endpoint
    sock: socket.socket
    started: float
    deadline: float
    connected_at: float | None = None
    received: bytearray = field(default_factory=bytearray)


def _result(attempt: _Attempt, outcome: Outcome, now: float, detail: str = "") -> BannerResult:
    connect = None if attempt.connected_at is None else attempt.connected_at - attempt.started
    banner = now - attempt.started if outcome is Outcome.OK else None
    return BannerResult(
        endpoint=attempt.endpoint,
        outcome=outcome,
        duration_seconds=now - attempt.started,
        connect_seconds=connect,
        banner_seconds=banner,
        detail=detail,
    )


def _local_error(endpoint: Endpoint, exc: OSError) -> BannerResult:
    return BannerResult(endpoint, Outcome.LOCAL_ERROR, 0.0, detail=f"watchdog: {exc}")


def _start(index: int, endpoint: Endpoint, deadline: float) -> _Attempt | BannerResult:
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:  # our own EMFILE/ENFILE/ENOBUFS
        return _local_error(endpoint, exc)
    sock.setblocking(False)
    started = time.monotonic()
    code = sock.connect_ex((endpoint.host, endpoint.port))
    if code not in {0, errno.EINPROGRESS}:
        sock.close()
        if code in LOCAL_ERRNOS or code not in CONNECT_ERRNOS:
            return _local_error(endpoint, OSError(code, errno.errorcode.get(code, str(code))))
        return BannerResult(endpoint, CONNECT_ERRNOS[code], time.monotonic() - started)
    return _Attempt(index, endpoint, sock, started, deadline)


def _on_writable(attempt: _Attempt, now: float) -> BannerResult | None:
    """The connect finished: succeeded (wait for the banner) or failed (final)."""
    code = attempt.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code == 0:
        attempt.connected_at = now
        return None
    if code in CONNECT_ERRNOS:
        return _result(attempt, CONNECT_ERRNOS[code], now)
    return _result(attempt, Outcome.LOCAL_ERROR, now, f"connect: {errno.errorcode.get(code)}")


def _on_readable(attempt: _Attempt, now: float) -> BannerResult | None:
    """Bytes (or an end) arrived: decide as soon as the banner prefix allows."""
    try:
        chunk = attempt.sock.recv(MAX_BANNER - len(attempt.received))
    except ConnectionResetError:
        return _result(attempt, Outcome.RESET, now, "reset before banner")
    except BlockingIOError:
        return None
    if not chunk:
        return _result(attempt, Outcome.RESET, now, "closed before banner")
    attempt.received += chunk
    verdict = classify_banner(bytes(attempt.received), attempt.endpoint.msgr)
    if verdict is Outcome.BAD_BANNER:
        return _result(attempt, verdict, now, f"got {bytes(attempt.received)!r}")
    if verdict is Outcome.OK or len(attempt.received) >= MAX_BANNER:
        return _result(attempt, Outcome.OK, now)
    return None


def _expire(attempt: _Attempt, now: float) -> BannerResult:
    if attempt.connected_at is None:
        return _result(attempt, Outcome.TIMEOUT, now, "connect timed out")
    detail = f"partial banner {bytes(attempt.received)!r}" if attempt.received else ""
    return _result(attempt, Outcome.NO_BANNER, now, detail or "connected, no banner")


class _Batch:
    """Attempts in flight, watched by one selector."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.live: dict[int, _Attempt] = {}

    def add(self, attempt: _Attempt) -> None:
        self.live[attempt.sock.fileno()] = attempt
        self.selector.register(attempt.sock, selectors.EVENT_WRITE)

    def finish(self, attempt: _Attempt) -> None:
        self.selector.unregister(attempt.sock)
        del self.live[attempt.sock.fileno()]
        attempt.sock.close()

    def step(self, now: float) -> list[tuple[int, BannerResult]]:
        """Handle ready sockets and expired attempts once; return (index, result) pairs."""
        done: list[tuple[int, BannerResult]] = []
        next_deadline = min(a.deadline for a in self.live.values())
        for key, _ in self.selector.select(max(0.0, next_deadline - now)):
            attempt = self.live[key.fd]
            now = time.monotonic()
            if attempt.connected_at is None:
                result = _on_writable(attempt, now)
                if result is None:
                    self.selector.modify(attempt.sock, selectors.EVENT_READ)
            else:
                result = _on_readable(attempt, now)
            if result is not None:
                done.append((attempt.index, result))
                self.finish(attempt)
        now = time.monotonic()
        for attempt in [a for a in self.live.values() if a.deadline <= now]:
            done.append((attempt.index, _expire(attempt, now)))
            self.finish(attempt)
        return done


def probe_banners(
    endpoints: Iterable[Endpoint],
    timeout: float,
    *,
    max_in_flight: int = 256,
    budget: float | None = None,
) -> list[BannerResult]:
    """Probe every endpoint once, at most ``max_in_flight`` at a time; results in input order.

    ``budget`` bounds the whole batch: an endpoint not started in time is reported as our own
    error (local_error), never as the OSD's, and no attempt outlives the budget.
    """
    pending = deque(enumerate(endpoints))
    results: dict[int, BannerResult] = {}
    cutoff = time.monotonic() + (budget if budget is not None else float("inf"))
    try:
        selector = selectors.DefaultSelector()
    except OSError as exc:  # our own EMFILE: the epoll fd itself could not be made
        return [_local_error(endpoint, exc) for _, endpoint in pending]
    with selector:
        batch = _Batch(selector)
        while pending or batch.live:
            while pending and len(batch.live) < max_in_flight:
                index, endpoint = pending.popleft()
                now = time.monotonic()
                if now >= cutoff:
                    detail = "watchdog: not probed, cycle deadline reached"
                    results[index] = BannerResult(endpoint, Outcome.LOCAL_ERROR, 0.0, detail=detail)
                    continue
                started = _start(index, endpoint, min(now + timeout, cutoff))
                if isinstance(started, BannerResult):
                    results[index] = started
                else:
                    batch.add(started)
            if batch.live:
                results.update(batch.step(time.monotonic()))
    return [results[i] for i in sorted(results)]


class BannerProbe:
    """Every endpoint of every target, probed concurrently once."""

    name = "banner"

    def __init__(self, max_in_flight: int, budget: float | None = None) -> None:
        self.max_in_flight = max_in_flight
        self.budget = budget

    def run(
        self, targets: Sequence[Target], *, timeout: float
    ) -> dict[str, tuple[BannerResult, ...]]:
        """Banner results per daemon, in the order of its endpoints."""
        flat = [(t.daemon, e) for t in targets for e in t.endpoints]
        results = probe_banners(
            [e for _, e in flat], timeout, max_in_flight=self.max_in_flight, budget=self.budget
        )
        grouped: dict[str, list[BannerResult]] = {t.daemon: [] for t in targets}
        for (daemon, _), result in zip(flat, results, strict=True):
            grouped[daemon].append(result)
        return {daemon: tuple(found) for daemon, found in grouped.items()}
