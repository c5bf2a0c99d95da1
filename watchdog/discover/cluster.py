"""Discover stage, cluster view: what the monitors believe, parsed from the OSD map.

``ceph osd dump -f json`` gives each OSD's up/in state, its four messenger address vectors
(``public_addrs``, ``cluster_addrs``, ``heartbeat_front_addrs``, ``heartbeat_back_addrs``)
and per-OSD flags; ``ceph osd metadata -f json`` gives the hostname each OSD last booted on.
Pure parsing: no I/O, so tests feed it real output captured from Ceph 16.2.
"""

from __future__ import annotations

from typing import Any

from watchdog.errors import MapParseError
from watchdog.model import ClusterMap, Endpoint, MapOsd, Msgr, Role

Json = Any  # parsed JSON, checked field by field below

ADDRVEC_FIELDS = {
    "public_addrs": Role.PUBLIC,
    "cluster_addrs": Role.CLUSTER,
    "heartbeat_front_addrs": Role.HB_FRONT,
    "heartbeat_back_addrs": Role.HB_BACK,
}


def _endpoints(entry: dict[str, Any]) -> tuple[Endpoint, ...]:
    found = []
    for key, role in ADDRVEC_FIELDS.items():
        for addr in (entry.get(key) or {}).get("addrvec", []):
            kind = addr.get("type")
            if kind not in {"v1", "v2"}:
                continue
            host, _, port = str(addr["addr"]).rpartition(":")
            host = host.strip("[]")
            if not port.isdigit() or int(port) == 0 or host in {"", "0.0.0.0", "::"}:
                continue  # an OSD that never booted has blank addresses
            found.append(Endpoint(host, int(port), Msgr(kind), role))
    return tuple(found)


def parse_osd_dump(dump: Json, metadata: Json = None) -> ClusterMap:
    """Build the map from ``osd dump`` (and ``osd metadata`` for hostnames), both parsed JSON."""
    try:
        hostnames = {int(m["id"]): str(m["hostname"]) for m in metadata or [] if "hostname" in m}
        osds = {}
        for entry in dump["osds"]:
            osd_id = int(entry["osd"])
            state = set(entry.get("state", []))
            daemon = f"osd.{osd_id}"
            osds[daemon] = MapOsd(
                daemon=daemon,
                up=bool(entry["up"]),
                in_=bool(entry["in"]),
                endpoints=_endpoints(entry),
                noup="noup" in state,
                nodown="nodown" in state,
                hostname=hostnames.get(osd_id),
            )
        flags = frozenset(f for f in str(dump.get("flags", "")).split(",") if f)
        return ClusterMap(epoch=int(dump["epoch"]), flags=flags, osds=osds)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MapParseError(f"unexpected osd dump: {type(exc).__name__}: {exc}") from exc
