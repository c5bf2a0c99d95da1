"""The config validator: each kind of annotation accepts what it should, names what it rejects."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import pytest

from watchdog.config import parse_config
from watchdog.errors import ConfigError, Invalid
from watchdog.model import Role
from watchdog.schema import Bound, Check, build


def _even(value: int) -> None:
    if value % 2:
        raise ValueError(f"{value} is odd")


@dataclass(frozen=True, kw_only=True)
class Inner:
    name: str
    size: Annotated[int, Bound(ge=0, le=10)] = 1


@dataclass(frozen=True, kw_only=True)
class Outer:
    flag: bool = False
    count: Annotated[int, Check(_even)] = 2
    ratio: Annotated[float, Bound(gt=0, le=1)] = 0.5
    path: Path | None = None
    mode: Literal["a", "b"] = "a"
    role: Role = Role.PUBLIC
    inners: list[Inner] = field(default_factory=list)
    low: int = 0
    high: int = 1

    def check(self) -> None:
        if self.low > self.high:
            raise ValueError("low must not be above high")


def problems_of(data: object) -> list[str]:
    with pytest.raises(Invalid) as caught:
        build(Outer, data)
    return caught.value.problems


def test_valid_data_builds_typed_values():
    built = build(Outer, {"flag": True, "ratio": 1, "path": "/x", "role": "hb_back"})
    assert built == Outer(flag=True, ratio=1.0, path=Path("/x"), role=Role.HB_BACK)
    assert isinstance(built.ratio, float)
    assert build(Outer, {}) == Outer()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"flag": 1}, "flag: expected true or false, got an integer 1"),
        ({"count": True}, "count: expected an integer, got a boolean True"),
        ({"count": 2.0}, "count: expected an integer, got a number 2.0"),
        ({"count": 3}, "count: 3 is odd"),
        ({"ratio": "0.5"}, "ratio: expected a number, got a string '0.5'"),
        ({"ratio": math.nan}, "ratio: must be a finite number, got nan"),
        ({"ratio": math.inf}, "ratio: must be a finite number, got inf"),
        ({"ratio": 0}, "ratio: must be greater than 0, got 0.0"),
        ({"path": ""}, "path: expected a path, got an empty string"),
        ({"path": ["/x"]}, "path: expected a path, got a list"),
        ({"mode": "c"}, "mode: must be one of 'a' or 'b', got a string 'c'"),
        (
            {"role": 3},
            (
                "role: must be one of 'public', 'cluster', 'hb_front', 'hb_back' or 'unknown', "
                "got an integer 3"
            ),
        ),
        ({"inners": {"name": "x"}}, "inners: expected a list, got a table"),
        ({"inners": [{}]}, "inners[0].name: missing (required)"),
        ({"inners": [{"name": "x", "size": 11}]}, "inners[0].size: must be at most 10, got 11"),
        ({"inners": ["x"]}, "inners[0]: expected a table, got a string 'x'"),
        ({"flg": True}, "flg: unknown key (did you mean flag?)"),
        ({"zzz": True}, "zzz: unknown key"),
        ({"low": 2}, "(top level): low must not be above high"),
    ],
)
def test_each_kind_of_fault_is_named_with_its_path(data, problem):
    assert problems_of(data) == [problem]


def test_literal_true_is_not_the_integer_one():
    @dataclass(frozen=True, kw_only=True)
    class One:
        value: Literal[1] = 1

    assert build(One, {"value": 1}).value == 1
    with pytest.raises(Invalid):
        build(One, {"value": True})


def test_every_fault_is_reported_at_once_and_cross_checks_wait_for_valid_fields():
    problems = problems_of({"flag": "yes", "low": 5, "high": "x", "extra": 1})
    # The low/high rule is not run while high is itself invalid: one fault, not two.
    assert problems == [
        "flag: expected true or false, got a string 'yes'",
        "high: expected an integer, got a string 'x'",
        "extra: unknown key",
    ]


def test_long_values_are_shortened_in_messages():
    (problem,) = problems_of({"mode": "x" * 500})
    assert len(problem) < 120
    assert problem.endswith("...")


def test_a_table_where_a_section_belongs_is_required():
    assert problems_of(["flag"]) == ["(top level): expected a table, got a list"]


def test_an_unsupported_annotation_is_a_bug_not_a_config_error():
    @dataclass(frozen=True, kw_only=True)
    class Odd:
        value: bytes = b""

    with pytest.raises(TypeError, match="does not support"):
        build(Odd, {"value": "x"})


def test_a_static_target_without_a_name_names_the_missing_key():
    data = {"discovery": {"static_targets": [{"endpoints": [{"address": "127.0.0.1:6800"}]}]}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.problems == ["discovery.static_targets[0].daemon: missing (required)"]
