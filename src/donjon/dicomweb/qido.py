"""QIDO-RS: search for studies, series and instances (PS3.18 §10.6), on `core.find`.

Matching is `core.find`'s (the same engine as `/tools/find` and C-FIND): single value, list, range and
wildcard matching; constraints on identifiers narrow candidates in SQL. PN matching is always case
insensitive and the others follow `QidoCaseSensitive`, as in Orthanc's plugin; `fuzzymatching=true`
makes PN match any name component by prefix. Answers carry each level's default attributes (those of
Orthanc's plugin, from PS3.18 Table 6.7.1-2), the matching keys, `includefield` attributes and the
computed ones (ModalitiesInStudy, NumberOf..., RetrieveURL). Attributes that are not main tags come
from the metadata cache when it holds the instance, else from the file's header (one instance per
result), unless `StorageAccessOnFind` is `Never`.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from ..core.find import FindQuery, find, read_header
from ..core.matching import Constraint, glob_match, normalize, parse_constraint
from ..dicom.main_tags import MAIN_TAGS
from ..dicom.tag_dictionary import parse_tag
from ..errors import ErrorCode, OrthancError
from ..registry import Level, Metadata
from . import json_model
from .lookup import SERIES_UID, SOP_UID, STUDY_UID, instance_refs
from .metadata import file_json

if TYPE_CHECKING:
    from ..core.context import ServerContext
    from ..index.protocol import ResourceRow
    from ..index.sqlite import SQLiteReader
    from .state import DicomWebState

SPECIFIC_CHARACTER_SET = 0x00080005
MODALITIES_IN_STUDY, MODALITY, RETRIEVE_URL = 0x00080061, 0x00080060, 0x00081190
STUDY_SERIES, STUDY_INSTANCES, SERIES_INSTANCES = 0x00201206, 0x00201208, 0x00201209
SOP_CLASS = 0x00080016
_COMPUTED = {Level.STUDY: {MODALITIES_IN_STUDY, RETRIEVE_URL, STUDY_SERIES, STUDY_INSTANCES},
             Level.SERIES: {RETRIEVE_URL, SERIES_INSTANCES}, Level.INSTANCE: {RETRIEVE_URL}}

# Default attributes of each level (Orthanc's plugin, after PS3.18 Table 6.7.1-2, -2a, -2b)
DEFAULTS: dict[Level, tuple[int, ...]] = {
    Level.STUDY: (0x00080020, 0x00080030, 0x00080050, MODALITIES_IN_STUDY, 0x00080090, 0x00080201, RETRIEVE_URL, 0x00100010,
                  0x00100020, 0x00100030, 0x00100040, STUDY_UID, 0x00200010, STUDY_SERIES, STUDY_INSTANCES),
    Level.SERIES: (MODALITY, 0x0008103E, RETRIEVE_URL, SERIES_UID, 0x00200011, SERIES_INSTANCES,
                   0x00400244, 0x00400245),
    Level.INSTANCE: (SOP_CLASS, SOP_UID, RETRIEVE_URL, 0x00200013, 0x00280010, 0x00280011, 0x00280100,
                     0x00280008),
}
# Attributes of the upper levels shown at lower levels (when the query does not name the parent)
INHERITED = {lvl: tuple(t for t in DEFAULTS[lvl] if t not in _COMPUTED[lvl]) for lvl in (Level.STUDY, Level.SERIES)}
_TAG_LEVEL = {tag: lvl for lvl in (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT) for tag, _ in MAIN_TAGS[lvl]}
_NOT_KEYS = frozenset({"limit", "offset", "fuzzymatching", "includefield", "emptyvaluematching",
                       "multiplevaluematching", "charset", "accept"})
_HEX_KEY = re.compile(r"^[0-9A-Fa-f]{8}$")


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """Every `key=value` of the query, in order (keys may repeat, e.g. `includefield`)."""
    out = []
    for part in query_string.split(b"&"):
        if part:
            key, _, value = part.partition(b"=")
            out.append((urllib.parse.unquote_plus(key.decode("latin_1")),
                        urllib.parse.unquote_plus(value.decode("utf-8", "replace"))))
    return out


def attribute_tag(name: str) -> int:
    """A QIDO attribute: keyword or `GGGGEEEE`; 400 for anything else (sequence paths included)."""
    text = name.strip()
    if _HEX_KEY.match(text):
        return int(text, 16)
    if "." in text:
        raise OrthancError(ErrorCode.BAD_REQUEST, f"QIDO-RS: sequence attributes are not supported: {name}")
    try:
        return parse_tag(text)
    except OrthancError:
        raise OrthancError(ErrorCode.BAD_REQUEST, f"QIDO-RS: unknown attribute: {name}") from None


def _uint(text: str, name: str) -> int:
    if not text.strip().isdigit():
        raise OrthancError(ErrorCode.BAD_REQUEST, f'QIDO-RS: "{name}" must be a non-negative integer: {text}')
    return int(text.strip())


@dataclass(frozen=True)
class FuzzyConstraint(Constraint):
    """`fuzzymatching=true` on a PN: the value (wildcards allowed) may match the start of any name part."""

    def matches(self, candidate: str | None) -> bool:
        if candidate is None:
            return False
        v = normalize(candidate)
        if super().matches(candidate):
            return True
        prefix = self.value + "*"  # a prefix of any name part; glob_match never backtracks
        return any(glob_match(prefix, word) for word in re.split(r"[\^= ,]+", v) if word)

    def index_operation(self) -> tuple[str, object] | None:
        return None  # prefix of any component: the normalised index cannot narrow it


@dataclass
class Search:
    level: Level
    constraints: list[Constraint] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)  # matching keys and includefield, in order
    include_all: bool = False
    limit: int | None = None
    offset: int = 0
    named_study: bool = False  # StudyInstanceUID given as a query key: study attributes are left out
    named_series: bool = False


def parse_search(level: Level, pairs: list[tuple[str, str]], case_sensitive: bool,
                 study_uid: str | None = None, series_uid: str | None = None) -> Search:
    s = Search(level)
    fuzzy = False
    values: list[tuple[int, str]] = []
    for key, value in pairs:
        lower = key.lower()
        if lower == "limit":
            s.limit = _uint(value, key)
        elif lower == "offset":
            s.offset = _uint(value, key)
        elif lower == "fuzzymatching":
            if value.strip().lower() not in ("true", "false"):
                raise OrthancError(ErrorCode.BAD_REQUEST, f"QIDO-RS: fuzzymatching must be true or false: {value}")
            fuzzy = value.strip().lower() == "true"
        elif lower == "includefield":
            for item in value.split(","):
                if item.strip().lower() == "all":
                    s.include_all = True
                elif item.strip():
                    s.returned.append(attribute_tag(item))
        elif lower in _NOT_KEYS or lower.startswith("_"):
            continue  # `_=<timestamp>` is how browsers' clients defeat caches
        else:
            tag = attribute_tag(key)
            values.append((tag, value))
            s.returned.append(tag)
            s.named_study = s.named_study or tag == STUDY_UID
            s.named_series = s.named_series or tag == SERIES_UID
    for tag, value in values:
        c = _constraint(tag, value, case_sensitive, fuzzy)
        if c is not None:
            s.constraints.append(c)
    for tag, uid in ((STUDY_UID, study_uid), (SERIES_UID, series_uid)):
        if uid is not None:
            s.constraints.append(Constraint(tag, "equal", value=uid, case_sensitive=True))
    return s


def _constraint(tag: int, value: str, case_sensitive: bool, fuzzy: bool) -> Constraint | None:
    vr = json_model.dictionary_vr(tag)
    if vr in ("UI", "CS") and "," in value:
        value = value.replace(",", "\\")  # PS3.18 lists are comma-separated
    if vr == "PN":
        case_sensitive = False
    try:
        c = parse_constraint(tag, value, case_sensitive, vr)
    except OrthancError as e:
        raise OrthancError(ErrorCode.BAD_REQUEST, f"QIDO-RS: {e.details or e.description}") from None
    if c is not None and fuzzy and vr == "PN" and c.kind in ("equal", "wildcard"):
        pattern = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in c.value)
        c = FuzzyConstraint(tag, "wildcard", value=c.value, case_sensitive=False, regex=re.compile(pattern))
    return c


def returned_tags(s: Search) -> list[int]:
    """What each answer shows, before values are looked up."""
    tags: list[int] = [SPECIFIC_CHARACTER_SET]
    if s.level == Level.STUDY:
        tags += DEFAULTS[Level.STUDY]
    elif s.level == Level.SERIES:
        tags += [*DEFAULTS[Level.SERIES], STUDY_UID]
        if not s.named_study:
            tags += INHERITED[Level.STUDY]
    else:
        tags += [*DEFAULTS[Level.INSTANCE], STUDY_UID, SERIES_UID]
        if not s.named_series:
            tags += INHERITED[Level.SERIES]
        if not s.named_study:
            tags += INHERITED[Level.STUDY]
    tags += s.returned
    return list(dict.fromkeys(tags))


class _Rows:
    """The result rows and their ancestors, fetched in bulk."""

    def __init__(self, tx: SQLiteReader, level: Level, ids: list[int]):
        self.tx = tx
        self.level = level
        self.rows = {r.id: r for r in tx.resources(ids)}
        self.series: dict[int, ResourceRow] = {}
        self.studies: dict[int, ResourceRow] = {}
        if level == Level.INSTANCE:
            self.series = {r.id: r for r in tx.resources(list({r.parent_id for r in self.rows.values()
                                                                  if r.parent_id is not None}))}
        if level == Level.SERIES:
            self.series = self.rows
        if level == Level.STUDY:
            self.studies = self.rows
        else:
            self.studies = {r.id: r for r in tx.resources(list({r.parent_id for r in self.series.values()
                                                                  if r.parent_id is not None}))}

    def chain(self, rid: int) -> dict[Level, ResourceRow]:
        """The row of each level above (and at) a result."""
        out: dict[Level, ResourceRow] = {}
        row = self.rows[rid]
        if self.level == Level.INSTANCE:
            out[Level.INSTANCE] = row
            row = self.series.get(row.parent_id) if row.parent_id is not None else None
        if row is not None and self.level >= Level.SERIES:
            out[Level.SERIES] = row
            row = self.studies.get(row.parent_id) if row.parent_id is not None else None
        if row is not None:
            out[Level.STUDY] = row
        return out


def search(ctx: ServerContext, state: DicomWebState, s: Search, base: str
           ) -> tuple[list[json_model.Json], bool, list[str]]:
    """The answers, whether more results exist than were returned (a server-side limit), and the
    Orthanc identifiers of the results."""
    config = ctx.config
    cap = config["LimitFindInstances"] if s.level == Level.INSTANCE else config["LimitFindResults"]
    limit = s.limit if s.limit is not None else 0
    if cap and (limit == 0 or limit > cap):
        limit = cap
    query = FindQuery(s.level, list(s.constraints), since=s.offset, limit=limit + 1 if limit else 0)
    tags = returned_tags(s)
    file_tags = [t for t in tags if t not in _COMPUTED[s.level] and t != SPECIFIC_CHARACTER_SET and
                 not (t == SOP_CLASS and s.level == Level.INSTANCE) and _TAG_LEVEL.get(t, Level.INSTANCE + 1) > s.level]
    if s.include_all:
        file_tags.append(-1)
    files_allowed = config["StorageAccessOnFind"] != "Never"

    def run(tx: SQLiteReader) -> tuple[list[json_model.Json], bool, list[str]]:
        ids = find(ctx, tx, query)
        more = bool(limit) and len(ids) > limit
        ids = ids[:limit] if limit else ids
        rows = _Rows(tx, s.level, ids)
        ids = [rid for rid in ids if rid in rows.rows]
        sop_classes = tx.metadata_bulk(ids, (Metadata.SOP_CLASS_UID,)) if s.level == Level.INSTANCE else {}
        from_files = _instance_values(ctx, state, tx, ids, s.level, file_tags) if file_tags and files_allowed else {}
        answers = [_answer(rows, rid, tags, s, base, sop_classes.get(rid, {}).get(Metadata.SOP_CLASS_UID),
                           from_files.get(rid, {})) for rid in ids]
        _add_counts(tx, s.level, rows, ids, answers, tags)
        return answers, more, [rows.rows[rid].public_id for rid in ids]
    return ctx.index.read(run)


def _answer(rows: _Rows, rid: int, tags: list[int], s: Search, base: str, sop_class: str | None,
            from_file: json_model.Json) -> json_model.Json:
    chain = rows.chain(rid)
    study = chain.get(Level.STUDY)
    main: dict[int, str] = {}
    for lvl, row in ((Level.PATIENT, study), (Level.STUDY, study), (Level.SERIES, chain.get(Level.SERIES)),
                     (Level.INSTANCE, chain.get(Level.INSTANCE))):
        if row is None:
            continue
        blob = row.patient_tags if lvl == Level.PATIENT else row.tags
        for key, value in (orjson.loads(blob) if blob else {}).items():
            if isinstance(value, str):
                main[int(key.replace(",", ""), 16)] = value
    out: json_model.Json = {"00080005": {"vr": "CS", "Value": ["ISO_IR 192"]}}  # Unicode from the index
    for tag in tags:
        if tag in _COMPUTED[s.level] or tag == SPECIFIC_CHARACTER_SET:
            continue
        key = json_model.tag_key(tag)
        if tag in main:
            out[key] = json_model.from_text(tag, main[tag])
        elif tag == SOP_CLASS and s.level == Level.INSTANCE:
            if sop_class is not None:
                out[key] = json_model.from_text(tag, sop_class)
        elif key in from_file:
            out[key] = from_file[key]
    for key, node in from_file.items():
        out.setdefault(key, node)  # includefield=all
    path = "/".join(f"{name}/{main.get(tag, '')}" for name, lvl, tag in
                    (("studies", Level.STUDY, STUDY_UID), ("series", Level.SERIES, SERIES_UID),
                     ("instances", Level.INSTANCE, SOP_UID)) if lvl in chain)
    out[json_model.tag_key(RETRIEVE_URL)] = {"vr": "UR", "Value": [base + path]}
    return out


def _representatives(tx: SQLiteReader, ids: list[int], level: Level) -> dict[int, int]:
    """One instance of each result (the first stored), found with two queries at most per level."""
    if level == Level.INSTANCE:
        return {rid: rid for rid in ids}
    first = {rid: kids[0][0] for rid, kids in tx.children(ids).items() if kids}
    if level == Level.SERIES:
        return first
    below = {sid: kids[0][0] for sid, kids in tx.children(list(first.values())).items() if kids}
    return {rid: below[sid] for rid, sid in first.items() if sid in below}


def _instance_values(ctx: ServerContext, state: DicomWebState, tx: SQLiteReader, ids: list[int], level: Level,
                     tags: list[int]) -> dict[int, json_model.Json]:
    """Per result, the attributes read from one of its instances: from the metadata cache when it holds
    the instance, else from the file's header."""
    reps = _representatives(tx, ids, level)
    refs = {ref.internal_id: ref for ref in instance_refs(tx, list(dict.fromkeys(reps.values())))}
    series_names = tx.public_ids({ref.series_id for ref in refs.values()})
    everything = -1 in tags
    wanted = {json_model.tag_key(t) for t in tags if t >= 0}
    below = {json_model.tag_key(t) for lvl, items in MAIN_TAGS.items() if lvl > level for t, _ in items} - {"00200037"}
    values: dict[int, json_model.Json] = {}
    for iid, ref in refs.items():
        cached = state.cache.cached_instance(ref, series_names.get(ref.series_id, ""))
        if cached is not None:
            data = orjson.loads(cached)
        else:
            try:
                data = file_json(read_header(ctx, tx, iid), ctx.default_encoding, ref.path,
                                 None if everything else [t for t in tags if t >= 0], header_only=True)
            except OrthancError:
                continue
        if everything:
            values[iid] = {k: v for k, v in data.items()
                           if k in wanted or (k not in below and "BulkDataURI" not in v)}
        else:
            values[iid] = {k: v for k, v in data.items() if k in wanted}
    return {rid: values[iid] for rid, iid in reps.items() if iid in values}


def _add_counts(tx: SQLiteReader, level: Level, rows: _Rows, ids: list[int], answers: list[json_model.Json],
                tags: list[int]) -> None:
    """ModalitiesInStudy and the NumberOf... attributes, for every answer at once."""
    if level == Level.INSTANCE or not ids:
        return
    children = tx.children(ids)
    if level == Level.SERIES:
        for rid, answer in zip(ids, answers, strict=True):
            if SERIES_INSTANCES in tags:
                answer["00201209"] = {"vr": "IS", "Value": [len(children.get(rid, []))]}
        return
    series_ids = [sid for rid in ids for sid, _ in children.get(rid, [])]
    grand = tx.children(series_ids) if STUDY_INSTANCES in tags else {}
    modalities: dict[int, str] = {}
    if MODALITIES_IN_STUDY in tags:
        for row in tx.resources(series_ids):
            tags_of = orjson.loads(row.tags) if row.tags else {}
            if isinstance(tags_of.get("0008,0060"), str):
                modalities[row.id] = tags_of["0008,0060"]
    for rid, answer in zip(ids, answers, strict=True):
        series = [sid for sid, _ in children.get(rid, [])]
        if MODALITIES_IN_STUDY in tags:
            values = sorted({modalities[sid] for sid in series if modalities.get(sid)})
            answer["00080061"] = {"vr": "CS", "Value": values} if values else {"vr": "CS"}
        if STUDY_SERIES in tags:
            answer["00201206"] = {"vr": "IS", "Value": [len(series)]}
        if STUDY_INSTANCES in tags:
            answer["00201208"] = {"vr": "IS", "Value": [sum(len(grand.get(sid, [])) for sid in series)]}
