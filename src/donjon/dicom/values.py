"""Turn DICOM element values into the strings Orthanc shows, the way DCMTK normalises them.

Values are read from pydicom's raw elements (bytes), so pydicom's own conversions (numbers for DS/IS,
PersonName objects...) are never paid for; only the padding rules of DCMTK are applied.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import dictionary_VR

MAX_STRING_LENGTH = 256  # longer values are NULL in main tags and "TooLong" in /tags

# VRs whose bytes are text in the dataset's character set.
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})
# VRs that are plain ASCII strings.
ASCII_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"})
STRING_VRS = TEXT_VRS | ASCII_VRS
_MULTI_LINE_VRS = frozenset({"ST", "LT", "UT"})
_NUMERIC_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_PN_DELIMS = {0x5C, 0x5E, 0x3D}  # backslash, caret, equal
_TEXT_DELIMS = {0x5C}
_MULTI_LINE_DELIMS = {0x0D, 0x0A, 0x09, 0x0C}

DEFAULT_ENCODINGS = {
    # Orthanc's `DefaultEncoding` option -> Python codecs used when a file has no charset.
    "Ascii": "ascii", "Utf8": "utf_8", "Latin1": "latin_1", "Latin2": "iso8859_2",
    "Latin3": "iso8859_3", "Latin4": "iso8859_4", "Latin5": "iso8859_9", "Cyrillic": "iso8859_5",
    "Windows1251": "cp1251", "Arabic": "iso8859_6", "Greek": "iso8859_7", "Hebrew": "iso8859_8",
    "Thai": "iso8859_11", "Japanese": "shift_jis", "Chinese": "gb18030", "Korean": "euc_kr",
    "JapaneseKanji": "iso2022_jp", "SimplifiedChinese": "gb2312",
}


def element_vr(raw: Any) -> str:
    """The VR of a raw element; implicit-VR elements take the dictionary's."""
    vr = raw.VR
    if vr is None:
        return dictionary_vr(int(raw.tag))
    return vr


@lru_cache(maxsize=8192)
def dictionary_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


def dataset_encodings(specific_character_set: bytes | str | Sequence[str] | None, default: str) -> list[str]:
    """Python codecs for a SpecificCharacterSet value; `default` when there is none."""
    if specific_character_set is None:
        return [default]
    if isinstance(specific_character_set, bytes):
        text = specific_character_set.decode("ascii", "replace").strip(" \x00")
        values = [v.strip() for v in text.split("\\")] if text else []
    elif isinstance(specific_character_set, str):
        values = [specific_character_set]
    else:
        values = list(specific_character_set)
    if not values or values == [""]:
        return [default]
    try:
        return convert_encodings(values)
    except Exception:  # unknown charset: fall back like Orthanc does on the default encoding
        return [default]


def decode_string(value: bytes, vr: str, encodings: list[str]) -> str:
    """DCMTK's view of a string element: cut at the first NUL, drop trailing padding, UTF-8."""
    if vr == "UI":
        nul = value.find(b"\x00")
        if nul >= 0:
            value = value[:nul]
        return "".join(value.decode("latin_1").split())
    nul = value.find(b"\x00")
    if nul >= 0:
        value = value[:nul]
    value = value.rstrip(b" ")
    if vr in TEXT_VRS and (not value.isascii() or b"\x1b" in value):
        if vr == "PN":
            delims = _PN_DELIMS
        elif vr in _MULTI_LINE_VRS:
            delims = _MULTI_LINE_DELIMS
        else:
            delims = _TEXT_DELIMS
        try:
            return decode_bytes(value, encodings, delims)
        except Exception:
            return value.decode("latin_1")
    return value.decode("latin_1") if not value.isascii() else value.decode("ascii")


def decode_numbers(value: bytes, vr: str, little_endian: bool = True) -> str | None:
    fmt = _NUMERIC_FORMATS.get(vr)
    if fmt is None:
        if vr == "AT":
            n = len(value) // 4
            items = struct.unpack(("<" if little_endian else ">") + "HH" * n, value[: 4 * n])
            return "\\".join(f"{items[i]:04x},{items[i + 1]:04x}" for i in range(0, len(items), 2))
        return None
    size = struct.calcsize("<" + fmt)
    n = len(value) // size
    if n == 0:
        return ""
    numbers = struct.unpack(("<" if little_endian else ">") + fmt * n, value[: n * size])
    if vr == "FL":
        return "\\".join(_format_float(x, 9) for x in numbers)
    if vr == "FD":
        return "\\".join(_format_float(x, 17) for x in numbers)
    return "\\".join(str(x) for x in numbers)


def _format_float(x: float, digits: int) -> str:
    text = f"{x:.{digits}g}"
    return text


def raw_to_string(raw: Any, encodings: list[str], little_endian: bool = True) -> str | None:
    """Orthanc's string of a leaf element, or None when it has no string form (binary)."""
    vr = element_vr(raw)
    value = raw.value
    if value is None:
        return ""
    if not isinstance(value, bytes | bytearray):
        return None
    if vr in STRING_VRS:
        return decode_string(bytes(value), vr, encodings)
    return decode_numbers(bytes(value), vr, little_endian)
