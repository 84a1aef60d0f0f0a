"""Encoding C-FIND answers: flat string values written directly, sequences through pydicom.

Writing the flat elements ourselves keeps pydicom's value validation out of the way: an answer
repeats whatever the stored data holds, well-formed or not, as Orthanc does.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from ..core.dicom_query import DicomQuery, FindAnswer
from ..dicom.values import DEFAULT_ENCODINGS, dictionary_vr

# Orthanc's DefaultEncoding -> the SpecificCharacterSet of its answers
SPECIFIC_CHARACTER_SETS = {
    "Ascii": "ISO_IR 6", "Utf8": "ISO_IR 192", "Latin1": "ISO_IR 100", "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109", "Latin4": "ISO_IR 110", "Latin5": "ISO_IR 148", "Cyrillic": "ISO_IR 144",
    "Windows1251": "ISO_IR 144", "Arabic": "ISO_IR 127", "Greek": "ISO_IR 126", "Hebrew": "ISO_IR 138",
    "Thai": "ISO_IR 166", "Japanese": "ISO_IR 13", "Chinese": "GB18030", "JapaneseKanji": "\\ISO 2022 IR 87",
    "Korean": "\\ISO 2022 IR 149", "SimplifiedChinese": "\\ISO 2022 IR 58",
}
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"})
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_TEXT = frozenset({"SH", "LO", "ST", "LT", "UT", "PN", "UC"})
_ASCII = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI", "UR"})


def encode_value(vr: str, text: str, codec: str, little: bool) -> bytes:
    """The bytes of a value given as Orthanc's string (numbers `\\`-separated), padded to even."""
    if vr in _NUMBERS:
        fmt = _NUMBERS[vr]
        try:
            numbers = [float(x) if fmt in "fd" else int(x) for x in text.split("\\")] if text else []
            return struct.pack(("<" if little else ">") + fmt * len(numbers), *numbers)
        except (ValueError, struct.error):
            return b""
    if vr in _TEXT:
        data = text.encode(codec, "ignore")  # Orthanc drops what the charset cannot hold
    elif vr in _ASCII:
        data = text.encode("ascii", "ignore")
    else:
        return b""  # binary values are never sent
    if len(data) % 2:
        data += b"\x00" if vr == "UI" else b" "
    return data


class AnswerEncoder:
    """Encodes answers for one presentation context and one DefaultEncoding."""

    def __init__(self, default_encoding: str, implicit: bool, little: bool, deflated: bool):
        self.charset = SPECIFIC_CHARACTER_SETS.get(default_encoding, "ISO_IR 100")
        self.codec = DEFAULT_ENCODINGS.get(default_encoding, "latin_1")
        self.implicit, self.little, self.deflated = implicit, little, deflated
        self._endian = "<" if little else ">"

    def encode(self, answer: FindAnswer, q: DicomQuery) -> bytes:
        query_vrs = {e.tag: e.vr for e in q.elements}
        parts: list[tuple[int, bytes]] = [(0x00080005, self._element(0x00080005, "CS", self.charset))]
        for tag, value in answer.values.items():
            vr = dictionary_vr(tag)
            if vr == "UN" or " or " in vr:
                vr = query_vrs.get(tag, "UN")
            parts.append((tag, self._element(tag, vr, value)))
        for tag, elem in answer.sequences.items():
            parts.append((tag, self._sequence(elem)))
        body = b"".join(p for _, p in sorted(parts, key=lambda x: x[0]))
        if self.deflated:
            c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
            body = c.compress(body) + c.flush()
        return body

    def _element(self, tag: int, vr: str, text: str) -> bytes:
        value = encode_value(vr, text, self.codec, self.little)
        e = self._endian
        if self.implicit:
            return struct.pack(e + "HHL", tag >> 16, tag & 0xFFFF, len(value)) + value
        if vr in _LONG_VRS:
            return struct.pack(e + "HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
        return struct.pack(e + "HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value

    def _sequence(self, elem: Any) -> bytes:
        ds = Dataset()
        ds.SpecificCharacterSet = self.charset
        ds.add(elem)
        data = encode(ds, self.implicit, self.little, False) or b""
        return data[len(self._element(0x00080005, "CS", self.charset)):]  # drop the charset element
