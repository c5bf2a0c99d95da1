"""Shared, the monitors: three ways to run a mon command, one contract, for every stage.

* ``RadosClient``: the librados binding (Debian's python3-rados). About 2 ms a command after
  a 15 ms connect, so it is the first choice. It is loaded from the distribution's path when
  the watchdog runs in a virtualenv, since it is not on PyPI.
* ``CliClient``: the ``ceph`` command, 0.3 to 0.4 s a call (Python start-up and auth).
* ``RestfulClient``: the mgr ``restful`` module over HTTPS (TLS verified by default).

Each call runs under a timeout and raises ``MonitorError`` with the reason. The caller (the
map watcher, on its own thread) turns errors into metrics, never the probe loop.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from watchdog.credentials import RESTFUL_KEY_ENV, child_environment, read_secret, shown_url
from watchdog.errors import MonitorError, SecretError

if TYPE_CHECKING:
    from types import ModuleType

    from watchdog.config import ClusterConfig

log = logging.getLogger(__name__)

# Parsed JSON from Ceph: its shape is checked where it is read (discover/cluster.py).
Json = Any

# Where Debian and Ubuntu put the binding for the system Python.
DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


@dataclass(frozen=True, slots=True)
class Answer:
    """A command's own answer, whatever its return code (``ok-to-stop`` says no with EBUSY)."""

    ret: int  # 0, or a negative errno as Ceph returns it
    out: bytes  # the JSON output, when the command gives one
    status: str  # Ceph's status text

    def json(self, what: str) -> Json:
        """The output, parsed; raises MonitorError when it is not JSON."""
        return _parse(self.out, what)


class MonClient(Protocol):
    """Runs one mon command and returns its JSON output, parsed."""

    name: str

    def command(self, prefix: str, timeout: float) -> Json:
        """``{"prefix": prefix, "format": "json"}``; raises MonitorError."""
        ...

    def send(self, prefix: str, ids: list[str], timeout: float) -> str:
        """A command that changes the map (``osd down``...); returns Ceph's status text."""
        ...

    def ask(self, prefix: str, ids: list[str], timeout: float) -> Answer:
        """A question about OSDs (``osd ok-to-stop``); only a failure to ask raises."""
        ...

    def mgr_ask(self, prefix: str, inbuf: bytes, timeout: float, fmt: str = "json") -> Answer:
        """A mgr module's command with input; only a failure to ask raises."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def _parse(text: bytes | str, what: str) -> Json:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise MonitorError(f"{what}: not JSON ({exc})") from exc


class CliClient:
    """The ``ceph`` command line tool."""

    name = "cli"

    def __init__(self, config: ClusterConfig) -> None:
        self.argv = [*shlex.split(config.ceph_command), "--cluster", config.name]
        if config.conf is not None:
            self.argv += ["--conf", str(config.conf)]
        if config.keyring is not None:
            self.argv += ["--keyring", str(config.keyring)]
        self.argv += ["--name", config.client_name]

    def command(self, prefix: str, timeout: float) -> Json:
        """Run ``ceph PREFIX -f json``."""
        out = self._run([*prefix.split(), "-f", "json"], prefix, timeout)
        return _parse(out.stdout, f"ceph {prefix}")

    def send(self, prefix: str, ids: list[str], timeout: float) -> str:
        """Run ``ceph PREFIX IDS...``; Ceph prints its status text on stderr."""
        out = self._run([*prefix.split(), *ids], prefix, timeout)
        return (out.stderr + out.stdout).decode(errors="replace").strip()

    def ask(self, prefix: str, ids: list[str], timeout: float) -> Answer:
        """Run ``ceph PREFIX IDS... -f json``; its exit status is Ceph's errno."""
        out = self._run([*prefix.split(), *ids, "-f", "json"], prefix, timeout, check=False)
        return Answer(-out.returncode, out.stdout, out.stderr.decode(errors="replace").strip())

    def mgr_ask(self, prefix: str, inbuf: bytes, timeout: float, fmt: str = "json") -> Answer:
        """Run ``ceph PREFIX -i - -f FMT`` with ``inbuf`` on stdin (a mgr module command)."""
        args = [*prefix.split(), "-i", "-", "-f", fmt]
        out = self._run(args, prefix, timeout, check=False, stdin=inbuf)
        return Answer(-out.returncode, out.stdout, out.stderr.decode(errors="replace").strip())

    def _run(
        self,
        args: list[str],
        prefix: str,
        timeout: float,
        *,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        # The connect timeout keeps a dead monitor from hanging us; it leaves the CLI's own
        # start-up (0.3 s or more) inside the caller's timeout.
        argv = [*self.argv, "--connect-timeout", f"{max(1, int(timeout) - 1)}", *args]
        try:
            out = subprocess.run(  # noqa: S603 - fixed argv from the config, no shell
                argv,
                input=stdin,
                capture_output=True,
                timeout=timeout,
                check=False,
                env=child_environment(),
            )
        except FileNotFoundError as exc:
            raise MonitorError(f"{argv[0]} not found: install ceph-common") from exc
        except subprocess.TimeoutExpired as exc:
            raise MonitorError(f"ceph {prefix}: no answer within {timeout:g}s") from exc
        if check and out.returncode != 0:
            reason = out.stderr.decode(errors="replace").strip().splitlines()
            raise MonitorError(
                f"ceph {prefix} exited {out.returncode}: {reason[-1] if reason else ''}"
            )
        return out

    def close(self) -> None:
        """Nothing to release."""


def load_rados() -> ModuleType | None:
    """The librados binding: importable as is, or from the distribution's dist-packages."""
    try:
        import rados  # type: ignore[import-not-found]  # noqa: PLC0415 - optional

    except ImportError:
        pass
    else:
        return rados  # type: ignore[no-any-return]
    tag = f"cpython-{sys.version_info.major}{sys.version_info.minor}"
    for candidate in sorted(DIST_PACKAGES.glob(f"rados.{tag}-*.so")):
        spec = importlib.util.spec_from_file_location("rados", candidate)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except ImportError:
            continue
        return module
    return None


class RadosClient:
    """The librados Python binding; connects on first use and again after a failure."""

    name = "rados"

    def __init__(self, config: ClusterConfig, rados: ModuleType) -> None:
        self.rados = rados
        self.config = config
        self.cluster: Any = None  # a rados.Rados, typed loosely: the binding has no stubs

    def _connect(self, timeout: float) -> Json:
        if self.cluster is None:
            # connect() ignores its timeout argument; these options are what bound it
            # (client_mount_timeout defaults to 300 s).
            seconds = str(max(1, int(timeout)))
            conf = {"client_mount_timeout": seconds, "rados_mon_op_timeout": seconds}
            if self.config.keyring:
                conf["keyring"] = str(self.config.keyring)
            cluster = self.rados.Rados(
                clustername=self.config.name,
                name=self.config.client_name,
                conffile=str(self.config.conf) if self.config.conf else "",
                conf=conf,
            )
            try:
                cluster.connect(timeout=max(1, int(timeout)))
            except self.rados.Error as exc:
                cluster.shutdown()
                raise MonitorError(f"librados connect: {exc}") from exc
            self.cluster = cluster
        return self.cluster

    def command(self, prefix: str, timeout: float) -> Json:
        """One mon_command, its JSON output parsed."""
        out, _ = self._mon_command({"prefix": prefix, "format": "json"}, timeout)
        return _parse(out, f"librados {prefix}")

    def send(self, prefix: str, ids: list[str], timeout: float) -> str:
        """One mon_command with ``ids``; returns the status text."""
        _, status = self._mon_command({"prefix": prefix, "ids": ids}, timeout)
        return status

    def ask(self, prefix: str, ids: list[str], timeout: float) -> Answer:
        """One mon_command (the monitors pass mgr commands such as ok-to-stop on)."""
        return self._answer({"prefix": prefix, "ids": ids, "format": "json"}, timeout)

    def mgr_ask(self, prefix: str, inbuf: bytes, timeout: float, fmt: str = "json") -> Answer:
        """One mgr_command (a mgr module's command) with ``inbuf``."""
        cluster = self._connect(timeout)
        request = json.dumps({"prefix": prefix, "format": fmt})
        try:
            ret, out, status = cluster.mgr_command(request, inbuf, timeout=max(1, int(timeout)))
        except self.rados.Error as exc:
            self.close()
            raise MonitorError(f"librados {prefix}: {exc}") from exc
        return Answer(int(ret), bytes(out), str(status))

    def _mon_command(self, request: dict[str, Any], timeout: float) -> tuple[bytes, str]:
        answer = self._answer(request, timeout)
        if answer.ret != 0:
            raise MonitorError(f"librados {request['prefix']}: error {answer.ret}: {answer.status}")
        return answer.out, answer.status

    def _answer(self, request: dict[str, Any], timeout: float) -> Answer:
        """A failure drops the connection, so the next call reconnects."""
        cluster = self._connect(timeout)
        try:
            ret, out, status = cluster.mon_command(
                json.dumps(request), b"", timeout=max(1, int(timeout))
            )
        except self.rados.Error as exc:
            self.close()
            raise MonitorError(f"librados {request['prefix']}: {exc}") from exc
        return Answer(int(ret), bytes(out), str(status))

    def close(self) -> None:
        """Shut the connection down."""
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None


class RestfulClient:
    """The mgr ``restful`` module: POST /request?wait=1 with HTTP basic auth."""

    name = "restful"

    def __init__(self, config: ClusterConfig) -> None:
        if config.restful_url is None:
            raise MonitorError("restful needs cluster.restful_url")
        try:
            key = read_secret(config.restful_key_file, RESTFUL_KEY_ENV)
        except SecretError as exc:
            raise MonitorError(f"restful key: {exc}") from None
        if key is None:
            raise MonitorError(f"restful needs cluster.restful_key_file or {RESTFUL_KEY_ENV}")
        self.url = config.restful_url.rstrip("/") + "/request?wait=1"
        # Imported here: requests and its TLS stack cost the resident daemon ~16 MiB, and
        # only the restful source needs them.
        import requests  # noqa: PLC0415
        import urllib3  # noqa: PLC0415

        self.requests = requests
        self.session = requests.Session()
        self.session.auth = (config.restful_user, key)
        # TLS is verified unless turned off; a private CA is the usual case for restful.
        # Passed on each request: a session-wide setting loses to REQUESTS_CA_BUNDLE.
        self.verify: str | bool = (
            str(config.restful_ca_file) if config.restful_ca_file else config.restful_verify_tls
        )
        if self.verify is False:
            # Said once here rather than by urllib3 on every request.
            shown = shown_url(config.restful_url)
            log.warning("TLS verification of %s is OFF (cluster.restful_verify_tls)", shown)
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def command(self, prefix: str, timeout: float) -> Json:
        """One request, waited for; the command's own failure comes back in ``failed``."""
        done = self._request({"prefix": prefix, "format": "json"}, timeout)
        return _parse(done["outb"], f"restful {prefix}")

    def send(self, prefix: str, ids: list[str], timeout: float) -> str:
        """A map-changing command through the mgr."""
        return str(self._request({"prefix": prefix, "ids": ids}, timeout).get("outs", ""))

    def ask(self, prefix: str, ids: list[str], timeout: float) -> Answer:
        """A question through the mgr; a command that says no comes back in ``failed``."""
        body = {"prefix": prefix, "ids": ids, "format": "json"}
        done = self._request(body, timeout, failed_ok=True)
        ret = 0 if done.get("_ok", True) else -1
        return Answer(ret, str(done.get("outb", "")).encode(), str(done.get("outs", "")))

    def mgr_ask(self, prefix: str, inbuf: bytes, timeout: float, fmt: str = "json") -> Answer:  # noqa: ARG002
        """Not possible: restful's /request carries no input buffer for a module command."""
        raise MonitorError(f"restful {prefix}: the restful source cannot send mgr module commands")

    def _request(
        self, body: dict[str, Any], timeout: float, *, failed_ok: bool = False
    ) -> dict[str, Any]:
        prefix = body["prefix"]
        try:
            reply = self.session.post(self.url, json=body, timeout=timeout, verify=self.verify)
        except self.requests.RequestException as exc:
            raise MonitorError(f"restful {prefix}: {type(exc).__name__}: {exc}") from exc
        if reply.status_code != 200:
            raise MonitorError(f"restful {prefix}: HTTP {reply.status_code}: {reply.text[:200]}")
        answer = _parse(reply.content, f"restful {prefix}")
        try:
            if answer.get("failed"):
                if failed_ok:
                    return {**answer["failed"][0], "_ok": False}
                raise MonitorError(f"restful {prefix}: {answer['failed'][0].get('outs', '')}")
            return dict(answer["finished"][0])
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            raise MonitorError(f"restful {prefix}: unexpected reply {str(answer)[:200]}") from exc

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()


def client_or_none(config: ClusterConfig, without: str) -> MonClient | None:
    """The configured client, or None when it cannot be made (logged with ``without``).

    A missing binding or key must not stop the watchdog from probing.
    """
    try:
        return make_client(config)
    except MonitorError as exc:
        log.warning("%s: %s", without, exc)
        return None


def make_client(config: ClusterConfig) -> MonClient | None:
    """The configured client. None for ``none``.

    ``auto`` prefers the CLI, then librados: librados in the daemon costs about 18 MiB of
    resident memory for as long as it runs (2.2x blackbox_exporter's RSS in all, against
    1.3x with the CLI; bench/RESULTS.md), while a ``ceph`` child every 30 s costs a few
    tenths of a second of CPU and is gone again. The map stays as fresh either way.
    """
    if config.source == "none":
        return None
    if config.source == "restful":
        return RestfulClient(config)
    if config.source == "cli":
        return CliClient(config)
    if config.source == "auto" and shutil.which(shlex.split(config.ceph_command)[0]):
        return CliClient(config)
    rados = load_rados()
    if rados is not None:
        return RadosClient(config, rados)
    if config.source == "rados":
        raise MonitorError("the librados binding is not installed (apt install python3-rados)")
    return CliClient(config)  # neither: its first request says what to install
