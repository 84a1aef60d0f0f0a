"""DICOM query matching (shared by /tools/find and the C-FIND SCP): exact, list, range, wildcard."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pydicom.datadict import dictionary_VR

from ..errors import ErrorCode, OrthancError

WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RANGE_VRS = frozenset({"DA", "DT", "TM"})


@lru_cache(maxsize=4096)
def normalize(value: str) -> str:
    """Case-insensitive form (used for both the index and matching): upper case, accents kept.

    This is what Orthanc 1.10.1 observably does: "test-é*" finds "Test-éüäöò", "TEST-E*" does not.
    """
    return value.upper()


def tag_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


def glob_match(pattern: str, text: str) -> bool:
    """DICOM wildcard matching (`*` any run, `?` one character) without backtracking: at worst
    len(pattern) x len(text) steps. A regular expression such as `.*A.*A.*A...B` takes exponential
    time on a long run of A (90 s for a 25-character query on a 40-character name)."""
    p = t = 0
    star, mark = -1, 0
    n, m = len(text), len(pattern)
    while t < n:
        if p < m and (pattern[p] == "?" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < m and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star >= 0:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < m and pattern[p] == "*":
        p += 1
    return p == m


def glob_for_sqlite(pattern: str) -> str:
    """A DICOM wildcard pattern as an SQLite GLOB pattern (`[` must be escaped)."""
    return pattern.replace("[", "[[]")


@dataclass(frozen=True)
class Constraint:
    """One tag constraint of a query, already parsed.

    kind: "equal", "list", "range" or "wildcard"; values are normalised when not case-sensitive.
    """

    tag: int
    kind: str
    value: str = ""
    values: tuple[str, ...] = ()
    low: str | None = None
    high: str | None = None
    case_sensitive: bool = False
    regex: re.Pattern[str] | None = None

    def matches(self, candidate: str | None) -> bool:
        if candidate is None:
            return False
        v = candidate if self.case_sensitive else normalize(candidate)
        kind = self.kind
        if kind == "equal":
            return v == self.value
        if kind == "list":
            return v in self.values
        if kind == "wildcard":
            return glob_match(self.value, v)
        if kind == "range":
            if self.low is not None and v < self.low:
                return False
            return not (self.high is not None and v > self.high)
        raise AssertionError(kind)

    def settled_by_index(self) -> bool:
        """Whether `index_operation` is this very test: case-insensitive, the index holds the
        normalised value that `matches` would compare, and both sides order strings by code point
        (SQLite's BINARY, PostgreSQL's "C" collation). A case-sensitive test is narrowed on the
        normalised value only, and PostgreSQL cannot hold NUL (its values are stored without)."""
        if self.case_sensitive or self.kind not in ("equal", "list", "wildcard", "range"):
            return False
        if type(self).matches is not Constraint.matches:  # a subclass matching otherwise (QIDO's fuzzy)
            return False
        operands = (self.value, *self.values, self.low or "", self.high or "")
        return not any("\x00" in v for v in operands)

    def index_operation(self) -> tuple[str, object] | None:
        """The narrowing usable on normalised index values (never excludes a true match)."""
        if self.kind == "equal":
            return ("eq", self.value if not self.case_sensitive else normalize(self.value))
        if self.kind == "list":
            values = self.values if not self.case_sensitive else tuple(normalize(v) for v in self.values)
            return ("in", list(values))
        if self.kind == "wildcard":
            pattern = self.value if not self.case_sensitive else normalize(self.value)
            return ("glob", glob_for_sqlite(pattern))
        if self.kind == "range":
            low = self.low if not self.case_sensitive or self.low is None else normalize(self.low)
            high = self.high if not self.case_sensitive or self.high is None else normalize(self.high)
            return ("range", (low, high))
        return None


def parse_constraint(tag: int, value: str, case_sensitive: bool, vr: str | None = None) -> Constraint | None:
    """Orthanc's reading of one query value; None for an empty value (no constraint).

    A lone `*` is a wildcard like any other: the tag must be present (and of a wildcard VR).
    """
    if value == "":
        return None
    vr = vr or tag_vr(tag)
    norm = (lambda s: s) if case_sensitive else normalize
    if vr in RANGE_VRS and "-" in value:
        low, _, high = value.partition("-")
        return Constraint(tag, "range", low=norm(low) if low else None, high=norm(high) if high else None,
                          case_sensitive=case_sensitive)
    if "\\" in value:
        items = tuple(norm(v) for v in value.split("\\"))
        return Constraint(tag, "list", values=items, case_sensitive=case_sensitive)
    if "*" in value or "?" in value:
        if vr not in WILDCARD_VRS:
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE,
                               f"Wildcards are not allowed on tag {tag >> 16:04x},{tag & 0xFFFF:04x}")
        pattern = norm(value)
        return Constraint(tag, "wildcard", value=pattern, case_sensitive=case_sensitive)
    return Constraint(tag, "equal", value=norm(value), case_sensitive=case_sensitive)
