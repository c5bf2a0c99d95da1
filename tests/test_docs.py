"""The docs name tests as evidence: every test they name exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMED = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def named_tests(doc: Path) -> list[tuple[str, str]]:
    return NAMED.findall(doc.read_text())


@pytest.mark.parametrize("doc", ["docs/fault-matrix.md"])
def test_every_test_a_doc_names_exists(doc):
    named = named_tests(ROOT / doc)
    assert len(named) >= 30  # the matrix has not been emptied
    missing = [
        f"{path}::{name}"
        for path, name in named
        if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert missing == []
