"""Outgoing C-FIND queries (`/modalities/{id}/query`) and the answers kept for `/queries`.

The query is normalised as Orthanc does (tags of other levels dropped, the identifiers of the level
and above added, empty or `*` for GE), sent with the DefaultEncoding's character set, and the answers
are kept in memory (LRU, `QueryRetrieveSize`), each as the leaf string values the remote returned.
"""

from __future__ import annotations

import threading
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pynetdicom.dsutils import encode

from ..core.dicom_query import COUNTERS, identifier_values
from ..core.views import TagFormat
from ..dicom.json_tags import convert
from ..dicom.main_tags import format_tag
from ..dicom.tag_dictionary import tag_name
from ..dicom.values import DEFAULT_ENCODINGS, dataset_encodings, dictionary_vr
from ..registry import Level
from . import scu
from .answers import SPECIFIC_CHARACTER_SETS, encode_value
from .meta import file_meta
from .modalities import RemoteModality

if TYPE_CHECKING:
    from ..core.context import ServerContext

QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
LEVEL_NAMES = {Level.PATIENT: "PATIENT", Level.STUDY: "STUDY", Level.SERIES: "SERIES", Level.INSTANCE: "IMAGE"}
PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID, ACCESSION = 0x00100020, 0x0020000D, 0x0020000E, 0x00080018, 0x00080050

# Orthanc's DicomTag::AddTagsForModule (DICOM PS3.3 2011)
_MODULES: dict[Level, frozenset[int]] = {
    Level.PATIENT: frozenset({
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00081120, 0x00100032, 0x00101000, 0x00101002,
        0x00101001, 0x00102160, 0x00104000, 0x00102201, 0x00102202, 0x00102292, 0x00102293, 0x00102294,
        0x00102297, 0x00102298, 0x00102299, 0x00120062, 0x00120063, 0x00120064, 0x00100021, 0x00100024}),
    Level.STUDY: frozenset({
        0x0020000D, 0x00080020, 0x00080030, 0x00080090, 0x00080096, 0x00200010, 0x00080050, 0x00080051,
        0x00081030, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00321034, 0x00081110, 0x00081032,
        0x00401012}),
    Level.SERIES: frozenset({
        0x00080060, 0x0020000E, 0x00200011, 0x00200060, 0x00080021, 0x00080031, 0x00081050, 0x00081052,
        0x00181030, 0x0008103E, 0x0008103F, 0x00081070, 0x00081072, 0x00081111, 0x00081250, 0x00180015,
        0x00185100, 0x00280108, 0x00290109, 0x00400275, 0x00102210, 0x00400253, 0x00400244, 0x00400245,
        0x00400254, 0x00400260, 0x00400280}),
    Level.INSTANCE: frozenset({
        0x00080016, 0x00080018, 0x00080005, 0x00080012, 0x00080013, 0x00080014, 0x0008001A, 0x0008001B,
        0x00080110, 0x00080201, 0x0018A001, 0x00200013, 0x01000410, 0x01000420, 0x01000424, 0x01000426,
        0x04000500, 0x04000561, 0x0040A390, 0x00280303, 0x4FFE0001, 0xFFFAFFFA}),
}
# Identifiers added to every query of a level, if missing
_IDENTIFIERS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (PATIENT_ID,),
    Level.STUDY: (ACCESSION, STUDY_UID, PATIENT_ID),
    Level.SERIES: (SERIES_UID, ACCESSION, STUDY_UID, PATIENT_ID),
    Level.INSTANCE: (SOP_UID, SERIES_UID, ACCESSION, STUDY_UID, PATIENT_ID),
}


def allowed_tags(level: Level) -> frozenset[int]:
    out: set[int] = {SPECIFIC_CHARACTER_SET} | set(COUNTERS[level])
    for lvl in Level:
        if lvl <= level:
            out |= _MODULES[lvl]
    return frozenset(out)


def build_query(ctx: ServerContext, level: Level, fields: dict[int, str], normalize: bool,
                manufacturer: str) -> Dataset:
    """The C-FIND identifier Orthanc sends for these fields."""
    values = dict(fields)
    if normalize:
        allowed = allowed_tags(level)
        values = {t: v for t, v in values.items() if t in allowed}
        if manufacturer in ("GenericNoWildcardInDates", "GenericNoUniversalWildcard"):
            for t, v in values.items():
                if v == "*" and (manufacturer == "GenericNoUniversalWildcard" or dictionary_vr(t) == "DA"):
                    values[t] = ""
    values[QUERY_RETRIEVE_LEVEL] = LEVEL_NAMES[level]
    universal = "*" if manufacturer == "GE" else ""
    for tag in _IDENTIFIERS[level]:
        values.setdefault(tag, universal)
    default = ctx.config["DefaultEncoding"]
    values[SPECIFIC_CHARACTER_SET] = SPECIFIC_CHARACTER_SETS.get(default, "ISO_IR 100")
    return raw_dataset(values, DEFAULT_ENCODINGS.get(default, "latin_1"))


def raw_dataset(values: dict[int, str], codec: str) -> Dataset:
    """A data set of raw explicit-VR little-endian elements (no pydicom value validation)."""
    ds = Dataset()
    for tag in sorted(values):
        vr = dictionary_vr(tag)
        if vr == "UN" or " or " in vr:
            vr = "LO"
        data = encode_value(vr, values[tag], codec, True)
        ds._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(data), data, 0, False, True)
    ds.set_original_encoding(False, True)
    return ds


@dataclass
class QueryRecord:
    modality_name: str
    modality: RemoteModality
    level: Level
    query: dict[int, str]  # as given by the client
    answers: list[dict[int, str]] = field(default_factory=list)  # leaf string values of each answer
    local_aet: str | None = None
    timeout: int | None = None


def run_query(ctx: ServerContext, name: str, modality: RemoteModality, level: Level, fields: dict[int, str],
              normalize: bool = True, local_aet: str | None = None, timeout: int | None = None) -> QueryRecord:
    target = scu.target_for(ctx, modality, local_aet, timeout)
    identifier = build_query(ctx, level, fields, normalize, modality.manufacturer)
    found = scu.find(target, level, identifier)
    answers = []
    for ds in found:
        values = identifier_values(ds, ctx.default_encoding)
        values.setdefault(QUERY_RETRIEVE_LEVEL, LEVEL_NAMES[level])
        answers.append(values)
    return QueryRecord(name, modality, level, dict(fields), answers, local_aet, timeout)


def values_to_json(ctx: ServerContext, values: dict[int, str], fmt: TagFormat) -> dict[str, Any]:
    """An answer in Orthanc's DICOM-as-JSON (full, short or human), via a real encoding."""
    default = ctx.config["DefaultEncoding"]
    charset = values.get(SPECIFIC_CHARACTER_SET) or SPECIFIC_CHARACTER_SETS.get(default, "ISO_IR 100")
    codec = DEFAULT_ENCODINGS.get(default, "latin_1")
    codec = dataset_encodings(charset.encode("ascii", "replace"), codec)[0]
    ds = raw_dataset({**values, SPECIFIC_CHARACTER_SET: charset}, codec)
    data = file_meta("1.2.840.10008.5.1.4.1.2.2.1", "1.2.3", "1.2.840.10008.1.2.1") + (encode(ds, False, True) or b"")
    return convert(data, fmt, ctx.default_encoding)


def query_to_json(values: dict[int, str], fmt: TagFormat) -> dict[str, Any]:
    """The query as given, in a format (Orthanc shows it as it was asked, not normalised)."""
    out: dict[str, Any] = {}
    for tag in sorted(values):
        if fmt is TagFormat.HUMAN:
            out[tag_name(tag)] = values[tag]
        elif fmt is TagFormat.SHORT:
            out[format_tag(tag)] = values[tag]
        else:
            out[format_tag(tag)] = {"Name": tag_name(tag), "Type": "String", "Value": values[tag]}
    return out


class QueryStore:
    """The `/queries` of a server context: at most `QueryRetrieveSize`, least recently used dropped."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self._items: OrderedDict[str, QueryRecord] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, record: QueryRecord) -> str:
        qid = str(uuid.uuid4())
        with self._lock:
            self._items[qid] = record
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return qid

    def get(self, qid: str) -> QueryRecord | None:
        with self._lock:
            record = self._items.get(qid)
            if record is not None:
                self._items.move_to_end(qid)
            return record

    def delete(self, qid: str) -> bool:
        with self._lock:
            return self._items.pop(qid, None) is not None

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._items)


_STORES: weakref.WeakKeyDictionary[Any, QueryStore] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def queries_of(ctx: ServerContext) -> QueryStore:
    with _STORES_LOCK:
        found = _STORES.get(ctx)
        if found is None:
            found = QueryStore(int(ctx.config["QueryRetrieveSize"] or 100))
            _STORES[ctx] = found
        return found


