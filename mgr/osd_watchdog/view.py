"""What the module knows of the cluster: which OSDs exist, which are up, on which host.

Built from the OSD map when the mgr says it changed, never per report: at 10,000 OSDs one
conversion of the map costs tens of milliseconds. An OSD's host names are its metadata's
``hostname`` (what its process reported at boot) and its CRUSH host bucket; a report from
either name may speak for it. Rook's OSD pods report their pod name as hostname while their
CRUSH host is the node, and an OSD that never booted has no metadata but may sit in CRUSH.
Metadata is fetched per OSD, only for OSDs that are new or booted again (``up_from`` moved).
"""

from typing import Any, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Set, Tuple

Names = Tuple[str, ...]  # an OSD's host names: metadata hostname, CRUSH host (deduplicated)


class ClusterView(NamedTuple):
    """The map as the module judges it."""

    up: Dict[int, bool]  # OSD id -> up in the OSD map (every OSD the map has)
    names: Dict[int, Names]  # OSD id -> its host names
    owners: Dict[str, FrozenSet[int]]  # host name -> its OSDs
    epoch: int = 0

    def on(self, osd: int, host: str) -> bool:
        """True when ``host`` may speak for ``osd``."""
        return host in self.names.get(osd, ())

    def host_of(self, osd: int) -> str:
        """The name to show for an OSD's host: its CRUSH host, else its metadata's."""
        names = self.names.get(osd, ())
        return names[-1] if names else ""

    def up_on(self, host: str) -> List[int]:
        """The up OSDs of a host, by id."""
        return sorted(o for o in self.owners.get(host, ()) if self.up.get(o, False))


EMPTY = ClusterView(up={}, names={}, owners={})


class Known(NamedTuple):
    """Per OSD, what its metadata said and when it last booted, to refetch only on a boot."""

    up_from: int
    hostname: Optional[str]  # None: not asked yet; "": asked, none (an OSD never booted)


def crush_hosts(tree: Any) -> Dict[int, str]:  # noqa: ANN401 - the mgr's "osd_map_tree"
    """OSD id -> the host bucket it sits in, from the mgr's ``osd_map_tree``."""
    hosts: Dict[int, str] = {}
    for node in (tree or {}).get("nodes", []):
        if node.get("type") == "host":
            for child in node.get("children", []):
                if isinstance(child, int) and child >= 0:
                    hosts[child] = str(node.get("name", ""))
    return hosts


def build_view(
    osd_map: Any,  # noqa: ANN401 - the mgr's "osd_map"
    crush: Dict[int, str],
    metadata: Callable[[int], Optional[Dict[str, Any]]],  # None: none (yet), ask again
    known: Dict[int, Known],
) -> Tuple[ClusterView, Dict[int, Known]]:
    """The view of this map; ``known`` says whose metadata need not be fetched again."""
    up: Dict[int, bool] = {}
    now_known: Dict[int, Known] = {}
    for entry in osd_map.get("osds", []):
        osd = int(entry["osd"])
        up[osd] = bool(entry.get("up"))
        up_from = int(entry.get("up_from", 0))
        before = known.get(osd)
        if before is not None and before.up_from == up_from and before.hostname is not None:
            now_known[osd] = before
        else:
            meta = metadata(osd)
            hostname = None if meta is None else str(meta.get("hostname", ""))
            now_known[osd] = Known(up_from, hostname)
    names: Dict[int, Names] = {}
    owners: Dict[str, Set[int]] = {}
    for osd in up:
        found = [n for n in (now_known[osd].hostname or "", crush.get(osd, "")) if n]
        names[osd] = tuple(dict.fromkeys(found))
        for name in names[osd]:
            owners.setdefault(name, set()).add(osd)
    view = ClusterView(
        up=up,
        names=names,
        owners={h: frozenset(o) for h, o in owners.items()},
        epoch=int(osd_map.get("epoch", 0)),
    )
    return view, now_known
