"""The shipped files, as the tests use them: an operator's copy, with only addresses and paths
changed to this test's (a listen port, a cluster's conf), never a setting.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import yaml

CHECKOUT = Path(__file__).resolve().parents[1]
EXAMPLES = CHECKOUT / "examples"
KUBERNETES = CHECKOUT / "deploy" / "kubernetes"

# What a test may change in a shipped config: where things are, never how the watchdog acts.
LOCAL = frozenset({
    "web.listen_address", "cluster.conf", "cluster.keyring", "cluster.ceph_command",
    "cluster.hostname", "act.state_dir", "act.audit_log", "discovery.proc_root",
})  # fmt: skip


def key_caps() -> list[str]:
    """The caps of client.osd-watchdog as shipped (Rook's CephClient, the README's command):
    ``["mon", "allow r, ...", "mgr", "allow command ..."]``, as ``ceph auth`` takes them."""
    (client,) = [d for d in yaml.safe_load_all((KUBERNETES / "cephclient.yaml").read_text()) if d]
    return [part for kind, caps in client["spec"]["caps"].items() for part in (kind, caps)]


def localized(text: str, **where: object) -> str:
    """A shipped TOML config with keys in ``LOCAL`` set (``web__listen_address="..."``)."""
    data: dict[str, Any] = tomllib.loads(text)
    for key, value in where.items():
        dotted = key.replace("__", ".")
        if dotted not in LOCAL:
            raise ValueError(f"{dotted} is a setting, not an address or a path")
        section, _, name = dotted.partition(".")
        data.setdefault(section, {})[name] = value
    return render(data)


def render(data: dict[str, Any]) -> str:
    """TOML of tables of scalars and lists (what the watchdog's config has)."""
    out = []
    for section, keys in data.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {_value(value)}" for key, value in keys.items())
    return "\n".join(out) + "\n"


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    return repr(value)
