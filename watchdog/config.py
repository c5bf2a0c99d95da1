"""Configuration: TOML in, one validated frozen ``Config`` out (every problem reported at once)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from watchdog.errors import ConfigError
from watchdog.model import Endpoint, Role, parse_endpoint
from watchdog.webauth import load_web_security

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_PORT = 9729
DAEMON_NAME = re.compile(r"^osd\.\d+$")

Seconds = Annotated[float, Field(gt=0, le=3600)]
Ratio = Annotated[float, Field(gt=0, le=1)]
Count = Annotated[int, Field(ge=1, le=1000)]


class Section(BaseModel):
    """Common settings: unknown keys are errors, values are never mutated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LoopConfig(Section):
    """How often and how hard to look."""

    interval_seconds: Seconds = 1.0
    probe_timeout_seconds: Seconds = 1.0
    max_in_flight: Annotated[int, Field(ge=1, le=4096)] = 256
    cycle_deadline_seconds: Seconds | None = None  # default: interval + 2 probe timeouts

    @property
    def cycle_deadline(self) -> float:
        """Longest a cycle may take; endpoints not probed by then are our error, not the OSD's."""
        if self.cycle_deadline_seconds is not None:
            return self.cycle_deadline_seconds
        return self.interval_seconds + 2 * self.probe_timeout_seconds

    @model_validator(mode="after")
    def _timeout_fits_interval(self) -> Self:
        if self.probe_timeout_seconds > 5 * self.interval_seconds:
            raise ValueError(
                "probe_timeout_seconds must be at most 5x interval_seconds, "
                "or a stuck probe would hide several cycles"
            )
        return self


class WebConfig(Section):
    """Where /metrics and /healthz are served."""

    listen_address: str = f"127.0.0.1:{DEFAULT_PORT}"
    stall_after_seconds: Seconds | None = None  # default: 3 intervals + one probe timeout
    # TLS and basic auth, in the exporter-toolkit format the Prometheus exporters share.
    config_file: Path | None = None

    @field_validator("config_file")
    @classmethod
    def _valid_web_config(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_web_security(value)  # raises ValueError naming the bad key
        return value

    @field_validator("listen_address")
    @classmethod
    def _valid_listen(cls, value: str) -> str:
        parse_endpoint(value, any_port=True)
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        """The address split for socket.bind."""
        endpoint = parse_endpoint(self.listen_address, any_port=True)
        return endpoint.host, endpoint.port


class StaticEndpoint(Section):
    """One address of a static target."""

    address: str
    role: Role = Role.PUBLIC

    @field_validator("address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        parse_endpoint(value)
        return value

    def to_endpoint(self) -> Endpoint:
        """The parsed endpoint, labelled with its role."""
        return parse_endpoint(self.address, self.role)


class StaticTarget(Section):
    """An OSD this host cannot see as a process (another host, a container without hostPID)."""

    daemon: str
    cluster: str = "ceph"
    endpoints: Annotated[list[StaticEndpoint], Field(min_length=1)]

    @field_validator("daemon")
    @classmethod
    def _valid_daemon(cls, value: str) -> str:
        if not DAEMON_NAME.match(value):
            raise ValueError(f"{value!r} is not an OSD name like 'osd.12'")
        return value


class DiscoveryConfig(Section):
    """Where to find OSDs."""

    local: bool = True
    clusters: list[str] = []  # only OSDs of these clusters (empty: every cluster)
    process_names: Annotated[list[str], Field(min_length=1)] = ["ceph-osd"]
    proc_root: Path = Path("/proc")
    static_targets: list[StaticTarget] = []

    @model_validator(mode="after")
    def _unique_static_names(self) -> Self:
        names = [t.daemon for t in self.static_targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"static target names must be unique: {', '.join(duplicates)}")
        return self


class ClusterConfig(Section):
    """How to ask the monitors what they believe (the OSD map), on a schedule of its own."""

    source: Literal["auto", "rados", "cli", "restful", "none"] = "auto"
    name: str = "ceph"  # the cluster name: /etc/ceph/NAME.conf is Ceph's default
    conf: Path | None = None  # default: Ceph's own search (/etc/ceph/NAME.conf)
    keyring: Path | None = None  # default: Ceph's own search for the client's keyring
    client_name: Annotated[str, Field(pattern=r"^client\.[\w.-]+$")] = "client.admin"
    ceph_command: str = "ceph"
    refresh_seconds: Seconds = 30.0
    timeout_seconds: Seconds = 5.0
    # A map older than this is not used to judge (the monitor is unreachable); default 3x refresh.
    max_age_seconds: Seconds | None = None
    hostname: str | None = None  # this host in `ceph osd metadata`; default: the host name
    restful_url: str | None = None  # e.g. https://mgr-host:8003
    restful_user: str = "admin"
    restful_key_file: Path | None = None  # the key from `ceph restful create-key USER`
    restful_ca_file: Path | None = None
    restful_verify_tls: bool = True

    @model_validator(mode="after")
    def _restful_complete(self) -> Self:
        if self.source == "restful" and (self.restful_url is None or self.restful_key_file is None):
            raise ValueError("source = 'restful' needs restful_url and restful_key_file")
        if self.restful_url is not None and not self.restful_url.startswith("https://"):
            raise ValueError(f"restful_url {self.restful_url!r} must be https://")
        return self

    @property
    def max_age(self) -> float:
        """Age beyond which the map is stale."""
        if self.max_age_seconds is not None:
            return self.max_age_seconds
        return 3 * self.refresh_seconds + self.timeout_seconds


class AssessConfig(Section):
    """Thresholds of the per-OSD state machine (hysteresis counted in cycles)."""

    suspect_after_failures: Count = 1
    zombie_after_failures: Count = 2
    recover_after_successes: Count = 2
    unobservable_after_cycles: Count = 2
    startup_grace_seconds: Annotated[float, Field(ge=0, le=3600)] = 30.0
    fd_pressure_ratio: Ratio = 0.8
    fd_pressure_clear_ratio: Ratio = 0.75
    fd_exhaustion_horizon_seconds: Seconds = 300.0
    fd_trend_window_seconds: Seconds = 60.0
    fd_trend_min_ratio: Ratio = 0.5  # below this usage a growth trend alone is not pressure

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> Self:
        if self.zombie_after_failures < self.suspect_after_failures:
            raise ValueError("zombie_after_failures must be >= suspect_after_failures")
        if self.fd_pressure_clear_ratio >= self.fd_pressure_ratio:
            raise ValueError("fd_pressure_clear_ratio must be below fd_pressure_ratio")
        if self.fd_trend_min_ratio > self.fd_pressure_ratio:
            raise ValueError("fd_trend_min_ratio must not be above fd_pressure_ratio")
        return self


def _before(steps: Sequence[str], earlier: str, later: str) -> bool:
    """True unless ``later`` is in the steps without ``earlier`` somewhere before it."""
    if later not in steps:
        return True
    return earlier in steps and steps.index(earlier) < steps.index(later)


StepName = Literal["fence", "markdown", "restart", "verify", "unfence", "exec", "webhook"]


class ActConfig(Section):
    """What to do on a transition into zombie, and the guards; dry-run until enabled."""

    dry_run: bool = True
    on_states: list[Annotated[str, Field(pattern="^(zombie|suspect|fd_pressure|down)$")]] = [
        "zombie"
    ]
    # Fence (noup + down), restart, verify the new process answers, unfence: design.md s3.
    steps: Annotated[list[StepName], Field(min_length=1)] = [
        "fence",
        "restart",
        "verify",
        "unfence",
    ]
    step_timeout_seconds: Seconds = 60.0
    cooldown_seconds: Annotated[float, Field(ge=0, le=86400)] = 1800.0  # per OSD
    max_actions_per_hour: Annotated[int, Field(ge=0, le=1000)] = 3  # for the whole host
    mass_failure_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    canary: bool = True  # probe a listener of our own before acting
    # Ceph shuts an OSD down (exit 0, which systemd does not restart) after more than
    # osd_max_markdown_count mark-downs in osd_max_markdown_period: stay below it.
    markdown_limit: Annotated[int, Field(ge=1, le=100)] = 5
    markdown_period_seconds: Seconds = 600.0
    restart_unit_template: str = "ceph-osd@{id}"
    systemctl_command: str = "systemctl"
    restart_command: list[str] = []  # instead of systemctl, e.g. ["docker", "restart", "osd{id}"]
    exec_command: list[str] = []  # the exec step; the event is in OSD_WATCHDOG_* variables
    webhook_url: str | None = None
    webhook_token_file: Path | None = None
    webhook_timeout_seconds: Seconds = 5.0
    webhook_retries: Annotated[int, Field(ge=0, le=10)] = 2
    state_dir: Path = Path("/var/lib/osd-watchdog")  # fences set by us survive our restarts
    audit_log: Path | None = None  # default: state_dir/audit.jsonl

    @model_validator(mode="after")
    def _coherent_steps(self) -> Self:
        steps = self.steps
        for later, earlier in (("unfence", "fence"), ("verify", "restart")):
            if not _before(steps, earlier, later):
                raise ValueError(f"steps: {later} needs a {earlier} before it")
        if "exec" in steps and not self.exec_command:
            raise ValueError("steps: exec needs exec_command")
        if "webhook" in steps and not self.webhook_url:
            raise ValueError("steps: webhook needs webhook_url")
        return self

    @property
    def audit_path(self) -> Path:
        """Where every decision is appended, one JSON object per line."""
        return self.audit_log or self.state_dir / "audit.jsonl"


class Config(Section):
    """The whole configuration file."""

    loop: LoopConfig = LoopConfig()
    web: WebConfig = WebConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    cluster: ClusterConfig = ClusterConfig()
    assess: AssessConfig = AssessConfig()
    act: ActConfig = ActConfig()

    @property
    def stall_after_seconds(self) -> float:
        """How old the last finished cycle may be before /healthz fails."""
        configured = self.web.stall_after_seconds
        if configured is not None:
            return configured
        return 3 * self.loop.interval_seconds + self.loop.probe_timeout_seconds


def _describe(error: Any) -> str:  # noqa: ANN401 - pydantic's ErrorDetails is a TypedDict
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    path = path or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{path}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}"


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate already-parsed TOML; raise one ConfigError listing every problem."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


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
