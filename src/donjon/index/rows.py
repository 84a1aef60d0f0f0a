"""Pure-Python pieces shared by the SQLite and PostgreSQL queries (`sqlite_queries.py`, `postgres_queries.py`).

Only what does not depend on the back-end lives here: the mapping of result rows, and the parts of
generated SQL that hold no placeholder (or take the back-end's one as an argument), so that both
indexes answer alike while each keeps its own SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..registry import ContentType, Level
from .protocol import ResourceRow, ViewExtras

EXPORT_KEYS = ("seq", "level", "public_id", "remote_modality", "date", "patient_id", "study_uid",
               "series_uid", "sop_uid")


def export_dicts(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of `exports` (columns in `EXPORT_KEYS` order) as dicts."""
    return [dict(zip(EXPORT_KEYS, r, strict=True)) for r in rows]


def size_totals(rows: Iterable[tuple[int, Any, Any]]) -> tuple[int, int, int, int]:
    """(disk, uncompressed, dicom disk, dicom uncompressed) from (type, compressed sum, uncompressed sum) rows.

    The sums are converted with `int` (PostgreSQL's `sum` of bigint is numeric).
    """
    disk = unc = ddisk = dunc = 0
    for t, c, u in rows:
        disk += int(c)
        unc += int(u)
        if t == 1:
            ddisk += int(c)
            dunc += int(u)
    return disk, unc, ddisk, dunc


def constraint_ids(level: int, filter_level: int, cond: str, placeholder: str) -> str:
    """`find_candidates`' id set of one indexed constraint: the resources of `filter_level` whose
    identifier `i.tag = <placeholder>` satisfies `cond`, brought down to `level` through the parent
    index, so that the database can start from the selective side."""
    ids = f"SELECT i.resource_id FROM identifiers i WHERE i.tag = {placeholder} AND {cond}"
    for depth in range(level - filter_level):  # down to the children, one level at a time
        ids = f"SELECT c{depth}.id FROM resources c{depth} WHERE c{depth}.parent_id IN ({ids})"
    return ids


def range_bounds(low: str | None, high: str | None, placeholder: str) -> tuple[str, list[str]]:
    """The `i.norm` bounds of a range constraint ('' when open at both ends) and their parameters."""
    cond: list[str] = []
    values: list[str] = []
    if low is not None:
        cond.append(f"i.norm >= {placeholder}")
        values.append(low)
    if high is not None:
        cond.append(f"i.norm <= {placeholder}")
        values.append(high)
    return " AND ".join(cond), values


def gather_view_extras(reader: Any, rows: Sequence[ResourceRow], md_types: Sequence[int]) -> ViewExtras:
    """`view_extras` through the reader's bulk queries (a few statements, whatever the number of rows);
    rows are of one level."""
    if not rows:
        return ViewExtras({}, {}, {}, {}, {}, {})
    ids = [r.id for r in rows]
    level = rows[0].level
    return ViewExtras(
        parent_public=reader.public_ids((r.parent_id for r in rows if r.parent_id is not None), level - 1)
        if level != Level.PATIENT else {},
        children=reader.children(ids) if level != Level.INSTANCE else {},
        metadata=reader.metadata_bulk(ids, md_types),
        labels=reader.labels_bulk(ids),
        files=reader.attachments_bulk(ids, ContentType.DICOM) if level == Level.INSTANCE else {},
        protected=reader.protected_bulk(ids) if level == Level.PATIENT else {},
    )
