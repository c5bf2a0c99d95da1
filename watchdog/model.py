"""Data passed between the stages discover -> probe -> assess -> act -> export; no I/O here."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping


class Outcome(StrEnum):
    """What one fresh TCP connection to a listener saw (a closed set)."""

    OK = "ok"
    REFUSED = "refused"  # RST: nobody listens on the port any more
    TIMEOUT = "timeout"  # SYN unanswered: listener gone silent or accept queue overflowing
    NO_BANNER = "no_banner"  # connected, but nothing was sent: nobody calls accept()
    BAD_BANNER = "bad_banner"  # something answered, but not a Ceph messenger
    RESET = "reset"  # accepted, then closed or reset before a full banner
    UNREACHABLE = "unreachable"  # no route to the address
    LOCAL_ERROR = "local_error"  # the watchdog's own failure (e.g. its own EMFILE): no evidence

    @property
    def is_failure(self) -> bool:
        """True when the outcome is evidence against the OSD (never for our own errors)."""
        return self not in {Outcome.OK, Outcome.LOCAL_ERROR}


class Msgr(StrEnum):
    """Messenger protocol of a listener; ANY when the address did not say."""

    V1 = "v1"
    V2 = "v2"
    ANY = "any"


class Role(StrEnum):
    """Which of the OSD's messengers a listener belongs to."""

    PUBLIC = "public"  # clients: the accept path the watchdog exists to watch
    CLUSTER = "cluster"
    HB_FRONT = "hb_front"
    HB_BACK = "hb_back"
    UNKNOWN = "unknown"


HEARTBEAT_ROLES = frozenset({Role.HB_FRONT, Role.HB_BACK})

# The server speaks first. Only these prefixes are stable: the rest of a v2 banner is a
# feature payload, the rest of a v1 banner is the peer's address. The one definition the
# prober, the canary and the simulator share.
BANNERS = {Msgr.V2: b"ceph v2\n", Msgr.V1: b"ceph v027"}


class State(StrEnum):
    """Per-OSD verdict; each OSD is in exactly one at a time."""

    STARTING = "starting"
    HEALTHY = "healthy"
    FD_PRESSURE = "fd_pressure"
    SUSPECT = "suspect"
    ZOMBIE = "zombie"
    # It accepts and heartbeats, but the ops queued for it do not complete: its op threads
    # are stuck (a wedged PG, a lost wakeup). Ceph says SLOW_OPS after 30 s, never more.
    STALLED = "stalled"
    DOWN = "down"
    UNOBSERVABLE = "unobservable"


class FdOutcome(StrEnum):
    """Whether the fd probe could look at the process."""

    OK = "ok"
    ACCESS_DENIED = "access_denied"
    GONE = "gone"
    NOT_LOCAL = "not_local"  # static target: no process on this host to look at


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One address an OSD should accept connections on."""

    host: str
    port: int
    msgr: Msgr = Msgr.ANY
    role: Role = Role.UNKNOWN
    # Computed once: an endpoint keys the exporter's caches, thousands of lookups a scrape,
    # and the generated hash went through each Enum's Python-level __hash__ every time.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = (self.host, self.port, str.__hash__(self.msgr), str.__hash__(self.role))
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    @property
    def address(self) -> str:
        """The address as Ceph prints it, e.g. ``v2:10.0.0.5:6800`` or ``[::1]:6800``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        prefix = "" if self.msgr is Msgr.ANY else f"{self.msgr}:"
        return f"{prefix}{host}:{self.port}"


def parse_endpoint(text: str, role: Role = Role.UNKNOWN, *, any_port: bool = False) -> Endpoint:
    """Parse ``[v1:|v2:]HOST:PORT[/NONCE]``; IPv6 hosts go in brackets. Raises ValueError.

    ``any_port`` admits port 0 (bind to any free port), for our own listen address.
    """
    rest = text.strip()
    msgr = Msgr.ANY
    for candidate in (Msgr.V1, Msgr.V2):
        if rest.startswith(f"{candidate}:"):
            msgr, rest = candidate, rest[3:]
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):
        host, sep, port_text = rest[1:].partition("]:")
    else:
        host, sep, port_text = rest.rpartition(":")
        if ":" in host:
            raise ValueError(f"{text!r}: an IPv6 address goes in brackets, e.g. [::1]:6800")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT (IPv6 hosts go in brackets)")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{text!r}: {host!r} is not an IP address") from None
    lowest = 0 if any_port else 1
    if not port_text.isdigit() or not lowest <= int(port_text) < 65536:
        raise ValueError(f"{text!r}: port must be {lowest}-65535")
    return Endpoint(host=host, port=int(port_text), msgr=msgr, role=role)


@dataclass(frozen=True, slots=True)
class Incarnation:
    """One life of an OSD process: a restarted OSD is a new incarnation, even on the same pid."""

    pid: int
    create_time: float


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening socket an incarnation has (or had: ``present`` False means it vanished)."""

    endpoint: Endpoint
    inode: int | None = None
    present: bool = True


@dataclass(frozen=True, slots=True)
class Target:
    """An OSD to probe: its name, its process (if on this host) and every listener to try."""

    daemon: str
    cluster: str = "ceph"
    incarnation: Incarnation | None = None
    listeners: tuple[Listener, ...] = ()
    blind_reason: str = ""  # non-empty when discovery could not look (e.g. access denied)
    # No process although one should run here (seen before, or placed here by the map):
    # nothing to probe, the observation says so.
    not_running: bool = False
    # The network namespace (inode) its sockets are in, when not the watchdog's own (a
    # Rook pod): its sockets are read inside it.
    netns: int | None = None

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint to probe, vanished listeners included."""
        return tuple(listener.endpoint for listener in self.listeners)


@dataclass(frozen=True, slots=True)
class MapOsd:
    """One OSD as the monitors see it."""

    daemon: str
    up: bool
    in_: bool
    endpoints: tuple[Endpoint, ...] = ()  # every messenger address, labelled with its role
    noup: bool = False
    nodown: bool = False
    hostname: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterMap:
    """The parts of the OSD map the watchdog uses."""

    epoch: int
    flags: frozenset[str] = frozenset()
    osds: dict[str, MapOsd] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MapStatus:
    """The latest map, if any, and how asking for it went."""

    source: str
    cluster_map: ClusterMap | None = None
    fetched_at: float | None = None  # monotonic time of the last success
    last_ok: bool = False
    last_error: str = ""
    last_seconds: float | None = None  # duration of the last attempt
    attempts: int = 0
    failures: int = 0

    def fresh(self, now: float, max_age: float) -> ClusterMap | None:
        """The map, if it is recent enough to judge from."""
        if self.cluster_map is None or self.fetched_at is None:
            return None
        return self.cluster_map if now - self.fetched_at <= max_age else None


@dataclass(frozen=True, slots=True)
class BannerResult:
    """One fresh connection to one endpoint and what came back."""

    endpoint: Endpoint
    outcome: Outcome
    duration_seconds: float
    connect_seconds: float | None = None
    banner_seconds: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FdSample:
    """Open fds of one process against its soft RLIMIT_NOFILE."""

    outcome: FdOutcome
    open_fds: int = 0
    limit: int = 0
    seconds_to_exhaustion: float | None = None  # from the recent trend; None when not growing
    detail: str = ""

    @property
    def ratio(self) -> float | None:
        """Fraction of the limit in use, or None when unknown or unlimited."""
        if self.outcome is not FdOutcome.OK or self.limit <= 0:
            return None
        return self.open_fds / self.limit


class OpsOutcome(StrEnum):
    """Whether the OSD's admin socket told what its ops are doing."""

    OK = "ok"
    ACCESS_DENIED = "access_denied"  # the socket is the OSD's uid's (or root's) to connect to
    UNREACHABLE = "unreachable"  # no admin socket found, or it refused the connection
    TIMEOUT = "timeout"  # it did not answer within the probe timeout
    NOT_LOCAL = "not_local"  # no process here to ask (a static target)


@dataclass(frozen=True, slots=True)
class OpsSample:
    """The OSD's ops as its admin socket reports them at one moment."""

    outcome: OpsOutcome
    in_flight: int = 0  # ops that wait on the OSD itself (queued for a PG, running)
    oldest_seconds: float = 0.0  # the age of the oldest of them
    oldest_stage: str = ""  # where the oldest one waits ("queued for pg")
    completed: int | None = None  # ops it has finished (client ops and replica ops): a counter
    detail: str = ""

    @property
    def observed(self) -> bool:
        """True when this sample says anything about the OSD's ops."""
        return self.outcome is OpsOutcome.OK


@dataclass(frozen=True, slots=True)
class ListenSample:
    """Accept queue of one listening socket, as the kernel reports it through sock_diag."""

    endpoint: Endpoint
    queue: int
    backlog: int


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything probed about one OSD in one cycle: the input of the state machine."""

    target: Target
    alive: bool  # the process is running (always True for static targets)
    banners: tuple[BannerResult, ...] = ()
    fds: FdSample = FdSample(FdOutcome.NOT_LOCAL)
    ops: OpsSample = OpsSample(OpsOutcome.NOT_LOCAL)
    listens: tuple[ListenSample, ...] = ()
    heartbeat_connections: int | None = None  # established peers on heartbeat listeners
    # Seconds since the process started (None for static targets): the startup grace counts
    # from the OSD's own start, so a watchdog that starts late never excuses an old zombie.
    process_age_seconds: float | None = None
    # What the monitors believe (None: no fresh map, so judged from local evidence alone).
    map_osd: MapOsd | None = None

    @property
    def client_banners(self) -> tuple[BannerResult, ...]:
        """The client accept path: public listeners, or every listener of unknown role."""
        public = tuple(b for b in self.banners if b.endpoint.role is Role.PUBLIC)
        if public:
            return public
        return tuple(b for b in self.banners if b.endpoint.role is Role.UNKNOWN)


@dataclass(frozen=True, slots=True)
class OsdStatus:
    """The state machine's memory for one OSD."""

    state: State
    since: float  # monotonic time of entering ``state``
    cause: str
    incarnation: Incarnation | None = None
    failing_cycles: int = 0  # consecutive cycles with a dead client accept path
    ok_cycles: int = 0  # consecutive cycles with every endpoint answering
    blind_cycles: int = 0  # consecutive cycles without usable evidence
    last_fd_ratio: float | None = None  # kept so a crash can be blamed on fd exhaustion
    fd_pressure_at: float | None = None  # last time (monotonic) fds were under pressure
    ops_completed: int | None = None  # the OSD's finished-ops counter at the last look
    ops_progress_at: float | None = None  # last time (monotonic) it had nothing stuck


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of state, with the evidence that caused it."""

    daemon: str
    old: State | None
    new: State
    at: float  # monotonic
    cause: str


@dataclass(frozen=True, slots=True)
class RemoteResult:
    """Another host's OSD as this host reaches it (the second vantage point)."""

    daemon: str
    ok: bool  # some public address sent its banner
    detail: str  # what each address that failed did, or "banner"


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """How one probe's run went as a whole (per-probe success and duration metrics)."""

    name: str
    duration_seconds: float
    error: str = ""


@dataclass(frozen=True, slots=True)
class OsdReport:
    """One OSD in a snapshot: what was seen and what we concluded."""

    observation: Observation
    status: OsdStatus
    transitions: Mapping[State, int] = field(default_factory=dict)  # entries into each state
    restarts: int = 0  # new incarnations seen after the first one


@dataclass(frozen=True, slots=True)
class ReportStatus:
    """How handing the verdicts to the mgr module has gone (see watchdog/export_mgr.py)."""

    attempts: int = 0
    failures: int = 0
    last_ok: bool | None = None  # None: not tried yet
    last_seconds: float | None = None
    keepalive_seconds: float | None = None  # between two unchanged reports, as now paced

    def after(self, *, ok: bool, seconds: float, keepalive: float) -> ReportStatus:
        """The status after one more attempt."""
        return ReportStatus(
            attempts=self.attempts + 1,
            failures=self.failures + (0 if ok else 1),
            last_ok=ok,
            last_seconds=seconds,
            keepalive_seconds=keepalive,
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The result of one cycle; the exporter and the CLI only ever read these."""

    taken_at: float  # wall-clock time the cycle ended
    monotonic_at: float
    cycle_seconds: float
    cycles: int
    osds: tuple[OsdReport, ...] = ()
    listen_overflows: int | None = None  # host-wide TcpExt ListenOverflows counter
    probe_runs: tuple[ProbeRun, ...] = ()
    actions_total: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (action, result)
    refusals_total: Mapping[str, int] = field(default_factory=dict)  # by guard
    step_failures_total: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (osd, step)
    fenced: tuple[str, ...] = ()  # OSDs this watchdog fenced and has not unfenced
    map_status: MapStatus | None = None  # None: no cluster view configured
    self_stalls: int = 0  # cycles discarded because the watchdog itself was frozen
    report_status: ReportStatus | None = None  # None: not reporting to the mgr module
    host: str = ""  # the name the OSD map knows this host by (discover.mapped.HostIdentity)
    remote: tuple[RemoteResult, ...] = ()  # other hosts' OSDs probed from here, if asked

    def wall_time(self, monotonic: float) -> float:
        """Convert a monotonic timestamp of this process to wall-clock time."""
        return self.taken_at - (self.monotonic_at - monotonic)
