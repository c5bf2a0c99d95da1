"""Build frozen dataclasses from parsed TOML, checking every value against its type hint.

The config sections declare what they accept with ordinary annotations: ``bool``, ``int``,
``float``, ``str``, ``Path``, a ``StrEnum``, ``Literal[...]``, ``list[...]``, ``X | None``,
a nested section, and ``Annotated[..., Bound(...)]`` or ``Annotated[..., Check(...)]`` for
limits. A section may define ``check(self)``, raising ValueError, for rules that span fields;
it runs only when every field of the section is valid. Every problem is collected, each
with its dotted path, so an operator fixes a file in one pass.

Why not pydantic: for ten flat sections it cost the long-running daemon about 10 MiB, a
quarter of its resident memory (bench/RESULTS.md, section 1).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from watchdog.errors import Invalid

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

T = TypeVar("T")

_BAD = object()  # a value that failed; its problem is already recorded


@dataclass(frozen=True)
class Bound:
    """Numeric limits, or a minimum length for a list."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    min_items: int | None = None

    def fault(self, value: Any) -> str | None:  # noqa: ANN401 - any checked value
        """What is wrong with ``value``, or None."""
        if self.min_items is not None and len(value) < self.min_items:
            noun = "item" if self.min_items == 1 else "items"
            return f"needs at least {self.min_items} {noun}, got {len(value)}"
        if self.gt is not None and not value > self.gt:
            return f"must be greater than {self.gt:g}, got {value!r}"
        if self.ge is not None and not value >= self.ge:
            return f"must be at least {self.ge:g}, got {value!r}"
        if self.le is not None and not value <= self.le:
            return f"must be at most {self.le:g}, got {value!r}"
        return None


@dataclass(frozen=True)
class Check:
    """A function that raises ValueError (with the reason) when the value is wrong."""

    func: Callable[[Any], object]

    def fault(self, value: Any) -> str | None:  # noqa: ANN401 - any checked value
        """What is wrong with ``value``, or None."""
        try:
            self.func(value)
        except ValueError as exc:
            return str(exc)
        return None


def build(cls: type[T], data: object) -> T:
    """An instance of the dataclass ``cls`` from ``data``; raises Invalid listing every fault."""
    problems: list[str] = []
    result = _section(cls, data, "", problems)
    if problems or result is _BAD:
        raise Invalid(problems)
    return typing.cast("T", result)


_SCALAR_KINDS = (bool, int, float, str)
_KINDS: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a table",
}


def _where(path: str) -> str:
    return path or "(top level)"


def _kind(value: object) -> str:
    """How a value reads in a message, in TOML's terms (scalars with their value)."""
    name = _KINDS.get(type(value), type(value).__name__)
    if type(value) not in _SCALAR_KINDS:
        return name
    shown = repr(value)
    return f"{name} {shown if len(shown) <= 40 else shown[:37] + '...'}"


@functools.cache
def _fields(cls: type) -> dict[str, tuple[Any, bool]]:
    """Each init field of a section: its annotation (with Annotated extras), and if required."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {
        f.name: (
            hints[f.name],
            f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
        )
        for f in dataclasses.fields(cls)
        if f.init
    }


def _section(cls: type, data: object, path: str, problems: list[str]) -> object:
    if not isinstance(data, dict):
        problems.append(f"{_where(path)}: expected a table, got {_kind(data)}")
        return _BAD
    fields = _fields(cls)
    before = len(problems)
    values = {}
    for name, (hint, required) in fields.items():
        where = f"{path}.{name}" if path else name
        if name in data:
            values[name] = _value(hint, data[name], where, problems)
        elif required:
            problems.append(f"{where}: missing (required)")
    problems.extend(
        f"{f'{path}.{key}' if path else key}: unknown key{_hint(key, fields)}"
        for key in data
        if key not in fields
    )
    if len(problems) > before:
        return _BAD
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            problems.append(f"{_where(path)}: {exc}")
            return _BAD
    return instance


def _hint(key: object, fields: Iterable[str]) -> str:
    """A likely intended key, for a typo."""
    close = difflib.get_close_matches(str(key), list(fields), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _value(hint: Any, value: object, path: str, problems: list[str]) -> object:  # noqa: ANN401, C901, PLR0911, PLR0912 - one branch per kind of type
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        base, *rules = typing.get_args(hint)
        result = _value(base, value, path, problems)
        if result is not _BAD:
            for rule in rules:
                fault = rule.fault(result)
                if fault is not None:
                    problems.append(f"{path}: {fault}")
                    return _BAD
        return result
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # only `X | None` is supported
        return _value(inner, value, path, problems)
    if origin is Literal:
        choices = typing.get_args(hint)
        if any(type(value) is type(c) and value == c for c in choices):
            return value
        problems.append(f"{path}: must be {_one_of(choices)}, got {_kind(value)}")
        return _BAD
    if origin is list:
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {_kind(value)}")
            return _BAD
        (item,) = typing.get_args(hint)
        items = [_value(item, v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in items) else items
    if dataclasses.is_dataclass(hint):
        return _section(typing.cast("type", hint), value, path, problems)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = tuple(m.value for m in hint)
        if isinstance(value, str) and value in choices:
            return hint(value)
        problems.append(f"{path}: must be {_one_of(choices)}, got {_kind(value)}")
        return _BAD
    return _scalar(hint, value, path, problems)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# What each scalar annotation accepts from TOML, and how a rejection names it.
_SCALARS: dict[object, tuple[str, Callable[[object], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", _is_number),
    str: ("a string", lambda v: isinstance(v, str)),
    Path: ("a path", lambda v: isinstance(v, str) and v != ""),
}


def _scalar(hint: Any, value: Any, path: str, problems: list[str]) -> object:  # noqa: ANN401 - a type, a TOML value
    if hint not in _SCALARS:
        raise TypeError(f"{path}: schema does not support {hint!r}")  # a bug in a section
    wanted, fits = _SCALARS[hint]
    if not fits(value):
        got = "an empty string" if value == "" else _kind(value)
        problems.append(f"{path}: expected {wanted}, got {got}")
        return _BAD
    if hint is float and not math.isfinite(value):
        problems.append(f"{path}: must be a finite number, got {value!r}")
        return _BAD
    return hint(value) if hint in (float, Path) else value


def _one_of(choices: tuple[Any, ...]) -> str:
    shown = [repr(c) for c in choices]
    if len(shown) == 1:
        return shown[0]
    return "one of " + ", ".join(shown[:-1]) + f" or {shown[-1]}"
