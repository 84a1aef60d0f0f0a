"""Tag names and types as Orthanc's DCMTK sees them, and Orthanc's ways of writing and reading tags.

Names and implicit-VR types come from DCMTK's dictionaries as Orthanc loads them (`dcmtk_names` holds
where they differ from pydicom's); private tags are looked up with their private creator; Orthanc
renames a few main tags (`OtherPatientIDs`).
"""

from __future__ import annotations

import re

from pydicom.datadict import DicomDictionary

from ..errors import ErrorCode, OrthancError
from . import dcmtk_names

UNKNOWN_NAME = "Unknown Tag & Data"
# pydicom's spelling of DCMTK's context-dependent VRs (for implicit-VR files).
_PYDICOM_AMBIGUOUS_VRS = {"US or SS": "xs", "OB or OW": "ox", "US or SS or OW": "lt", "US or OW": "lt"}

_PARITY_OK = {"any": lambda n: True, "even": lambda n: n % 2 == 0, "odd": lambda n: n % 2 == 1}
# Orthanc's `DicomTag::GetMainTagsName()` renames a few main tags; only this one differs from DCMTK 3.6.7
# (which says "RETIRED_OtherPatientIDs").
_ORTHANC_NAMES = {0x00101000: "OtherPatientIDs"}


def is_private(group: int) -> bool:
    """DCMTK's `isPrivate()`: odd groups except the illegal 1, 3, 5, 7 and FFFF."""
    return group & 1 == 1 and group not in (1, 3, 5, 7, 0xFFFF)


_ENTRY_CACHE: dict[tuple[int, str | None], tuple[str, str] | None] = {}


def dictionary_entry(tag: int, creator: str | None = None) -> tuple[str, str] | None:
    """(DCMTK VR, name) as Orthanc's DCMTK sees them, or None when its dictionary does not know the tag."""
    key = (int(tag), creator)
    try:
        return _ENTRY_CACHE[key]
    except KeyError:
        pass
    entry = _lookup(key[0], creator)
    if len(_ENTRY_CACHE) < 100_000:  # bounded: private creators come from the files
        _ENTRY_CACHE[key] = entry
    return entry


def _lookup(tag: int, creator: str | None) -> tuple[str, str] | None:
    group, element = tag >> 16, tag & 0xFFFF
    if creator is not None:
        entry = dcmtk_names.PRIVATE.get((group, creator, element))
        if entry is None:
            entry = dcmtk_names.PRIVATE.get((group, creator, element & 0xFF))
        if entry is not None:
            return entry
        for g1, g2, parity, c, e, vr, name in dcmtk_names.PRIVATE_REPEATING:
            if c == creator and g1 <= group <= g2 and _PARITY_OK[parity](group) and e == element & 0xFF:
                return vr, name
        return None
    if tag not in dcmtk_names.NOT_IN_DCMTK:
        known = DicomDictionary.get(tag)
        if known is not None:
            vr = dcmtk_names.VRS.get(tag) or _PYDICOM_AMBIGUOUS_VRS.get(known[0], known[0])
            return vr, _ORTHANC_NAMES.get(tag) or dcmtk_names.NAMES.get(tag, known[4])
        name = dcmtk_names.NAMES.get(tag)
        if name is not None:
            return dcmtk_names.VRS[tag], name
    for g1, g2, gpar, e1, e2, epar, vr, name in dcmtk_names.REPEATING:
        if g1 <= group <= g2 and e1 <= element <= e2 and _PARITY_OK[gpar](group) and _PARITY_OK[epar](element):
            return vr, name
    return None


def tag_name(tag: int, creator: str | None = None) -> str:
    entry = dictionary_entry(tag, creator)
    return entry[1] if entry is not None else UNKNOWN_NAME


_FORMATTED: dict[int, str] = {}


def format_tag(tag: int) -> str:
    """`gggg,eeee`, Orthanc's key (cached: the same few thousand tags come back all the time)."""
    text = _FORMATTED.get(tag)
    if text is None:
        text = f"{tag >> 16:04x},{tag & 0xFFFF:04x}"
        if len(_FORMATTED) < 100_000:
            _FORMATTED[int(tag)] = text
    return text


_HEX_TAG = re.compile(r"^([0-9A-Fa-f]{4})[-,]?([0-9A-Fa-f]{4})$")
_NAMES_TO_TAGS: dict[str, int] = {}


def parse_tag(text: str) -> int:
    """Orthanc's `FromDcmtkBridge::ParseTag()`: `gggg-eeee`, `gggg,eeee`, `ggggeeee` or a DCMTK name.

    An unknown name raises UnknownDicomTag (Orthanc answers 500 code 27).
    """
    match = _HEX_TAG.match(text)
    if match is not None and (len(text) == 8 or len(text) == 9):
        return int(match[1], 16) << 16 | int(match[2], 16)
    if not _NAMES_TO_TAGS:
        _NAMES_TO_TAGS.update(_dcmtk_public_names())
    tag = _NAMES_TO_TAGS.get(text)
    if tag is None:
        raise OrthancError(ErrorCode.UNKNOWN_DICOM_TAG)
    return tag


def _dcmtk_public_names() -> dict[str, int]:
    names: dict[str, int] = {}
    for g1, _g2, _gp, e1, _e2, _ep, _vr, name in reversed(dcmtk_names.REPEATING):
        names[name] = g1 << 16 | e1
    for tag, known in DicomDictionary.items():
        if tag not in dcmtk_names.NOT_IN_DCMTK and tag not in dcmtk_names.NAMES and known[4]:
            names[known[4]] = tag
    for tag, name in dcmtk_names.NAMES.items():
        names[name] = tag
    return names
