"""C-FIND and C-MOVE/C-GET lookups: Orthanc's DICOM query semantics over the `/tools/find` engine.

A C-FIND identifier becomes constraints for `core.find` (case-sensitive except PN, which follows
`CaseSensitivePN`); each match becomes an answer holding every requested tag, with values from the
main tags of the resource and its ancestors, or from one instance file when some requested tag is
not a main tag (Orthanc's "DICOM-as-JSON needed" rule), plus the computed counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ..dicom.json_tags import dicom_to_json, read_dicom
from ..dicom.main_tags import IDENTIFIER_TAG, MAIN_TAG_NAMES, format_tag
from ..dicom.values import dataset_encodings, element_vr, raw_to_string
from ..errors import ErrorCode, OrthancError
from ..registry import Level, Metadata, parse_level
from .find import FindQuery, find, read_header
from .matching import Constraint, normalize, parse_constraint

if TYPE_CHECKING:
    from ..index.sqlite import SQLiteReader
    from .context import ServerContext

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
RETRIEVE_AE_TITLE = 0x00080054
TIMEZONE_OFFSET = 0x00080201
ACCESSION_NUMBER = 0x00080050
MODALITY = 0x00080060
MODALITIES_IN_STUDY = 0x00080061
SOP_CLASSES_IN_STUDY = 0x00080062
PATIENT_STUDIES, PATIENT_SERIES, PATIENT_INSTANCES = 0x00201200, 0x00201202, 0x00201204
STUDY_SERIES, STUDY_INSTANCES, SERIES_INSTANCES = 0x00201206, 0x00201208, 0x00201209
COUNTERS: dict[Level, frozenset[int]] = {
    Level.PATIENT: frozenset({PATIENT_STUDIES, PATIENT_SERIES, PATIENT_INSTANCES}),
    Level.STUDY: frozenset({STUDY_SERIES, STUDY_INSTANCES, MODALITIES_IN_STUDY, SOP_CLASSES_IN_STUDY}),
    Level.SERIES: frozenset({SERIES_INSTANCES}),
    Level.INSTANCE: frozenset(),
}
_ALL_COUNTERS = frozenset().union(*COUNTERS.values())
_NOT_CONSTRAINTS = frozenset({QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET, TIMEZONE_OFFSET})
_VITREA_CREATOR = 0x56530010


@dataclass
class QueryElement:
    tag: int
    vr: str
    value: str | None  # None: a binary value (never a constraint)


@dataclass
class DicomQuery:
    """A C-FIND identifier as Orthanc reads it (groups < 0008 and group lengths dropped)."""

    level_text: str
    level: Level
    elements: list[QueryElement] = field(default_factory=list)
    sequences: list[int] = field(default_factory=list)  # sequences to copy from the files, never filters


@dataclass
class FindAnswer:
    values: dict[int, str]  # every requested tag -> its value ("" if unknown)
    sequences: dict[int, Any] = field(default_factory=dict)  # tag -> pydicom DataElement from a file


def read_identifier(ds: Dataset, default_codec: str) -> DicomQuery:
    """The query of a C-FIND/C-GET identifier (decoded with its SpecificCharacterSet)."""
    charset = ds._dict.get(SPECIFIC_CHARACTER_SET)
    raw_charset = getattr(charset, "value", None) if charset is not None else None
    encodings = dataset_encodings(raw_charset, default_codec)
    little = ds.original_encoding[1] is not False
    elements: list[QueryElement] = []
    sequences: list[int] = []
    level_text: str | None = None
    for tag in sorted(ds._dict):
        raw = ds._dict[tag]
        tag = int(tag)
        if tag >> 16 < 0x0008 or tag & 0xFFFF == 0:
            continue
        vr = element_vr(raw)
        if vr == "SQ" or isinstance(getattr(raw, "value", None), list):
            sequences.append(tag)
            continue
        value = element_string(raw, encodings, little)
        if tag == QUERY_RETRIEVE_LEVEL:
            level_text = value
        elements.append(QueryElement(tag, vr, value))
    if not level_text:
        raise OrthancError(ErrorCode.BAD_REQUEST, "C-FIND request without the tag 0008,0052 (QueryRetrieveLevel)")
    return DicomQuery(level_text, parse_level(level_text), elements, sequences)


def build_constraints(q: DicomQuery, case_sensitive_pn: bool, manufacturer: str = "Generic") -> list[Constraint]:
    """DICOM matching: case-sensitive, except PN (`CaseSensitivePN`); empty values match anything."""
    out = []
    for e in q.elements:
        if e.tag in _NOT_CONSTRAINTS or not e.value:
            continue
        if manufacturer == "Vitrea" and e.tag == _VITREA_CREATOR:
            continue
        sensitive = case_sensitive_pn if e.vr == "PN" else True
        c = parse_constraint(e.tag, e.value, sensitive)
        if c is not None:
            out.append(c)
    return out


def _needs_files(q: DicomQuery) -> bool:
    """Orthanc's IsDicomAsJsonNeeded(): sequences, or a requested tag that is no main tag of any level."""
    if q.sequences:
        return True
    for e in q.elements:
        if e.tag in _ALL_COUNTERS or e.tag in (SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL):
            continue
        if e.tag not in MAIN_TAG_NAMES:
            return True
    return False


def run_find(ctx: ServerContext, q: DicomQuery, retrieve_aet: str, case_sensitive_pn: bool, limit: int,
             manufacturer: str = "Generic") -> tuple[list[FindAnswer], bool]:
    """The answers of a C-FIND, and whether they are complete (False when cut by `limit`)."""
    constraints = build_constraints(q, case_sensitive_pn, manufacturer)
    fq = FindQuery(q.level, constraints)
    fq.limit = limit + 1 if limit else 0
    from_files = _needs_files(q) and ctx.config["StorageAccessOnFind"] != "Never"

    def run(tx: SQLiteReader) -> tuple[list[FindAnswer], bool]:
        ids = find(ctx, tx, fq)
        complete = not limit or len(ids) <= limit
        if limit:
            ids = ids[:limit]
        answers: list[FindAnswer] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            values = _file_values(ctx, tx, chunk, q) if from_files else _main_tag_values(tx, chunk, q)
            counters = _counters(tx, chunk, q)
            for rid in chunk:
                answers.append(_answer(q, retrieve_aet, *values.get(rid, ({}, {})), counters.get(rid, {})))
        return answers, complete
    return ctx.index.read(run)


def _answer(q: DicomQuery, retrieve_aet: str, match: dict[int, str], sequences: dict[int, Any],
            counters: dict[int, str]) -> FindAnswer:
    values: dict[int, str] = {RETRIEVE_AE_TITLE: retrieve_aet}
    for e in q.elements:
        if e.tag == QUERY_RETRIEVE_LEVEL:
            values[e.tag] = e.value or ""
        elif e.tag != SPECIFIC_CHARACTER_SET:
            values[e.tag] = match.get(e.tag, "")
    values.update(counters)
    return FindAnswer(values, sequences)


def _main_tag_values(tx: SQLiteReader, ids: list[int], q: DicomQuery
                     ) -> dict[int, tuple[dict[int, str], dict]]:
    """The asked main tags of each resource, from it or its ancestors (below the patient level, the
    patient tags are the study's copy, taken from its first instance, as in Orthanc). Only the keys of
    the query are looked up in the stored JSON: an answer costs the same whatever the main tags hold."""
    wanted = [(e.tag, format_tag(e.tag)) for e in q.elements]
    merged: dict[int, dict[int, str]] = {rid: {} for rid in ids}
    current = {rid: rid for rid in ids}
    lvl: Level | None = q.level
    while lvl is not None and current:
        rows = {r.id: r for r in tx.resources(list(set(current.values())))}
        parsed: dict[int, list[dict[str, str]]] = {}  # an ancestor shared by many answers is read once
        parents: dict[int, int] = {}
        for rid, anc in current.items():
            row = rows.get(anc)
            if row is None:
                continue
            blobs = parsed.get(anc)
            if blobs is None:  # a study keeps its own copy of the patient tags
                blobs = parsed[anc] = [orjson.loads(b) for b in (row.tags, row.patient_tags) if b]
            target = merged[rid]
            for tags in blobs:
                for tag, key in wanted:
                    if tag not in target:
                        value = tags.get(key)
                        if value is not None:
                            target[tag] = value
            if row.parent_id is not None:
                parents[rid] = row.parent_id
        current = parents
        lvl = lvl.parent
    return {rid: (tags, {}) for rid, tags in merged.items()}


def _file_values(ctx: ServerContext, tx: SQLiteReader, ids: list[int], q: DicomQuery
                 ) -> dict[int, tuple[dict[int, str], dict[int, Any]]]:
    """String values (and requested sequences) of one instance of each resource, as Orthanc's
    DICOM-as-JSON gives them: `TooLong`, binary and null values are empty."""
    out: dict[int, tuple[dict[int, str], dict[int, Any]]] = {}
    for rid in ids:
        instances = tx.descendants(rid, Level.INSTANCE) if q.level != Level.INSTANCE else [rid]
        if not instances:
            continue
        try:
            parsed = read_dicom(read_header(ctx, tx, instances[0]), pixel_data_follows=True)
        except OrthancError:
            continue
        full = dicom_to_json(parsed, ctx.default_encoding)
        values: dict[int, str] = {}
        for e in q.elements:
            node = full.get(format_tag(e.tag))
            if node is not None and node.get("Type") == "String":
                values[e.tag] = node["Value"]
        sequences = {tag: parsed.dataset[tag] for tag in q.sequences if tag in parsed.dataset._dict}
        out[rid] = (values, sequences)
    return out


def _counters(tx: SQLiteReader, ids: list[int], q: DicomQuery) -> dict[int, dict[int, str]]:
    """Orthanc's computed tags, only those requested at the query's level."""
    wanted = {e.tag for e in q.elements} & COUNTERS[q.level]
    if not wanted or not ids:
        return {}
    out: dict[int, dict[int, str]] = {rid: {} for rid in ids}
    children = tx.children(ids)
    if q.level == Level.SERIES:
        for rid in ids:
            out[rid][SERIES_INSTANCES] = str(len(children.get(rid, [])))
        return out
    if q.level == Level.PATIENT:
        studies = {rid: [c for c, _ in children.get(rid, [])] for rid in ids}
        series = _children_of(tx, studies)
        instances = _children_of(tx, series) if PATIENT_INSTANCES in wanted else {}
        for rid in ids:
            if PATIENT_STUDIES in wanted:
                out[rid][PATIENT_STUDIES] = str(len(studies[rid]))
            if PATIENT_SERIES in wanted:
                out[rid][PATIENT_SERIES] = str(len(series[rid]))
            if PATIENT_INSTANCES in wanted:
                out[rid][PATIENT_INSTANCES] = str(len(instances[rid]))
        return out
    series = {rid: [c for c, _ in children.get(rid, [])] for rid in ids}
    instances = _children_of(tx, series) if wanted & {STUDY_INSTANCES, SOP_CLASSES_IN_STUDY} else {}
    modalities: dict[int, str] = {}
    if MODALITIES_IN_STUDY in wanted:
        for row in tx.resources([s for ss in series.values() for s in ss]):
            tags = orjson.loads(row.tags) if row.tags else {}
            value = tags.get(format_tag(MODALITY))
            if value is not None:
                modalities[row.id] = value
    sop_classes: dict[int, dict[int, str]] = {}
    if SOP_CLASSES_IN_STUDY in wanted:
        sop_classes = tx.metadata_bulk([i for ii in instances.values() for i in ii], [Metadata.SOP_CLASS_UID])
    for rid in ids:
        if STUDY_SERIES in wanted:
            out[rid][STUDY_SERIES] = str(len(series[rid]))
        if STUDY_INSTANCES in wanted:
            out[rid][STUDY_INSTANCES] = str(len(instances[rid]))
        if MODALITIES_IN_STUDY in wanted:
            out[rid][MODALITIES_IN_STUDY] = "\\".join(sorted({modalities[s] for s in series[rid] if s in modalities}))
        if SOP_CLASSES_IN_STUDY in wanted:
            found = {sop_classes.get(i, {}).get(Metadata.SOP_CLASS_UID) for i in instances[rid]}
            out[rid][SOP_CLASSES_IN_STUDY] = "\\".join(sorted(v for v in found if v))
    return out


def _children_of(tx: SQLiteReader, parents: dict[int, list[int]]) -> dict[int, list[int]]:
    """For each key, the children of all its listed resources."""
    all_ids = [i for ids in parents.values() for i in ids]
    kids = tx.children(all_ids) if all_ids else {}
    return {key: [c for i in ids for c, _ in kids.get(i, [])] for key, ids in parents.items()}


# -- C-MOVE / C-GET ------------------------------------------------------------------------------------

_RETRIEVE_ORDER = (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT)


def retrieve_lookup(ctx: ServerContext, values: dict[int, str], level: Level | None) -> list[str]:
    """Public ids of the instances a C-MOVE/C-GET identifier designates (Orthanc's rules).

    With a level: the identifier of that level (at study level, AccessionNumber when not empty);
    without: the first identifier found, from instance up to patient. `\\` separates several values.
    Matching is exact, on the stored identifiers.
    """
    if level is not None:
        tag = IDENTIFIER_TAG[level]
        if level == Level.STUDY and values.get(ACCESSION_NUMBER):
            tag = ACCESSION_NUMBER
        chosen: tuple[Level, int, str] | None = (level, tag, values.get(tag, "")) if values.get(tag) else None
    else:
        chosen = next(((lv, IDENTIFIER_TAG[lv], values[IDENTIFIER_TAG[lv]]) for lv in _RETRIEVE_ORDER
                       if values.get(IDENTIFIER_TAG[lv])), None)
    if chosen is None:
        raise OrthancError(ErrorCode.BAD_REQUEST, "C-MOVE/C-GET request without an identifier")
    lvl, tag, text = chosen
    return ctx.index.read(lambda tx: _instances_matching(tx, lvl, tag, text.split("\\")))


def _instances_matching(tx: SQLiteReader, level: Level, tag: int, wanted: Iterable[str]) -> list[str]:
    out: list[str] = []
    seen: set[int] = set()
    for value in wanted:
        value = value.strip()
        if not value:
            continue
        for rid, lvl in tx.lookup_identifier(int(level), tag, normalize(value)):
            row = tx.resource(rid)
            if row is None or rid in seen:
                continue
            tags = orjson.loads(row.tags) if row.tags else {}
            if tags.get(format_tag(tag)) != value:
                continue  # the index is case-insensitive, DICOM identifiers are not
            seen.add(rid)
            ids = tx.descendants(rid, Level.INSTANCE) if lvl != Level.INSTANCE else [rid]
            names = tx.public_ids(ids)
            out.extend(names[i] for i in ids)
    return out


def element_string(elem: Any, encodings: list[str], little: bool) -> str | None:
    """Orthanc's string of a top-level element, raw (bytes) or already decoded by pydicom."""
    if isinstance(elem, RawDataElement):
        return raw_to_string(elem, encodings, little)
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray) or elem.VR == "SQ":
        return None
    if isinstance(value, list | tuple | MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value).rstrip(" ") if elem.VR != "UI" else str(value).strip("\x00 ")


def identifier_values(ds: Dataset, default_codec: str, tags: Sequence[int] = ()) -> dict[int, str]:
    """String values of a C-MOVE/C-GET identifier (top-level, decoded)."""
    charset = ds._dict.get(SPECIFIC_CHARACTER_SET)
    encodings = dataset_encodings(getattr(charset, "value", None) if charset is not None else None, default_codec)
    little = ds.original_encoding[1] is not False
    out: dict[int, str] = {}
    for tag in tags or sorted(ds._dict):
        raw = ds._dict.get(tag)
        if raw is None:
            continue
        value = element_string(raw, encodings, little)
        if value is not None:
            out[int(tag)] = value
    return out
