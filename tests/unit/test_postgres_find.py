"""The range that replaces a `prefix*` pattern holds exactly the strings the pattern matches."""

from __future__ import annotations

import itertools

import pytest

from donjon.core.matching import glob_for_sqlite, glob_match
from donjon.index.postgres_find import candidates_query, prefix_bounds

ALPHABET = ["A", "B", "Z", "[", "\\", "%", "_", "é", "ê", "\uffff", "\U0010ffff", "\ud7ff", " "]
STRINGS = ["".join(p) for n in range(4) for p in itertools.product(ALPHABET[:6], repeat=n)] + \
          ["É", "Ê", "é^X", "ê", "\ud7ffA", "\ue000", "\U0010ffff", "L[X]", "L\\"]


@pytest.mark.parametrize("prefix", ["A", "AB", "[", "L[", "\\", "%", "_", "é", "É", "Z\uffff"])
def test_prefix_range_is_the_pattern(prefix: str) -> None:
    pattern = prefix + "*"
    bounds = prefix_bounds(glob_for_sqlite(pattern))
    assert bounds is not None
    low, high = bounds
    for s in STRINGS:
        # byte order of UTF-8 is code-point order: what PostgreSQL's "C" collation compares
        in_range = low.encode("utf-8", "surrogatepass") <= s.encode("utf-8", "surrogatepass") < \
            high.encode("utf-8", "surrogatepass")
        assert in_range == glob_match(pattern, s), (prefix, s)


@pytest.mark.parametrize("pattern", ["*A", "A?*", "A*B*", "A**", "*", "A", "\U0010ffff*", "\ud7ff*", "?"])
def test_other_patterns_stay_like(pattern: str) -> None:
    assert prefix_bounds(glob_for_sqlite(pattern)) is None
    query, params = candidates_query(2, [(2, 0x00100010, "glob", glob_for_sqlite(pattern))])
    assert "LIKE" in query and len(params) == 3


def test_a_prefix_is_sent_as_a_range() -> None:
    query, params = candidates_query(2, [(1, 0x00100010, "glob", "DOE*")])
    assert "LIKE" not in query and "i.norm >= %s AND i.norm < %s" in query
    assert params == [2, 0x00100010, "DOE", "DOF"]
