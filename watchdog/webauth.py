"""Export stage, access: TLS and basic auth for /metrics, from an exporter-toolkit web config.

The file has the format the official Prometheus exporters read with ``--web.config.file``
(https://github.com/prometheus/exporter-toolkit, docs/web-configuration.md), so one file can
serve node_exporter and this watchdog alike. Supported keys:

    tls_server_config:
      cert_file: /etc/osd-watchdog/tls.crt
      key_file: /etc/osd-watchdog/tls.key
      client_ca_file: /etc/osd-watchdog/ca.crt     # optional
      client_auth_type: RequireAndVerifyClientCert # or NoClientCert (default)
    basic_auth_users:
      prometheus: $2y$10$...                        # bcrypt, e.g. htpasswd -nBC 10 ""

Anything else is an error, never silently ignored. Passwords are compared with bcrypt; a
successful check is remembered (by a SHA-256 of the credentials, never the password) so a
scrape flood cannot burn CPU on bcrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watchdog.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from watchdog.config import Config

TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type"}
CLIENT_AUTH = {"NoClientCert", "RequireAndVerifyClientCert"}


@dataclass
class WebSecurity:
    """What the HTTP server enforces."""

    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    _good: set[bytes] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def authorized(self, header: str | None) -> bool:
        """True when no users are configured, or the Basic credentials match one."""
        if not self.users:
            return True
        user, password = _credentials(header)
        expected = self.users.get(user)
        if expected is None:
            return False
        token = hashlib.sha256(f"{user}\0{password}\0".encode() + expected).digest()
        with self._lock:
            if token in self._good:
                return True
        import bcrypt  # noqa: PLC0415 - loaded only where basic auth is configured

        if not bcrypt.checkpw(password.encode(), expected):
            return False
        with self._lock:
            self._good.add(token)
        return True


def _credentials(header: str | None) -> tuple[str, str]:
    """(user, password) from a Basic Authorization header; ("", "") if there is none."""
    if not header or not header.startswith("Basic "):
        return "", ""
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    user, _, password = decoded.partition(":")
    return user, password


def web_security(config: Config, source: str) -> WebSecurity | None:
    """The web config file's settings, if one is named; a bad file is a ConfigError."""
    path = config.web.config_file
    if path is None:
        return None
    try:
        return load_web_security(path)
    except ValueError as exc:
        raise ConfigError(source, [f"web.config_file: {exc}"]) from None


def load_web_security(path: Path) -> WebSecurity:
    """Read and check the file; raises ValueError naming the bad key."""
    import yaml  # noqa: PLC0415 - only when a web config file is used

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")  # noqa: TRY004 - pydantic reports ValueError
    unknown = sorted(str(k) for k in set(data) - {"tls_server_config", "basic_auth_users"})
    if unknown:
        raise ValueError(f"{path}: unsupported key(s): {', '.join(unknown)}")
    security = WebSecurity()
    if "tls_server_config" in data:
        security.ssl_context = _tls(path, data["tls_server_config"])
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
        raise ValueError(f"{path}: basic_auth_users must map user names to bcrypt hashes")
    for user, hashed in users.items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError(f"{path}: basic_auth_users.{user}: not a bcrypt hash")
    security.users = {str(u): h.encode() for u, h in users.items()}
    return security


def _tls_auth(path: Path, tls: Any) -> str:  # noqa: ANN401 - YAML of any shape
    """Check the shape of tls_server_config; return its client_auth_type."""
    if not isinstance(tls, dict):
        raise ValueError(f"{path}: tls_server_config must be a mapping")  # noqa: TRY004
    unknown = sorted(str(k) for k in set(tls) - TLS_KEYS)
    if unknown:
        raise ValueError(f"{path}: tls_server_config: unsupported key(s): {', '.join(unknown)}")
    for key in ("cert_file", "key_file"):
        if not tls.get(key):
            raise ValueError(f"{path}: tls_server_config.{key} is required")
    for key in ("cert_file", "key_file", "client_ca_file"):
        if key in tls and not isinstance(tls[key], str):
            raise ValueError(f"{path}: tls_server_config.{key} must be a file name")
    auth = tls.get("client_auth_type", "NoClientCert")
    if not isinstance(auth, str) or auth not in CLIENT_AUTH:
        choices = ", ".join(sorted(CLIENT_AUTH))
        raise ValueError(f"{path}: tls_server_config.client_auth_type must be one of {choices}")
    return str(auth)


def _tls(path: Path, tls: Any) -> ssl.SSLContext:  # noqa: ANN401 - YAML of any shape
    auth = _tls_auth(path, tls)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    base = path.parent
    try:
        context.load_cert_chain(base / tls["cert_file"], base / tls["key_file"])
        if auth == "RequireAndVerifyClientCert":
            if not tls.get("client_ca_file"):
                raise ValueError(f"{path}: RequireAndVerifyClientCert needs client_ca_file")
            context.load_verify_locations(base / tls["client_ca_file"])
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"{path}: tls_server_config: {exc}") from exc
    return context
