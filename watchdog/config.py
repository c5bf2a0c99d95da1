"""Configuration: TOML in, one validated frozen ``Config`` out (every problem reported at once).

Each section is a frozen dataclass; its annotations say what it accepts (watchdog.schema).
Constructing a section directly (tests, defaults) does not validate: files go through
``parse_config``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from watchdog.credentials import RESTFUL_KEY_ENV, shown_url
from watchdog.errors import ConfigError, Invalid
from watchdog.model import Endpoint, Role, parse_endpoint
from watchdog.schema import Bound, Check, build
from watchdog.stepkinds import KINDS

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_PORT = 9729
DAEMON_NAME = re.compile(r"^osd\.\d+$")

Seconds = Annotated[float, Bound(gt=0, le=3600)]
Ratio = Annotated[float, Bound(gt=0, le=1)]
Count = Annotated[int, Bound(ge=1, le=1000)]


def _address(value: str) -> None:
    parse_endpoint(value)


def _listen_address(value: str) -> None:
    parse_endpoint(value, any_port=True)


def _osd_name(value: str) -> None:
    if not DAEMON_NAME.match(value):
        raise ValueError(f"{value!r} is not an OSD name like 'osd.12'")


def _client_name(value: str) -> None:
    if not re.fullmatch(r"client\.[\w.-]+", value):
        raise ValueError(f"{value!r} is not a client name like 'client.admin'")


def _no_userinfo(value: str) -> None:
    if "@" in urlsplit(value).netloc:
        raise ValueError(
            f"{shown_url(value)!r}: no user:password@ in a URL; the key or token goes in a file"
        )


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """How often and how hard to look."""

    interval_seconds: Seconds = 1.0
    probe_timeout_seconds: Seconds = 1.0
    max_in_flight: Annotated[int, Bound(ge=1, le=4096)] = 256
    cycle_deadline_seconds: Seconds | None = None  # default: interval + 2 probe timeouts

    @property
    def cycle_deadline(self) -> float:
        """Longest a cycle may take; endpoints not probed by then are our error, not the OSD's."""
        if self.cycle_deadline_seconds is not None:
            return self.cycle_deadline_seconds
        return self.interval_seconds + 2 * self.probe_timeout_seconds

    def check(self) -> None:
        """Rules across fields (raises ValueError)."""
        if self.probe_timeout_seconds > 5 * self.interval_seconds:
            raise ValueError(
                "probe_timeout_seconds must be at most 5x interval_seconds, "
                "or a stuck probe would hide several cycles"
            )


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """Where /metrics and /healthz are served."""

    listen_address: Annotated[str, Check(_listen_address)] = f"127.0.0.1:{DEFAULT_PORT}"
    stall_after_seconds: Seconds | None = None  # default: 3 intervals + one probe timeout
    # TLS and basic auth, in the exporter-toolkit format the Prometheus exporters share.
    # Read where it is used (the web server, `check-config`): validating stays pure.
    config_file: Path | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        """The address split for socket.bind."""
        endpoint = parse_endpoint(self.listen_address, any_port=True)
        return endpoint.host, endpoint.port


@dataclass(frozen=True, kw_only=True)
class StaticEndpoint:
    """One address of a static target."""

    address: Annotated[str, Check(_address)]
    role: Role = Role.PUBLIC

    def to_endpoint(self) -> Endpoint:
        """The parsed endpoint, labelled with its role."""
        return parse_endpoint(self.address, self.role)


@dataclass(frozen=True, kw_only=True)
class StaticTarget:
    """An OSD this host cannot see as a process (another host, a container without hostPID)."""

    daemon: Annotated[str, Check(_osd_name)]
    cluster: str = "ceph"
    endpoints: Annotated[list[StaticEndpoint], Bound(min_items=1)]


@dataclass(frozen=True, kw_only=True)
class DiscoveryConfig:
    """Where to find OSDs."""

    local: bool = True
    # Only OSDs of these clusters (empty: every cluster).
    clusters: list[str] = field(default_factory=list)
    process_names: Annotated[list[str], Bound(min_items=1)] = field(
        default_factory=lambda: ["ceph-osd"]
    )
    proc_root: Path = Path("/proc")
    static_targets: list[StaticTarget] = field(default_factory=list)

    def check(self) -> None:
        """Rules across fields (raises ValueError)."""
        names = [t.daemon for t in self.static_targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"static target names must be unique: {', '.join(duplicates)}")


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    """How to ask the monitors what they believe (the OSD map), on a schedule of its own."""

    source: Literal["auto", "rados", "cli", "restful", "none"] = "auto"
    name: str = "ceph"  # the cluster name: /etc/ceph/NAME.conf is Ceph's default
    conf: Path | None = None  # default: Ceph's own search (/etc/ceph/NAME.conf)
    keyring: Path | None = None  # default: Ceph's own search for the client's keyring
    # The watchdog's own key (the README says which caps); Ceph finds its keyring at
    # /etc/ceph/CLUSTER.client.osd-watchdog.keyring. Not client.admin: user ceph cannot read
    # the admin keyring, and the watchdog needs far less.
    client_name: Annotated[str, Check(_client_name)] = "client.osd-watchdog"
    ceph_command: str = "ceph"
    refresh_seconds: Seconds = 30.0
    timeout_seconds: Seconds = 5.0
    # A map older than this is not used to judge (the monitor is unreachable); default 3x refresh.
    max_age_seconds: Seconds | None = None
    hostname: str | None = None  # this host in `ceph osd metadata`; default: the host name
    restful_url: Annotated[str, Check(_no_userinfo)] | None = None  # e.g. https://mgr-host:8003
    restful_user: str = "admin"
    restful_key_file: Path | None = None  # the key from `ceph restful create-key USER`
    restful_ca_file: Path | None = None
    restful_verify_tls: bool = True

    def check(self) -> None:
        """Rules across fields (raises ValueError)."""
        if self.source == "restful" and self.restful_url is None:
            raise ValueError("source = 'restful' needs restful_url")
        keyless = self.restful_key_file is None and not os.environ.get(RESTFUL_KEY_ENV, "").strip()
        if self.source == "restful" and keyless:
            raise ValueError(
                f"source = 'restful' needs restful_key_file, or the key in {RESTFUL_KEY_ENV}"
            )
        if self.restful_url is not None and not self.restful_url.startswith("https://"):
            raise ValueError(f"restful_url {shown_url(self.restful_url)!r} must be https://")

    @property
    def max_age(self) -> float:
        """Age beyond which the map is stale."""
        if self.max_age_seconds is not None:
            return self.max_age_seconds
        return 3 * self.refresh_seconds + self.timeout_seconds


@dataclass(frozen=True, kw_only=True)
class AssessConfig:
    """Thresholds of the per-OSD state machine (hysteresis counted in cycles)."""

    suspect_after_failures: Count = 1
    zombie_after_failures: Count = 2
    recover_after_successes: Count = 2
    unobservable_after_cycles: Count = 2
    startup_grace_seconds: Annotated[float, Bound(ge=0, le=3600)] = 30.0
    fd_pressure_ratio: Ratio = 0.8
    fd_pressure_clear_ratio: Ratio = 0.75
    fd_exhaustion_horizon_seconds: Seconds = 300.0
    fd_trend_window_seconds: Seconds = 60.0
    fd_trend_min_ratio: Ratio = 0.5  # below this usage a growth trend alone is not pressure
    # An op held this long while the OSD finishes none: its ops are stuck (stalled). Well
    # under Ceph's own osd_op_complaint_time (30 s, SLOW_OPS); a busy OSD keeps finishing.
    ops_stuck_after_seconds: Seconds = 3.0

    def check(self) -> None:
        """Rules across fields (raises ValueError)."""
        if self.zombie_after_failures < self.suspect_after_failures:
            raise ValueError("zombie_after_failures must be >= suspect_after_failures")
        if self.fd_pressure_clear_ratio >= self.fd_pressure_ratio:
            raise ValueError("fd_pressure_clear_ratio must be below fd_pressure_ratio")
        if self.fd_trend_min_ratio > self.fd_pressure_ratio:
            raise ValueError("fd_trend_min_ratio must not be above fd_pressure_ratio")


def _before(steps: Sequence[str], earlier: str, later: str) -> bool:
    """True unless ``later`` is in the steps without ``earlier`` somewhere before it."""
    if later not in steps:
        return True
    return earlier in steps and steps.index(earlier) < steps.index(later)


StepName = Literal["fence", "markdown", "restart", "verify", "unfence", "exec", "webhook"]
StateName = Literal["zombie", "stalled", "suspect", "fd_pressure", "down"]


@dataclass(frozen=True, kw_only=True)
class ActConfig:
    """What to do on a transition into zombie, and the guards; dry-run until enabled."""

    dry_run: bool = True
    on_states: list[StateName] = field(default_factory=lambda: ["zombie", "stalled"])
    # Fence (noup + down), restart, verify the new process answers, unfence: design.md s3.
    steps: Annotated[list[StepName], Bound(min_items=1)] = field(
        default_factory=lambda: ["fence", "restart", "verify", "unfence"]
    )
    step_timeout_seconds: Seconds = 60.0
    cooldown_seconds: Annotated[float, Bound(ge=0, le=86400)] = 1800.0  # per OSD
    max_actions_per_hour: Annotated[int, Bound(ge=0, le=1000)] = 3  # for the whole host
    mass_failure_share: Ratio = 0.5
    canary: bool = True  # probe a listener of our own before acting
    # Ceph shuts an OSD down (exit 0, which systemd does not restart) after more than
    # osd_max_markdown_count mark-downs in osd_max_markdown_period: stay below it.
    markdown_limit: Annotated[int, Bound(ge=1, le=100)] = 5
    markdown_period_seconds: Seconds = 600.0
    # Remediations this host runs at once; the others wait their turn while still failing.
    max_concurrent: Annotated[int, Bound(ge=1, le=100)] = 1
    # Refuse to fence when this many OSDs anywhere in the cluster already carry noup (other
    # hosts' watchdogs, or an operator): one network event must not fence half the cluster.
    max_fenced_in_cluster: Annotated[int, Bound(ge=1, le=10000)] = 1
    # "require": ask `ceph osd ok-to-stop` first and refuse when stopping the OSD would make
    # PGs inactive (it holds their last active copy); "ignore": act anyway.
    ok_to_stop: Literal["require", "ignore"] = "require"
    restart_unit_template: str = "ceph-osd@{id}"
    systemctl_command: str = "systemctl"
    # Instead of systemctl, e.g. ["docker", "restart", "osd{id}"].
    restart_command: list[str] = field(default_factory=list)
    # The exec step; the event is in OSD_WATCHDOG_* variables.
    exec_command: list[str] = field(default_factory=list)
    # A chat webhook URL is itself a secret: it is only ever shown as scheme://host/<redacted>.
    webhook_url: Annotated[str, Check(_no_userinfo)] | None = None
    webhook_token_file: Path | None = None
    webhook_timeout_seconds: Seconds = 5.0
    webhook_retries: Annotated[int, Bound(ge=0, le=10)] = 2
    state_dir: Path = Path("/var/lib/osd-watchdog")  # fences set by us survive our restarts
    audit_log: Path | None = None  # default: state_dir/audit.jsonl

    def check(self) -> None:
        """Rules across fields (raises ValueError)."""
        steps = self.steps
        for name in steps:
            kind = KINDS[name]
            if kind.after is not None and not _before(steps, kind.after, name):
                raise ValueError(f"steps: {name} needs a {kind.after} before it")
            if kind.needs is not None and not getattr(self, kind.needs):
                raise ValueError(f"steps: {name} needs {kind.needs}")

    @property
    def audit_path(self) -> Path:
        """Where every decision is appended, one JSON object per line."""
        return self.audit_log or self.state_dir / "audit.jsonl"


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """[report]: hand the verdicts to the osd_watchdog ceph-mgr module (off by default)."""

    enabled: bool = False
    # Looked at every interval, and at once when an OSD's state changes; sent when
    # something the module shows changed (a state, an event, a remote result), after a
    # failure, and otherwise every keepalive. Each report is a mgr command, and ceph-mgr
    # charges about 2 ms of CPU for any command to a Python module; 1,000 hosts reporting
    # every 30 s cost it 5-8% of a core (bench/RESULTS.md), so the default is 60 s, and on a
    # large cluster the module asks for longer (its keepalive_rate) and the longer is kept.
    # The report says its keepalive, and the module waits two of them (or its max_report_age,
    # if longer) before it calls this host silent (OSD_WATCHDOG_DOWN): 2 minutes by default.
    interval_seconds: Seconds = 10.0
    keepalive_seconds: Seconds = 60.0
    timeout_seconds: Seconds = 10.0
    # A second vantage point: also probe the public addresses of some other hosts' OSDs,
    # each OSD by `remote_vantages` other hosts (from the map, the same choice on every
    # host), at most `max_remote_osds` per report. The module tells a dead accept path from
    # an OSD that only other hosts cannot reach.
    remote_probes: bool = False
    remote_vantages: Annotated[int, Bound(ge=1, le=10)] = 2
    max_remote_osds: Annotated[int, Bound(ge=1, le=4096)] = 64

    def check(self) -> None:
        """Rules across fields (raises ValueError)."""
        if self.keepalive_seconds < self.interval_seconds:
            raise ValueError(
                "keepalive_seconds must be at least interval_seconds: a report is only "
                "looked at once per interval"
            )


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration file."""

    loop: LoopConfig = field(default_factory=LoopConfig)
    web: WebConfig = field(default_factory=WebConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    assess: AssessConfig = field(default_factory=AssessConfig)
    act: ActConfig = field(default_factory=ActConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def check(self) -> None:
        """Rules across sections (raises ValueError)."""
        if self.report.enabled and self.cluster.source in {"none", "restful"}:
            raise ValueError(
                f"report.enabled needs cluster.source auto, cli or rados (it is "
                f"{self.cluster.source!r}): the report is a mgr command through the CLI or "
                "librados"
            )

    @property
    def stall_after_seconds(self) -> float:
        """How old the last finished cycle may be before /healthz fails."""
        configured = self.web.stall_after_seconds
        if configured is not None:
            return configured
        return 3 * self.loop.interval_seconds + self.loop.probe_timeout_seconds


URL_KEYS = frozenset({"restful_url", "webhook_url"})  # may carry a token: shown redacted


def effective(config: Config) -> dict[str, Any]:
    """The whole config, every default filled in, as JSON values; URLs shown redacted."""

    def shown(key: str, value: object) -> object:
        if isinstance(value, dict):
            return {k: shown(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [shown(key, v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if key in URL_KEYS and isinstance(value, str):
            return shown_url(value)
        return value

    return {name: shown(name, value) for name, value in asdict(config).items()}


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate already-parsed TOML; raise one ConfigError listing every problem."""
    try:
        return build(Config, data)
    except Invalid as exc:
        raise ConfigError(source, exc.problems) from None


def load_config(path: Path | None) -> Config:
    """Read and validate a TOML file; ``None`` means all defaults."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read file: {exc}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    return parse_config(data, str(path))
