"""The DICOM JSON model (PS3.18 F.2) and its XML twin (PS3.19 Native DICOM Model).

Values are read from pydicom's raw elements with Donjon's own string rules (`dicom.values`), so that
strings are what `/tags` shows, and typed as the standard wants: DS/IS and binary numbers become JSON
numbers, PN an object per component group, binary values a `BulkDataURI`. Bulk data URIs are kept
*relative* (`studies/.../bulk/7fe00010`) in everything that is cached; `absolute()` puts the base URL
in front when an answer is sent, because the base depends on the request (Host, Forwarded).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson
from pydicom.dataset import Dataset

from ..dicom.json_tags import ParsedFile, _value_bytes, _Walker
from ..dicom.tag_dictionary import dictionary_entry, tag_name
from ..dicom.values import dataset_encodings, decode_string

Json = dict[str, Any]

BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                         "UI", "UR", "UT"})
# DCMTK's context-dependent VRs as a DICOM JSON VR ("xs" is resolved with PixelRepresentation)
_CONCRETE_VR = {"ox": "OW", "lt": "OW", "up": "UL", "na": "UN", "px": "OB"}
_PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
_PN_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
_INT = re.compile(r"^[+-]?[0-9]+$")
_BULK_KEY = b'"BulkDataURI":"'
PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005


def tag_key(tag: int) -> str:
    """`GGGGEEEE`, the key of an attribute in DICOM JSON."""
    return f"{tag:08X}"


def dictionary_vr(tag: int) -> str:
    entry = dictionary_entry(tag)
    vr = entry[0] if entry is not None else "UN"
    return "US" if vr == "xs" else _CONCRETE_VR.get(vr, vr)


def _number(text: str, vr: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        if vr == "IS" or _INT.match(text):
            return int(text)
        value = float(text)
    except ValueError:
        return text  # not a number: kept as sent rather than lost
    return value if value == value and value not in (float("inf"), float("-inf")) else text


def _person_name(text: str) -> Any:
    if not text:
        return None
    groups = text.split("=")
    return {_PN_GROUPS[i]: g for i, g in enumerate(groups[:3])}


def string_values(text: str, vr: str) -> list[Any] | None:
    """The `Value` array of a string attribute; None when the value is empty (no `Value` member)."""
    if text == "":
        return None
    items = [text] if vr in _SINGLE_VALUED else text.split("\\")
    if vr in ("DS", "IS"):
        return [_number(x, vr) for x in items]
    if vr == "PN":
        return [_person_name(x) for x in items]
    return [x if x != "" else None for x in items]


def attribute(vr: str, values: list[Any] | None) -> Json:
    return {"vr": vr} if not values else {"vr": vr, "Value": values}


def from_text(tag: int, text: str | None, vr: str | None = None) -> Json:
    """An attribute from a string as the index stores it (main tags)."""
    vr = vr or dictionary_vr(tag)
    if vr in BULK_VRS or vr == "SQ":
        return {"vr": vr}
    if vr in _NUMBER_FORMATS:
        values = [_number(x, "DS") for x in text.split("\\")] if text else None
        return attribute(vr, values)
    return attribute(vr, string_values(text or "", vr))


class Converter:
    """One file's data set as DICOM JSON (attributes sorted by tag, the file meta group left out)."""

    def __init__(self, parsed: ParsedFile, default_codec: str):
        self.walker = _Walker(parsed.implicit, parsed.little_endian)
        self.little = parsed.little_endian
        ds = parsed.dataset
        charset = ds._dict.get(SPECIFIC_CHARACTER_SET)
        raw = _value_bytes(charset) if charset is not None else None
        self.encodings = dataset_encodings(raw, default_codec)
        rep = ds._dict.get(0x00280103)
        rep_bytes = _value_bytes(rep) if rep is not None else None
        self.signed = bool(rep_bytes) and len(rep_bytes or b"") >= 2 and \
            struct.unpack("<H" if self.little else ">H", (rep_bytes or b"\0\0")[:2])[0] == 1

    def dataset(self, ds: Dataset, bulk: str, only: Iterable[int] | None = None, top: bool = True) -> Json:
        elements = ds._dict
        creators = self.walker.creators(ds)
        wanted = set(only) if only is not None else None
        out: Json = {}
        for tag in sorted(map(int, elements)):
            if wanted is not None and tag not in wanted:
                continue
            if tag & 0xFFFF == 0 or tag >> 16 == 0xFFFE or (top and tag >> 16 == 0x0002):
                continue  # group lengths, item delimiters and (at the top) the meta header are not attributes
            creator = self.walker.creator_of(tag, creators)
            entry = dictionary_entry(tag, creator)
            node = self.element(elements[tag], tag, entry, bulk)
            if node is not None:
                out[tag_key(tag)] = node
        return out

    def vr_of(self, elem: Any, entry: tuple[str, str] | None) -> str:
        vr = self.walker.vr(elem, entry)
        if vr == "xs":
            return "SS" if self.signed else "US"
        return _CONCRETE_VR.get(vr, vr)

    def element(self, elem: Any, tag: int, entry: tuple[str, str] | None, bulk: str) -> Json | None:
        vr = self.vr_of(elem, entry)
        items = self.walker.items(elem, "SQ" if vr == "SQ" else vr)
        if items is not None:
            if not items:
                return {"vr": "SQ"}
            return {"vr": "SQ", "Value": [self.dataset(item, f"{bulk}/{tag:08x}/{i + 1}", top=False)
                                          for i, item in enumerate(items)]}
        raw = _value_bytes(elem)
        if vr in BULK_VRS or tag == PIXEL_DATA:
            if not raw and not (tag == PIXEL_DATA and getattr(elem, "length", 0) == 0xFFFFFFFF):
                return {"vr": vr}
            return {"vr": vr, "BulkDataURI": f"{bulk}/{tag:08x}"}
        if raw is None or raw == b"":
            return {"vr": vr}
        if vr in _STRING_VRS:
            return attribute(vr, string_values(decode_string(raw, vr, self.encodings), vr))
        if vr == "AT":
            count = len(raw) // 4
            words = struct.unpack(("<" if self.little else ">") + "HH" * count, raw[:4 * count])
            return attribute(vr, [f"{words[i]:04X}{words[i + 1]:04X}" for i in range(0, len(words), 2)])
        code = _NUMBER_FORMATS.get(vr)
        if code is not None:
            size = struct.calcsize("<" + code)
            count = len(raw) // size
            numbers = struct.unpack(("<" if self.little else ">") + code * count, raw[:count * size])
            if code in "fd":
                return attribute(vr, [x if x == x and abs(x) != float("inf") else None for x in numbers])
            return attribute(vr, list(numbers))
        return {"vr": vr, "BulkDataURI": f"{bulk}/{tag:08x}"}  # unknown VR: as bytes


def instance_json(parsed: ParsedFile, default_codec: str, instance_path: str, only: Iterable[int] | None = None) -> Json:
    """The metadata of one instance; `instance_path` is `studies/{s}/series/{se}/instances/{i}`."""
    return Converter(parsed, default_codec).dataset(parsed.dataset, f"{instance_path}/bulk", only)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def absolute(body: bytes, base: str) -> bytes:
    """Compact JSON with relative bulk data URIs -> the same with absolute ones.

    Safe on compact orjson output: a quote inside a value is always escaped, so `"BulkDataURI":"` can
    only be a member name followed by its value.
    """
    if _BULK_KEY not in body:
        return body
    return body.replace(_BULK_KEY, _BULK_KEY + base.encode("utf-8"))


def absolute_tree(value: Any, base: str) -> Any:
    """`absolute` on a JSON tree (for the XML output)."""
    if isinstance(value, dict):
        return {k: (base + v if k == "BulkDataURI" and isinstance(v, str) else absolute_tree(v, base))
                for k, v in value.items()}
    if isinstance(value, list):
        return [absolute_tree(v, base) for v in value]
    return value


# -- XML (PS3.19 Native DICOM Model) ----------------------------------------------------------------

_XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">'


def to_xml(dataset: Json) -> bytes:
    """One data set as a NativeDicomModel document (bulk data URIs must already be absolute)."""
    parts: list[str] = []
    _xml_dataset(dataset, parts)
    return _XML_HEAD + "".join(parts).encode("utf-8") + b"</NativeDicomModel>\n"


def _xml_dataset(dataset: Json, parts: list[str]) -> None:
    for key in sorted(dataset):
        node = dataset[key]
        tag = int(key, 16)
        vr = node.get("vr", "UN")
        name = tag_name(tag)
        keyword = f' keyword="{name}"' if name != "Unknown Tag & Data" else ""
        parts.append(f'<DicomAttribute tag="{key}" vr="{vr}"{keyword}>')
        if "BulkDataURI" in node:
            parts.append(f"<BulkData uri={quoteattr(node['BulkDataURI'])}/>")
        elif "InlineBinary" in node:
            parts.append(f"<InlineBinary>{node['InlineBinary']}</InlineBinary>")
        for i, value in enumerate(node.get("Value", []), start=1):
            if vr == "SQ":
                parts.append(f'<Item number="{i}">')
                _xml_dataset(value or {}, parts)
                parts.append("</Item>")
            elif vr == "PN":
                parts.append(f'<PersonName number="{i}">')
                for group in _PN_GROUPS:
                    text = (value or {}).get(group)
                    if text:
                        parts.append(f"<{group}>")
                        for part, comp in zip(_PN_PARTS, text.split("^"), strict=False):
                            if comp:
                                parts.append(f"<{part}>{escape(comp)}</{part}>")
                        parts.append(f"</{group}>")
                parts.append("</PersonName>")
            elif value is None:
                parts.append(f'<Value number="{i}"/>')
            else:
                parts.append(f'<Value number="{i}">{escape(str(value))}</Value>')
        parts.append("</DicomAttribute>")


# -- Orthanc's "qido" route of remote servers: one readable member per attribute -------------------------

def simplified(dataset: Json) -> Json:
    """What `POST /dicom-web/servers/{name}/qido` answers for each match (Orthanc's DICOMweb client)."""
    out: Json = {}
    for key, node in dataset.items():
        tag = int(key, 16)
        item: Json = {"Group": tag >> 16, "Element": tag & 0xFFFF, "Name": tag_name(tag), "vr": node.get("vr")}
        values = node.get("Value")
        if values:
            first = values[0]
            if isinstance(first, dict) and node.get("vr") == "PN":
                item["Value"] = first.get("Alphabetic", "")
            elif isinstance(first, str | int | float) and not isinstance(first, bool):
                item["Value"] = first if isinstance(first, str) else str(first)
        out[key] = item
    return out
