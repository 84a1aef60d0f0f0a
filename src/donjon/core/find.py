"""Finding resources by DICOM tags (`/tools/find`; the C-FIND SCP will use the same engine).

Constraints on indexed identifier tags narrow the candidates in SQL. Where the SQL test is exactly the
Python matcher's (a case-insensitive exact, list, wildcard or range test: both compare the same
normalised string, in code-point order), the index settles the constraint; every other constraint is
checked in Python on the stored main tags (one matcher, one semantics); tags that are not main tags
are read from one instance file of each remaining candidate.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson
from pydicom.filereader import dcmread

from ..dicom.main_tags import MAIN_TAGS, format_tag
from ..dicom.values import dataset_encodings, raw_to_string
from ..errors import ErrorCode, OrthancError
from ..index.identifiers import on_study
from ..index.protocol import ResourceRow
from ..registry import ContentType, Level
from .attachments import read_attachment, read_range
from .matching import Constraint, parse_constraint
from .store import INDEXED_TAGS

if TYPE_CHECKING:
    from ..index.sqlite import SQLiteReader
    from .context import ServerContext

MODALITIES_IN_STUDY = 0x00080061
MODALITY = 0x00080060
_TAG_LEVEL: dict[int, Level] = {}
for _lvl in (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT):
    for _t, _ in MAIN_TAGS[_lvl]:
        _TAG_LEVEL[_t] = _lvl  # the highest level wins (ImageOrientationPatient -> series)


@dataclass
class FindQuery:
    level: Level
    constraints: list[Constraint] = field(default_factory=list)
    since: int = 0
    limit: int = 0
    labels: list[str] = field(default_factory=list)
    labels_constraint: str = "All"


def build_query(level: Level, query: dict[int, str], case_sensitive: bool) -> FindQuery:
    constraints = []
    for tag, value in query.items():
        c = parse_constraint(tag, value, case_sensitive)
        if c is not None:
            constraints.append(c)
    return FindQuery(level, constraints)


_BELOW = Level.INSTANCE + 1  # marker: a main tag of a level below the query level


def _level_of(tag: int, query_level: Level) -> int | None:
    """Level whose main tags hold `tag`; None if it must be read from files; `_BELOW` if it is a main
    tag of a lower level (Orthanc then matches nothing)."""
    lvl = _TAG_LEVEL.get(tag)
    if lvl is None:
        return None
    if tag == 0x00200037 and query_level == Level.INSTANCE:
        return Level.INSTANCE
    return lvl if lvl <= query_level else _BELOW


def reads_beyond_rows(q: FindQuery) -> bool:
    """Whether `find` may read more than the index rows of the candidates and their ancestors: stored
    files (tags that are not main tags), or the series of each study (ModalitiesInStudy)."""
    return any(_level_of(c.tag, q.level) is None or (c.tag == MODALITIES_IN_STUDY and q.level == Level.STUDY)
               for c in q.constraints)


def find(ctx: ServerContext, tx: SQLiteReader, q: FindQuery, rows_seen: dict[int, ResourceRow] | None = None,
         public_seen: dict[int, str] | None = None) -> list[int]:
    """Internal ids of the matching resources at `q.level`, in creation order, after since/limit.
    The rows read to match tags are added to `rows_seen`, and the public ids of the candidates found
    in SQL to `public_seen`: the answer needs them again (one query less, a round trip with
    PostgreSQL)."""
    level = q.level
    indexed: list[tuple[int, int, str, object]] = []
    by_level: dict[Level, list[Constraint]] = {}
    special: list[Constraint] = []
    from_files: list[Constraint] = []
    for c in q.constraints:
        if c.tag == MODALITIES_IN_STUDY and level == Level.STUDY:
            special.append(c)
            continue
        found = _level_of(c.tag, level)
        if found is None:
            from_files.append(c)
            continue
        if found == _BELOW:
            return []
        lvl = Level(found)
        indexed_tag = c.tag if c.tag in INDEXED_TAGS[lvl] else None
        if lvl == Level.PATIENT and level != Level.PATIENT:
            # as Orthanc: against the patient tags the study was stored with (index/identifiers.py)
            lvl = Level.STUDY
            indexed_tag = on_study(indexed_tag) if indexed_tag is not None else None
        if indexed_tag is not None:
            op = c.index_operation()
            if op is not None:
                indexed.append((int(lvl), indexed_tag, op[0], op[1]))
                if c.settled_by_index():
                    continue
        by_level.setdefault(lvl, []).append(c)

    candidates = tx.find_candidates(level, indexed, public_seen)
    if candidates is None:
        candidates = tx.ids_of_level(level)
    if q.labels:
        candidates = _filter_labels(tx, candidates, q.labels, q.labels_constraint)

    need_python = bool(by_level) or bool(special) or bool(from_files)
    cap = q.since + q.limit if q.limit else 0
    if not need_python:
        return candidates[q.since:cap or None]

    result: list[int] = []
    for chunk_start in range(0, len(candidates), 1000):
        chunk = candidates[chunk_start:chunk_start + 1000]
        rows = {r.id: r for r in tx.resources(chunk)}
        if rows_seen is not None:
            rows_seen.update(rows)
        # ancestors' tags, level by level
        ancestors: dict[Level, dict[int, int]] = {}
        tags_of: dict[tuple[Level, int], dict[str, str]] = {}
        current = {rid: rid for rid in chunk}
        current_rows = rows
        for lvl in range(level, 0, -1):
            lv = Level(lvl)
            ancestors[lv] = current
            for rid, row in current_rows.items():
                tags = orjson.loads(row.tags) if row.tags else {}
                if lv == Level.STUDY and row.patient_tags:  # the patient tags it was stored with
                    tags = {**orjson.loads(row.patient_tags), **tags}
                tags_of[(lv, rid)] = tags
            if lvl == 1 or not any(x < lv for x in by_level):
                break
            parent_ids = {row.id: row.parent_id for row in current_rows.values() if row.parent_id is not None}
            parents = {r.id: r for r in tx.resources(list(set(parent_ids.values())))}
            current = {cand: parent_ids[anc] for cand, anc in current.items() if anc in parent_ids}
            current_rows = parents
        for rid in chunk:
            if rid not in rows:
                continue
            ok = True
            for lv, cs in by_level.items():
                anc = ancestors.get(lv, {}).get(rid)
                tags = tags_of.get((lv, anc), {}) if anc is not None else {}
                for c in cs:
                    if not c.matches(tags.get(format_tag(c.tag))):
                        ok = False
                        break
                if not ok:
                    break
            if ok and special:
                ok = _match_modalities(tx, rid, special)
            if ok and from_files:
                ok = _match_from_file(ctx, tx, rid, level, from_files)
            if ok:
                result.append(rid)
                if cap and len(result) >= cap:
                    return result[q.since:cap]
    return result[q.since:cap or None]


def _filter_labels(tx: SQLiteReader, candidates: list[int], labels: list[str], mode: str) -> list[int]:
    have = tx.labels_bulk(candidates)
    wanted = set(labels)
    out = []
    for rid in candidates:
        mine = set(have.get(rid, []))
        if (mode == "All" and wanted <= mine) or (mode == "Any" and wanted & mine) or \
                (mode == "None" and not wanted & mine):
            out.append(rid)
    return out


def _match_modalities(tx: SQLiteReader, study_id: int, constraints: Sequence[Constraint]) -> bool:
    series = [sid for sid, _ in tx.children([study_id])[study_id]]
    modalities = [orjson.loads(r.tags).get(format_tag(MODALITY)) for r in tx.resources(series) if r.tags]
    return all(any(c.matches(m) for m in modalities if m is not None) for c in constraints)


def _match_from_file(ctx: ServerContext, tx: SQLiteReader, rid: int, level: Level,
                     constraints: Sequence[Constraint]) -> bool:
    if ctx.config["StorageAccessOnFind"] == "Never":
        return False
    instances = tx.descendants(rid, Level.INSTANCE)
    if not instances:
        return False
    values = instance_header_values(ctx, tx, instances[0], [c.tag for c in constraints])
    return all(c.matches(values.get(c.tag)) for c in constraints)


def instance_header_values(ctx: ServerContext, tx: SQLiteReader, instance_id: int, tags: Sequence[int]
                           ) -> dict[int, str]:
    """String values of top-level tags read from the stored file (up to the pixel data)."""
    data = read_header(ctx, tx, instance_id)
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    charset = ds._dict.get(0x00080005)
    encodings = dataset_encodings(getattr(charset, "value", None) if charset is not None else None,
                                  ctx.default_encoding)
    little = bool(ds.original_encoding[1]) if ds.original_encoding[1] is not None else True
    out: dict[int, str] = {}
    for tag in tags:
        elem = ds._dict.get(tag)
        if elem is not None and isinstance(getattr(elem, "value", None), bytes | bytearray | None):
            v = raw_to_string(elem, encodings, little)
            if v is not None:
                out[tag] = v
    return out


def read_header(ctx: ServerContext, tx: SQLiteReader, instance_id: int) -> bytes:
    """The DICOM bytes up to the pixel data, reading as little of the storage as possible."""
    from ..registry import Metadata

    header = tx.attachment(instance_id, ContentType.DICOM_UNTIL_PIXEL_DATA)
    if header is not None:
        return read_attachment(ctx.storage, header)
    info = tx.attachment(instance_id, ContentType.DICOM)
    if info is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    md = tx.metadata(instance_id)
    offset = md.get(Metadata.PIXEL_DATA_OFFSET)
    if offset is not None:
        try:
            return read_range(ctx.storage, info, 0, int(offset[0]))
        except (ValueError, OrthancError):
            pass
    return read_attachment(ctx.storage, info)
