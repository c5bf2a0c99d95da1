"""Secrets: read from a file or the environment at the moment of use, and never shown.

A webhook URL is often a secret itself (a chat's incoming-webhook URL carries its token in
the path), and a URL may carry ``user:password@``. Anything that prints a URL to a log, the
audit file, /metrics or ``check-config --show`` prints ``shown_url(url)``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from watchdog.errors import SecretError

if TYPE_CHECKING:
    from pathlib import Path

WEBHOOK_TOKEN_ENV = "OSD_WATCHDOG_WEBHOOK_TOKEN"  # noqa: S105 - a variable's name
RESTFUL_KEY_ENV = "OSD_WATCHDOG_RESTFUL_KEY"
REDACTED = "<redacted>"


def read_secret(path: Path | None, env: str) -> str | None:
    """The secret from ``path`` if set, else from the environment variable ``env``, or None.

    Read at each use so that a rotated file takes effect without a restart.
    """
    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise SecretError(f"cannot read {path}: {exc.__class__.__name__}") from None
        if not value:
            raise SecretError(f"{path} is empty")
        return value
    return os.environ.get(env, "").strip() or None


def child_environment() -> dict[str, str]:
    """Our environment without our secrets, for the commands we run (ceph, systemctl, exec)."""
    return {k: v for k, v in os.environ.items() if k not in {WEBHOOK_TOKEN_ENV, RESTFUL_KEY_ENV}}


def shown_url(url: str) -> str:
    """``scheme://host[:port]`` and nothing that could be a credential (userinfo, path, query)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    hidden = "/" + REDACTED if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{hidden}"
