"""Export stage, exposition: the /metrics text, rendered at most once per published cycle.

Two costs made a scrape dearer than the probe cycle it reports on (bench/RESULTS.md): every
scraper (two Prometheus replicas, a federation, a curl) rendered the same snapshot again, and
prometheus_client's generic path builds a Sample tuple and a label dict per series, then
sorts and escapes every label of every series, about 8 µs a series. Here a family holds its
lines as text, an endpoint's label set is escaped once and shared by every family about that
endpoint, and the body (and its gzip form, made when a scraper first asks for it) is kept
for the snapshot it came from. Rendering is lazy, at the first scrape of a new snapshot: a
snapshot nobody scrapes (a 1 s cycle under a 15 s scrape interval) is never rendered.

The output is the Prometheus text format 0.0.4; tests parse it with prometheus_client's
parser and check it with promtool.
"""

from __future__ import annotations

import gzip
import threading
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from watchdog.model import Snapshot

Kind = Literal["gauge", "counter"]
K = TypeVar("K")
PREFIX = "osd_watchdog"
GZIP_LEVEL = 1  # level 6 is 2.7x the CPU for a body 15% smaller (bench/bench_scrape.py)


class Rendered(Protocol):
    """Anything whose exposition is ready as lines of text: a Family, the process families."""

    @property
    def lines(self) -> Sequence[str]:
        """The text of its families, HELP and TYPE included."""
        ...


_SPECIAL = {"inf": "+Inf", "-inf": "-Inf", "nan": "NaN"}
_COMMON: dict[float, str] = {0.0: "0.0", 1.0: "1.0"}  # most series: flags, empty queues


def number(value: float) -> str:
    """A sample value: Python's shortest round-trip form, which Prometheus parses exactly."""
    text = _COMMON.get(value)  # an int 0 or 1 finds its float twin
    if text is None:
        text = repr(float(value))
        text = _SPECIAL.get(text, text)
    return text


def escape(value: str) -> str:
    """A label value as the text format needs it."""
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


def label_set(names: Sequence[str], values: Sequence[str]) -> str:
    """``name="value",...``: escaped once, to be shared by every family it labels."""
    return ",".join(f'{n}="{escape(v)}"' for n, v in zip(names, values, strict=True))


class Kept(Generic[K]):
    """Text kept from one rendering to the next, by key; what a rendering did not use goes.

    Most of an exposition repeats itself cycle after cycle (an endpoint's label set, the
    seven lines of an OSD's state set while its state holds): made once, then looked up.
    """

    def __init__(self) -> None:
        self._last: dict[K, str] = {}
        self._now: dict[K, str] = {}

    def get(self, key: K, make: Callable[[K], str]) -> str:
        """The text for ``key``, made by ``make(key)`` the first time it is needed."""
        found = self._now.get(key)
        if found is None:
            found = self._last.get(key)
            if found is None:
                found = make(key)
            self._now[key] = found
        return found

    def rotate(self) -> None:
        """A rendering ended: forget what it did not use (an OSD that left, an old state)."""
        self._last, self._now = self._now, {}


class Family:
    """One metric family: its name, help, type and its series as text."""

    __slots__ = ("doc", "kind", "labelnames", "lines", "name")

    def __init__(
        self, name: str, doc: str, kind: Kind = "gauge", labels: Sequence[str] = ()
    ) -> None:
        # The text format names a counter's family and samples with the _total suffix.
        self.name = f"{name}_total" if kind == "counter" else name
        self.doc = doc
        self.kind = kind
        self.labelnames = tuple(labels)
        doc = doc.replace("\\", r"\\").replace("\n", r"\n")
        # Written as text when added: a series is formatted once, in one pass.
        self.lines = [f"# HELP {self.name} {doc}\n# TYPE {self.name} {kind}\n"]

    def add_metric(self, values: Sequence[str], value: float) -> None:
        """One series; ``values`` in the order of the family's label names."""
        self.add_labelled(label_set(self.labelnames, values), value)

    def add_labelled(self, labels: str, value: float) -> None:
        """One series whose label set (from ``label_set``, same names) is already escaped."""
        if labels:
            self.lines.append(f"{self.name}{{{labels}}} {number(value)}\n")
        else:
            self.lines.append(f"{self.name} {number(value)}\n")

    def line(self, labels: str, value: float) -> str:
        """One series as text, for a caller that keeps it (see ``Kept``)."""
        return f"{self.name}{{{labels}}} {number(value)}\n"

    def add_text(self, text: str) -> None:
        """Series already written as text by ``line``."""
        self.lines.append(text)


def render(families: Iterable[Rendered]) -> bytes:
    """The text exposition of every family, in order."""
    return "".join(line for family in families for line in family.lines).encode()


class Exposition:
    """Bytes for /metrics, kept per snapshot."""

    def __init__(
        self,
        families: Callable[[Snapshot | None], Iterable[Rendered]],
        latest: Callable[[], Snapshot | None],
    ) -> None:
        self.families = families
        self.latest = latest
        self.renders = 0  # how often it rendered, for tests and benchmarks
        self._lock = threading.Lock()  # concurrent scrapes of a new cycle render it once
        self._for: Snapshot | None = None
        self._plain = b""
        self._gzipped: bytes | None = None

    def body(self, *, gzipped: bool) -> bytes:
        """The exposition of the latest snapshot, rendered if it is new."""
        with self._lock:
            snapshot = self.latest()
            if snapshot is None or snapshot is not self._for:
                self._plain = render(self.families(snapshot))
                self._gzipped = None
                self._for = snapshot
                self.renders += 1
            if not gzipped:
                return self._plain
            if self._gzipped is None:
                self._gzipped = gzip.compress(self._plain, compresslevel=GZIP_LEVEL, mtime=0)
            return self._gzipped


def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Family:
    """A gauge family with the watchdog's prefix."""
    return Family(f"{PREFIX}_{name}", doc, "gauge", labels)


def counter(name: str, doc: str, labels: tuple[str, ...], counts: Mapping[Any, float]) -> Family:
    """A counter family with the watchdog's prefix, one sample per key (a label or a tuple)."""
    family = Family(f"{PREFIX}_{name}", doc, "counter", labels)
    for key, count in sorted(counts.items()):
        family.add_metric(list(key) if isinstance(key, tuple) else [key], count)
    return family


def add_optional(family: Family, labels: list[str], value: float | None) -> None:
    """One series, when there is a value: an unknown is left out, never exported as 0."""
    if value is not None:
        family.add_metric(labels, value)
