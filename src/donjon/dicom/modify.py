"""Modification and anonymization of one DICOM file (Orthanc's `/modify` and `/anonymize` rules).

A `Modification` is parsed once from a request, then applied to every instance of a job. Elements
that are not touched stay pydicom raw elements, so they are written back byte for byte. New UIDs
are derived from a per-modification secret and the original UID (SHA-256): one original always
gives the same new UID within a job, also when a job is re-run after a crash, so a re-run finds
the instances it already stored instead of creating duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydicom import dcmread
from pydicom.charset import encode_string
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from .. import __version__
from ..errors import ErrorCode, OrthancError
from ..registry import Level
from .anonymization_profiles import DEFAULT_VERSION, PROFILES
from .values import dataset_encodings

PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
SOP_CLASS_UID = 0x00080016
REFERENCED_SOP_UID = 0x00081155
IDENTIFIERS = (PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID)
DEIDENTIFICATION_METHOD = 0x00120063
PATIENT_IDENTITY_REMOVED = 0x00120062
_RT_FRAME_SEQ = 0x30060010  # ReferencedFrameOfReferenceSequence
_RT_STUDY_SEQ = 0x30060012  # RTReferencedStudySequence
UID_ROOTS = {Level.STUDY: "1.2.276.0.7230010.3.1.2", Level.SERIES: "1.2.276.0.7230010.3.1.3",
             Level.INSTANCE: "1.2.276.0.7230010.3.1.4"}
_UID_LEVELS = ((STUDY_UID, Level.STUDY), (SERIES_UID, Level.SERIES), (SOP_UID, Level.INSTANCE))
_NUMERIC = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})
_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_HEX = re.compile(r"^[0-9a-fA-F]{4}[,-]?[0-9a-fA-F]{4}$")
_PATH_ITEM = re.compile(r"^(.+)\[(\*|\d+)\]$")
_LEVEL_NAMES = {Level.PATIENT: "a patient", Level.STUDY: "a study", Level.SERIES: "a series",
                Level.INSTANCE: "an instance"}
_TAG_NAMES = {PATIENT_ID: "PatientID", STUDY_UID: "StudyInstanceUID", SERIES_UID: "SeriesInstanceUID",
              SOP_UID: "SOPInstanceUID"}


def parse_tag(name: str) -> int:
    """`gggg,eeee`, `gggg-eeee`, `ggggeeee` or a dictionary keyword; else Orthanc's 500 code 27."""
    text = name.strip()
    if _HEX.match(text):
        digits = text.replace(",", "").replace("-", "")
        return int(digits, 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise OrthancError(ErrorCode.UNKNOWN_DICOM_TAG, f"Unknown DICOM tag: {name}")
    return int(tag)


@dataclass(frozen=True)
class TagPath:
    """`Seq[0].Sub[*].Tag`: the sequences to walk (index None = every item), then the final tag."""

    prefix: tuple[tuple[int, int | None], ...]
    tag: int

    @classmethod
    def parse(cls, text: str) -> TagPath:
        parts = text.split(".")
        prefix: list[tuple[int, int | None]] = []
        for part in parts[:-1]:
            m = _PATH_ITEM.match(part.strip())
            if m is None:
                raise OrthancError(ErrorCode.BAD_REQUEST, f"Cannot parse this path to a DICOM tag: {text}")
            index = None if m.group(2) == "*" else int(m.group(2))
            prefix.append((parse_tag(m.group(1)), index))
        return cls(tuple(prefix), parse_tag(parts[-1]))

    def format(self) -> str:
        items = [f"{t:08X}[{'*' if i is None else i}]" for t, i in self.prefix]
        return ".".join([*items, f"{self.tag:08X}"])


def _bool(body: dict[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f'Member "{name}" should be a Boolean value')
    return value


def _vr_of(tag: int, existing: Any = None) -> str:
    if existing is not None and existing.VR:
        return str(existing.VR)
    if (tag >> 16) & 1:
        return "UN"
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


@dataclass
class _Encoding:
    implicit: bool
    little: bool
    charsets: list[str]


def _raw(tag: int, vr: str, value: bytes, enc: _Encoding) -> RawDataElement:
    if len(value) % 2:
        value += b"\x00" if vr in _BINARY_VRS or vr == "UI" else b" "
    return RawDataElement(Tag(tag), vr, len(value), value, 0, enc.implicit, enc.little)


def _encode_value(tag: int, vr: str, text: str, enc: _Encoding) -> bytes:
    if text.startswith("data:") and ";base64," in text:
        try:
            return base64.b64decode(text.split(";base64,", 1)[1], validate=False)
        except ValueError:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Bad data URI for tag {_fmt(tag)}") from None
    if vr in _NUMERIC:
        fmt = ("<" if enc.little else ">") + _NUMERIC[vr]
        try:
            numbers = [float(x) if vr in ("FL", "FD") else int(x) for x in text.split("\\") if x.strip()]
            return b"".join(struct.pack(fmt, n) for n in numbers)
        except (ValueError, struct.error):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"While creating a DICOM instance, tag {_fmt(tag)} "
                                                          f'has out-of-range value: "{text}"') from None
    if vr == "AT":
        out = b""
        for item in text.split("\\"):
            t = parse_tag(item)
            out += struct.pack("<HH" if enc.little else ">HH", t >> 16, t & 0xFFFF)
        return out
    if vr in _TEXT_VRS:
        return encode_string(text, enc.charsets)
    return text.encode("utf-8") if vr in _BINARY_VRS else text.encode("ascii", "replace")


def _fmt(tag: int) -> str:
    return f"({tag >> 16:04x},{tag & 0xFFFF:04x})"


def _element_for(tag: int, value: Any, enc: _Encoding, existing: Any = None) -> RawDataElement | DataElement:
    """The element holding a JSON value of `Replace` (string, or array of objects for a sequence)."""
    vr = _vr_of(tag, existing)
    if vr == "SQ":
        if not isinstance(value, list):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"While creating a DICOM instance, tag {_fmt(tag)} "
                                                          f'has out-of-range value: "{value}"')
        items = []
        for item in value:
            if not isinstance(item, dict):
                raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f"Bad Parameter type for tag {_fmt(tag)[1:-1]}")
            ds = Dataset()
            for name, sub in item.items():
                sub_tag = parse_tag(name)
                ds[sub_tag] = _element_for(sub_tag, sub, enc)
            items.append(ds)
        return DataElement(tag, "SQ", Sequence(items))
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f"Bad Parameter type for tag {_fmt(tag)[1:-1]}")
    return _raw(tag, vr, _encode_value(tag, vr, value, enc), enc)


def _empty(tag: int, enc: _Encoding, existing: Any) -> RawDataElement | DataElement:
    vr = _vr_of(tag, existing)
    if vr == "SQ":
        return DataElement(tag, "SQ", Sequence([]))
    return _raw(tag, vr, b"", enc)


def element_text(elem: Any) -> str:
    """The string value of an element (raw or converted), trailing padding removed."""
    if isinstance(elem, RawDataElement):
        value = elem.value or b""
        return value.decode("latin_1").rstrip("\x00 ")
    value = elem.value
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).rstrip("\x00 ")


def _is_sequence(elem: Any) -> bool:
    vr = elem.VR if elem.VR else _vr_of(int(elem.tag))
    return vr == "SQ"


@dataclass
class Modification:
    """What a `/modify` or `/anonymize` request asks for; `apply()` edits one dataset."""

    level: Level = Level.INSTANCE
    removals: set[int] = field(default_factory=set)
    clearings: set[int] = field(default_factory=set)
    remaps: set[int] = field(default_factory=set)
    replacements: dict[int, Any] = field(default_factory=dict)
    kept: set[int] = field(default_factory=set)
    private_to_keep: set[int] = field(default_factory=set)
    remove_private_tags: bool = False
    is_anonymization: bool = False
    private_creator: str = ""
    path_removals: list[TagPath] = field(default_factory=list)
    path_replacements: list[tuple[TagPath, Any]] = field(default_factory=list)
    secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    overrides: dict[str, str] = field(default_factory=dict)  # "level|original" -> replacement UID

    # -- building -------------------------------------------------------------------------------
    def remove(self, tag: int) -> None:
        self.removals.add(tag)
        self.clearings.discard(tag)
        self.remaps.discard(tag)
        self.replacements.pop(tag, None)
        self.private_to_keep.discard(tag)

    def replace(self, tag: int, value: Any) -> None:
        self.replacements[tag] = value
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.remaps.discard(tag)
        self.private_to_keep.discard(tag)

    def keep(self, tag: int) -> None:
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.remaps.discard(tag)
        self.replacements.pop(tag, None)
        if (tag >> 16) & 1:
            self.private_to_keep.add(tag)
        self.kept.add(tag)

    def setup_anonymization(self, version: str) -> None:
        profile = PROFILES.get(version)
        if profile is None:
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown DICOM version: {version}")
        self.is_anonymization = True
        self.level = Level.PATIENT
        self.remove_private_tags = True
        self.removals = set(profile.remove)
        self.clearings = set(profile.clear)
        self.remaps = set(profile.remap)
        self.replacements = {}
        self.kept = set()
        self.private_to_keep = set()
        self.replace(DEIDENTIFICATION_METHOD, f"Donjon {__version__} - {profile.method}")
        self.replace(PATIENT_IDENTITY_REMOVED, "YES")
        patient = str(uuid.uuid4())
        self.replace(PATIENT_ID, patient)
        self.replace(PATIENT_NAME, patient)

    def _tag_list(self, value: Any, force: bool, operation: str) -> list[TagPath]:
        if not isinstance(value, list):
            raise OrthancError(ErrorCode.BAD_REQUEST)
        out = []
        for item in value:
            if not isinstance(item, str):
                raise OrthancError(ErrorCode.BAD_REQUEST)
            path = TagPath.parse(item)
            if not path.prefix and not force and path.tag in IDENTIFIERS:
                raise OrthancError(ErrorCode.BAD_REQUEST, f'Marking tag "{item}" as to be {operation} requires '
                                                          'the "Force" option to be set to true')
            out.append(path)
        return out

    def _parse_common(self, body: dict[str, Any], force: bool) -> set[int]:
        """Remove, Replace, Keep (in that order, so Keep wins); returns the top-level tags named."""
        named: set[int] = set()
        if "Remove" in body:
            for path in self._tag_list(body["Remove"], force, "removed"):
                if path.prefix:
                    self.path_removals.append(path)
                else:
                    self.remove(path.tag)
                    named.add(path.tag)
        if "Replace" in body:
            replace = body["Replace"]
            if not isinstance(replace, dict):
                raise OrthancError(ErrorCode.BAD_REQUEST)
            for name, value in replace.items():
                path = TagPath.parse(name)
                if not path.prefix and not force and path.tag in IDENTIFIERS:
                    raise OrthancError(ErrorCode.BAD_REQUEST, f'Marking tag "{name}" as to be replaced requires '
                                                              'the "Force" option to be set to true')
                if path.prefix:
                    self.path_replacements.append((path, value))
                else:
                    self.replace(path.tag, value)
                    named.add(path.tag)
        if "Keep" in body:
            for path in self._tag_list(body["Keep"], force, "kept"):
                if not path.prefix:
                    self.keep(path.tag)
                    named.add(path.tag)
        if "PrivateCreator" in body:
            creator = body["PrivateCreator"]
            if not isinstance(creator, str):
                raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Member "PrivateCreator" should be a string')
            self.private_creator = creator
        return named

    @classmethod
    def from_modify_request(cls, body: Any, private_creator: str = "") -> Modification:
        if not isinstance(body, dict):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
        m = cls(private_creator=private_creator)
        force = _bool(body, "Force", False)
        if _bool(body, "RemovePrivateTags", False):
            m.remove_private_tags = True
        m._parse_common(body, force)
        return m

    @classmethod
    def from_anonymization_request(cls, body: Any, private_creator: str = "") -> tuple[Modification, bool]:
        """The modification and whether the request itself decided the PatientName."""
        if not isinstance(body, dict):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
        m = cls(private_creator=private_creator)
        force = _bool(body, "Force", False)
        version = body.get("DicomVersion", DEFAULT_VERSION)
        if not isinstance(version, str):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Member "DicomVersion" should be a string')
        m.setup_anonymization(version)
        named = m._parse_common(body, force)
        if _bool(body, "KeepPrivateTags", False):
            m.remove_private_tags = False
        return m, PATIENT_NAME in named

    def instance_level(self) -> Level:
        """Level of `/instances/{id}/modify` and of bulk requests without `Level`."""
        if PATIENT_ID in self.replacements:
            return Level.PATIENT
        if STUDY_UID in self.replacements:
            return Level.STUDY
        if SERIES_UID in self.replacements:
            return Level.SERIES
        return Level.INSTANCE

    # -- persistence ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "Level": int(self.level), "Remove": sorted(self.removals), "Clear": sorted(self.clearings),
            "Remap": sorted(self.remaps), "Replace": [[t, v] for t, v in sorted(self.replacements.items())],
            "Kept": sorted(self.kept), "PrivateToKeep": sorted(self.private_to_keep),
            "RemovePrivateTags": self.remove_private_tags, "IsAnonymization": self.is_anonymization,
            "PrivateCreator": self.private_creator, "Secret": self.secret,
            "PathRemovals": [p.format() for p in self.path_removals],
            "PathReplacements": [[p.format(), v] for p, v in self.path_replacements],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Modification:
        return cls(level=Level(data["Level"]), removals=set(data["Remove"]), clearings=set(data["Clear"]),
                   remaps=set(data["Remap"]), replacements={int(t): v for t, v in data["Replace"]},
                   kept=set(data["Kept"]), private_to_keep=set(data["PrivateToKeep"]),
                   remove_private_tags=bool(data["RemovePrivateTags"]),
                   is_anonymization=bool(data["IsAnonymization"]), private_creator=data["PrivateCreator"],
                   secret=data["Secret"], path_removals=[TagPath.parse(p) for p in data["PathRemovals"]],
                   path_replacements=[(TagPath.parse(p), v) for p, v in data["PathReplacements"]])

    # -- UIDs -------------------------------------------------------------------------------------
    def map_uid(self, original: str, level: Level) -> str:
        key = f"{int(level)}|{original}"
        found = self.overrides.get(key)
        if found is not None:
            return found
        digest = hashlib.sha256(f"{self.secret}|{key}".encode()).digest()
        return f"{UID_ROOTS[level]}.{int.from_bytes(digest[:16], 'big')}"

    # -- application --------------------------------------------------------------------------------
    def check(self) -> None:
        """Orthanc's sanity checks; they run when the modification is applied (job time)."""
        if any(t in self.removals for t in IDENTIFIERS):
            raise OrthancError(ErrorCode.BAD_REQUEST)
        what = _LEVEL_NAMES[self.level]
        if self.level == Level.PATIENT and PATIENT_ID not in self.replacements:
            raise OrthancError(ErrorCode.BAD_REQUEST, "When modifying a patient, her PatientID is required to be "
                                                      "modified")
        for tag, parent_level in ((PATIENT_ID, Level.PATIENT), (STUDY_UID, Level.STUDY), (SERIES_UID, Level.SERIES)):
            if self.level > parent_level and tag in self.replacements:
                raise OrthancError(ErrorCode.BAD_REQUEST, f"When modifying {what}, the parent {_TAG_NAMES[tag]} "
                                                          "cannot be manually modified")

    def apply_to_bytes(self, data: bytes, default_encoding: str = "latin_1") -> bytes:
        try:
            ds = dcmread(io.BytesIO(data), force=True)
        except (InvalidDicomError, EOFError, ValueError, OSError) as e:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot parse the DICOM file: {e}") from None
        self.apply(ds, default_encoding)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=False)
        return out.getvalue()

    def apply(self, ds: Dataset, default_encoding: str = "latin_1") -> None:
        self.check()
        implicit, little = ds.original_encoding
        charset = ds.get_item(0x00080005)
        enc = _Encoding(bool(implicit), little is not False,
                        dataset_encodings(element_text(charset).split("\\") if charset is not None else None,
                                          default_encoding))
        if self.is_anonymization:
            for tag, level in _UID_LEVELS:
                if tag in self.replacements and isinstance(self.replacements[tag], str) and tag in ds:
                    self.overrides[f"{int(level)}|{element_text(ds.get_item(tag))}"] = self.replacements[tag]
        if self.remove_private_tags:
            tags = list(ds.keys())
            for tag in [t for t in tags if (t >> 16) & 1 and (t >> 16) > 7 and t not in self.private_to_keep]:
                del ds[tag]
        for tag in self.clearings:
            if tag in ds:
                ds[tag] = _empty(tag, enc, ds.get_item(tag))
        for tag in self.removals:
            if tag in ds:
                del ds[tag]
        for tag, value in self.replacements.items():
            ds[tag] = _element_for(tag, value, enc, ds.get_item(tag) if tag in ds else None)
        for tag, level in _UID_LEVELS:
            if self.level <= level and tag not in self.replacements and tag not in self.kept:
                original = element_text(ds.get_item(tag)) if tag in ds else ""
                ds[tag] = _raw(tag, "UI", self.map_uid(original, level).encode("ascii"), enc)
        if self.is_anonymization:
            self._relationships(ds, enc, [], top=True)
        for path in self.path_removals:
            for parent in _walk(ds, path.prefix):
                if path.tag in parent:
                    del parent[path.tag]
        for path, value in self.path_replacements:
            for parent in _walk(ds, path.prefix):
                parent[path.tag] = _element_for(path.tag, value, enc,
                                                parent.get_item(path.tag) if path.tag in parent else None)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            if SOP_UID in ds:
                meta[0x00020003] = _raw(0x00020003, "UI", element_text(ds.get_item(SOP_UID)).encode("ascii"),
                                        _Encoding(False, True, ["ascii"]))
            if SOP_CLASS_UID in ds and SOP_CLASS_UID in self.replacements:
                meta[0x00020002] = _raw(0x00020002, "UI", element_text(ds.get_item(SOP_CLASS_UID)).encode("ascii"),
                                        _Encoding(False, True, ["ascii"]))

    def _relationships(self, ds: Dataset, enc: _Encoding, parents: list[int], top: bool) -> None:
        """Anonymization inside sequences: profile removals/clearings, and every UID reference remapped."""
        for tag in list(ds.keys()):
            tag = int(tag)
            elem = ds.get_item(tag)
            if not top:
                if tag in self.removals or (self.remove_private_tags and (tag >> 16) & 1 and (tag >> 16) > 7):
                    del ds[tag]  # inside sequences, even a kept private tag goes (as the reference does)
                    continue
                if tag in self.removals:
                    del ds[tag]
                    continue
                if tag in self.clearings:
                    ds[tag] = _empty(tag, enc, elem)
                    continue
            if _is_sequence(elem):
                if top and (tag in self.removals or tag in self.clearings):
                    continue
                for item in ds[tag].value:
                    self._relationships(item, enc, [*parents, tag], top=False)
                continue
            level = self._reference_level(tag, parents, top)
            if level is not None:
                original = element_text(elem)
                if original:
                    ds[tag] = _raw(tag, "UI", self.map_uid(original, level).encode("ascii"), enc)

    def _reference_level(self, tag: int, parents: list[int], top: bool) -> Level | None:
        if top:
            return Level.INSTANCE if tag in self.remaps and tag not in self.replacements else None
        if tag == REFERENCED_SOP_UID and parents[-2:] == [_RT_FRAME_SEQ, _RT_STUDY_SEQ]:
            return Level.STUDY  # in RT-STRUCT, this "SOP instance" is a study
        if tag == STUDY_UID:
            return Level.STUDY
        if tag == SERIES_UID:
            return Level.SERIES
        if tag in (SOP_UID, REFERENCED_SOP_UID) or tag in self.remaps:
            return Level.INSTANCE
        return None


def _walk(ds: Dataset, prefix: tuple[tuple[int, int | None], ...]) -> list[Dataset]:
    current = [ds]
    for tag, index in prefix:
        nxt: list[Dataset] = []
        for d in current:
            if tag not in d or not _is_sequence(d.get_item(tag)):
                continue
            items = list(d[tag].value)
            if index is None:
                nxt.extend(items)
            elif index < len(items):
                nxt.append(items[index])
        current = nxt
    return current


# Attributes of the Patient, General Study and Patient Study modules (PS3.3 C.7.1.1, C.7.2.1, C.7.2.2):
# what Split may change and what Merge copies from the target study (StudyInstanceUID aside).
_MODULE_TAGS = """
00080020 00080030 00080050 00080051 00080090 00080096 0008009C 0008009D 00081030 00081032 00081048 00081049
00081060 00081062 00081080 00081084 00081110 00081120 00100010 00100020 00100021 00100022 00100024 00100026
00100027 00100030 00100032 00100033 00100034 00100035 00100040 00100200 00100212 00100213 00100216 00100218
00100219 00100221 00101000 00101001 00101002 00101010 00101020 00101021 00101022 00101023 00101024 00101030
00101100 00102000 00102110 00102160 00102180 001021A0 001021B0 001021C0 001021D0 00102201 00102202 00102203
00102292 00102293 00102294 00102297 00102298 00102299 00104000 00120062 00120063 00120064 00200010 00321034
00321066 00321067 00380010 00380014 00380060 00380062 00380064 00380500 00401012"""
PATIENT_STUDY_MODULE_TAGS = frozenset(int(t, 16) for t in _MODULE_TAGS.split())


@dataclass
class Restructuring:
    """Split and Merge: move instances into another study (new series and SOP UIDs, same for a re-run)."""

    study_uid: str
    secret: str = field(default_factory=lambda: uuid.uuid4().hex)
    replacements: dict[int, Any] = field(default_factory=dict)  # JSON values (Split's "Replace")
    removals: set[int] = field(default_factory=set)
    copied: dict[int, Any] = field(default_factory=dict)  # elements of the target study (Merge)

    def map_uid(self, original: str, level: Level) -> str:
        digest = hashlib.sha256(f"{self.secret}|{int(level)}|{original}".encode()).digest()
        return f"{UID_ROOTS[level]}.{int.from_bytes(digest[:16], 'big')}"

    def apply_to_bytes(self, data: bytes, default_encoding: str = "latin_1") -> bytes:
        try:
            ds = dcmread(io.BytesIO(data), force=True)
        except (InvalidDicomError, EOFError, ValueError, OSError) as e:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot parse the DICOM file: {e}") from None
        implicit, little = ds.original_encoding
        charset = ds.get_item(0x00080005)
        enc = _Encoding(bool(implicit), little is not False,
                        dataset_encodings(element_text(charset).split("\\") if charset is not None else None,
                                          default_encoding))
        if self.copied:
            for tag in PATIENT_STUDY_MODULE_TAGS:
                if tag in self.copied:
                    ds[tag] = self.copied[tag]
                elif tag in ds:
                    del ds[tag]
        for tag in self.removals:
            if tag in ds:
                del ds[tag]
        for tag, value in self.replacements.items():
            ds[tag] = _element_for(tag, value, enc, ds.get_item(tag) if tag in ds else None)
        ds[STUDY_UID] = _raw(STUDY_UID, "UI", self.study_uid.encode("ascii"), enc)
        for tag, level in ((SERIES_UID, Level.SERIES), (SOP_UID, Level.INSTANCE)):
            original = element_text(ds.get_item(tag)) if tag in ds else ""
            ds[tag] = _raw(tag, "UI", self.map_uid(original, level).encode("ascii"), enc)
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            meta[0x00020003] = _raw(0x00020003, "UI", element_text(ds.get_item(SOP_UID)).encode("ascii"),
                                    _Encoding(False, True, ["ascii"]))
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=False)
        return out.getvalue()


def module_elements(data: bytes) -> dict[int, Any]:
    """The Patient/Study module elements of a file (what Merge copies from its target study)."""
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    return {tag: ds[tag] for tag in PATIENT_STUDY_MODULE_TAGS if tag in ds}
