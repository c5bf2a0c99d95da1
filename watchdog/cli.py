"""Command line: thin typer commands that parse, call the core and print.

Exit codes: 0 fine; 1 a probe or check found a problem or the demo missed; 2 usage;
78 configuration error (systemd's RestartPreventExitStatus=78 stops a crash loop on it);
``check`` follows the Nagios plug-in convention (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from watchdog import __version__
from watchdog.config import Config, effective, load_config
from watchdog.daemon import Watchdog
from watchdog.errors import ConfigError, MonitorError
from watchdog.export import Health, SnapshotMetrics, serve
from watchdog.export_mgr import cluster_status
from watchdog.model import Endpoint, Outcome, parse_endpoint
from watchdog.notify import Notifier
from watchdog.probes.tcp import probe_banners
from watchdog.report import UNKNOWN, as_json, check_result
from watchdog.webauth import WebSecurity, web_security

EX_CONFIG = 78

app = typer.Typer(
    name="osd-watchdog",
    help="Catch Ceph OSDs whose client accept path is dead while the monitors keep them up.",
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    add_completion=False,
)

# Options the old way (a default of typer.Option, Optional[...]): Debian bookworm packages
# typer 0.7, which understands neither Annotated nor ``X | None``, and the osd-watchdog
# package runs on Debian's own python3-typer.
CONFIG = typer.Option(None, "--config", "-c", help="TOML config file (default: built-in defaults).")
JSON = typer.Option(False, "--json", help="Print JSON for machines.")

log = logging.getLogger("watchdog")


def _load(path: Path | None, exit_code: int = EX_CONFIG) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(exit_code) from None


def _web(settings: Config, path: Path | None) -> WebSecurity | None:
    """The web config file's TLS and users; read once, where the server needs them."""
    try:
        return web_security(settings, str(path or "defaults"))
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(EX_CONFIG) from None


@app.callback()
def _setup(
    log_level: str = typer.Option("info", help="debug, info, warning or error."),
) -> None:
    """Configure logging once, for every command."""
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise typer.BadParameter(f"unknown log level {log_level!r}", param_hint="--log-level")
    # journald stamps every line itself; elsewhere a timestamp helps.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(level=level, format=f"{stamp}%(levelname)s %(name)s: %(message)s")


@app.command()
def run(config: Optional[Path] = CONFIG) -> None:
    """Run the watchdog: probe every interval and serve /metrics and /healthz."""
    settings = _load(config)
    watchdog = Watchdog(settings, config)
    health = Health(watchdog.latest, settings.stall_after_seconds)
    security = _web(settings, config)
    try:
        server = serve(SnapshotMetrics(), health, settings.web.host_port, security)
    except OSError as exc:
        typer.echo(f"cannot listen on {settings.web.listen_address}: {exc}", err=True)
        raise typer.Exit(1) from None
    signal.signal(signal.SIGTERM, lambda *_: watchdog.stop())
    signal.signal(signal.SIGINT, lambda *_: watchdog.stop())
    signal.signal(signal.SIGHUP, lambda *_: watchdog.request_reload())
    log.info(
        "ceph-osd-watchdog %s serving on http://%s/metrics",
        __version__,
        settings.web.listen_address,
    )
    notifier = Notifier()
    try:
        watchdog.run(notifier=notifier)
    finally:
        notifier.close()
        server.shutdown()
        server.server_close()
    log.info("stopped")


@app.command()
def check(config: Optional[Path] = CONFIG, json_output: bool = JSON) -> None:
    """Judge every OSD once and exit like a Nagios plug-in (0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN)."""
    settings = _load(config, exit_code=UNKNOWN)
    watchdog = Watchdog(settings, config, acting=False)  # a check never acts
    watchdog.refresh_map()  # once, up front: a one-shot check has no watcher thread
    # The state machine needs a few samples to reach a verdict: as many as its thresholds.
    cycles = 1 + max(settings.assess.zombie_after_failures, settings.assess.recover_after_successes)
    for index in range(cycles):
        snapshot = watchdog.cycle()
        if index < cycles - 1:
            watchdog.stop_event.wait(settings.loop.interval_seconds)
    names = ", ".join(settings.discovery.process_names)
    code, line = check_result(
        snapshot,
        f"no OSDs found on this host (no process named {names}, no static targets)",
        fd_warn=settings.assess.fd_pressure_ratio,
    )
    typer.echo(json.dumps(as_json(snapshot), indent=2) if json_output else line)
    raise typer.Exit(code)


@app.command()
def discover(config: Optional[Path] = CONFIG, json_output: bool = JSON) -> None:
    """List the OSDs found on this host and every listener they should accept on."""
    watchdog = Watchdog(_load(config), config, acting=False)
    watchdog.refresh_map()
    targets = watchdog.discovery.run(watchdog.fresh_map(), {}).targets
    rows: list[dict[str, Any]] = [
        {
            "ceph_daemon": t.daemon,
            "cluster": t.cluster,
            "pid": t.incarnation.pid if t.incarnation else None,
            "problem": "not running" if t.not_running else t.blind_reason,
            "listeners": [
                {
                    "address": li.endpoint.address,
                    "role": li.endpoint.role.value,
                    "present": li.present,
                }
                for li in t.listeners
            ],
        }
        for t in targets
    ]
    if json_output:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no OSDs found on this host")
    for row in rows:
        problem = f" {row['problem']}" if row["problem"] else ""
        typer.echo(f"{row['ceph_daemon']} (cluster {row['cluster']}, pid {row['pid']}){problem}")
        for li in row["listeners"]:
            typer.echo(f"  {li['role']:<9} {li['address']}{'' if li['present'] else ' (gone)'}")


@app.command()
def status(config: Optional[Path] = CONFIG, json_output: bool = JSON) -> None:
    """Every OSD of the cluster with its latest watchdog verdict, from the mgr module."""
    settings = _load(config)
    try:
        text = cluster_status(settings, as_json=json_output)
    except MonitorError as exc:
        typer.echo(f"osd-watchdog status: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(text.rstrip("\n"))


@app.command()
def probe(
    addresses: list[str] = typer.Argument(..., help="[v1:|v2:]HOST:PORT, IPv6 in brackets."),
    timeout: float = typer.Option(1.0, min=0.01, max=60, help="Seconds per probe."),
    json_output: bool = JSON,
) -> None:
    """Probe addresses once each and show what they sent (exit 1 if any failed)."""
    endpoints: list[Endpoint] = []
    for text in addresses:
        try:
            endpoints.append(parse_endpoint(text))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="ADDRESSES") from None
    results = probe_banners(endpoints, timeout)
    for result in results:
        if json_output:
            fields: dict[str, str | float | None] = {
                "address": result.endpoint.address,
                "outcome": result.outcome.value,
                "connect_seconds": result.connect_seconds,
                "banner_seconds": result.banner_seconds,
                "detail": result.detail,
            }
            typer.echo(json.dumps(fields))
        else:
            took = f"{result.duration_seconds * 1000:.1f}ms"
            typer.echo(
                f"{result.endpoint.address} {result.outcome.value} {took} {result.detail}".rstrip()
            )
    raise typer.Exit(0 if all(r.outcome is Outcome.OK for r in results) else 1)


@app.command("check-config")
def check_config(
    path: Path = typer.Argument(..., help="TOML config file to validate."),
    show: bool = typer.Option(
        False,
        "--show",
        help="Print the effective config (defaults filled in).",
    ),
) -> None:
    """Validate a config file: exit 0 if valid, 78 with every problem listed."""
    config = _load(path)
    _web(config, path)  # the web config file it names must be valid too
    if show:
        # Key and token files are shown by path, never read; URLs as scheme://host only.
        typer.echo(json.dumps(effective(config), indent=2))
    else:
        typer.echo(f"{path}: ok")


@app.command()
def demo(
    osds: int = typer.Option(3, min=3, max=16, help="Simulated OSDs to start."),
    listen: str = typer.Option("127.0.0.1:0", help="Where to serve /metrics."),
) -> None:
    """Simulate OSDs, break one the classic way (fd exhaustion) and watch it get caught."""
    from watchdog.demo import run_demo, summary  # noqa: PLC0415 - not loaded by the daemon

    result = run_demo(
        osds, listen, lambda text: typer.echo(text, nl=False), live=sys.stdout.isatty()
    )
    typer.echo(summary(result))
    raise typer.Exit(0 if result.detection_seconds is not None else 1)


def main() -> None:
    """Console-script entry point."""
    app()
