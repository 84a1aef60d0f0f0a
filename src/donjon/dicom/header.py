"""A single-pass scanner of a DICOM file's element headers.

It records the top-level elements before the pixel data (tag, VR, value bytes) and checks that every
element of the file, nested ones included, fits in the buffer; values are never converted. This is
what ingest needs, at a small fraction of the cost of building a pydicom Dataset, and it refuses the
truncated or malformed files that DCMTK refuses.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR

from .. import limits

PIXEL_DATA = 0x7FE00010
DEFLATED = "1.2.840.10008.1.2.1.99"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_VALID_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT",
                        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST",
                        b"SV", b"TM", b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV"})
_LE = struct.Struct("<HHL")
_BE = struct.Struct(">HHL")
_LE_EXPLICIT = struct.Struct("<HH2sH")
_BE_EXPLICIT = struct.Struct(">HH2sH")


class MalformedDicom(ValueError):
    """The bytes are not a well-formed DICOM file."""


@dataclass(slots=True)
class RawElement:
    """One element as found in the file (value bytes not decoded); `VR` is None in implicit VR."""

    tag: int
    VR: str | None
    value: bytes | None


@dataclass(slots=True)
class Header:
    meta: dict[int, RawElement] = field(default_factory=dict)
    elements: dict[int, RawElement] = field(default_factory=dict)
    implicit: bool = False
    little: bool = True
    transfer_syntax: str | None = None
    pixel_data_offset: int | None = None
    pixel_data_vr: str | None = None
    dataset_start: int = 0
    has_preamble: bool = False
    count: int = 0  # elements seen, nested ones included (`MaximumDicomElements`)
    max_elements: int = 0
    max_depth: int = 0


def scan(buf: bytes) -> Header:
    """Scan a whole file; raises MalformedDicom, also past the limits of sequence depth, number of
    elements and inflated size (limits.py), so that the work stays linear and bounded for any input."""
    bounds = limits.current()
    h = Header(max_elements=bounds.elements, max_depth=bounds.sequence_depth)
    pos = 0
    if len(buf) >= 132 and buf[128:132] == b"DICM":
        pos = 132
        h.has_preamble = True
    pos = _scan_meta(buf, pos, h)
    h.dataset_start = pos
    ts = _meta_string(h, 0x00020010)
    if ts:
        h.transfer_syntax = ts
    if ts == DEFLATED:
        try:
            d = zlib.decompressobj(-zlib.MAX_WBITS)
            body = d.decompress(buf[pos:], bounds.decompressed)
        except zlib.error as e:
            raise MalformedDicom(f"bad deflated data: {e}") from None
        if d.unconsumed_tail:
            raise MalformedDicom("deflated data set too large")
        h.implicit, h.little = False, True
        _scan_dataset(body, 0, len(body), h, record=True, allow_offset=False)
        return h
    if ts == IMPLICIT_LE:
        h.implicit, h.little = True, True
    elif ts == EXPLICIT_BE:
        h.implicit, h.little = False, False
    elif (ts is not None and ts.startswith("1.2.840.10008.1.2.")) or ts == EXPLICIT_LE:
        h.implicit, h.little = False, True
    else:
        h.implicit, h.little = _guess_encoding(buf, pos)
        if not ts:
            h.transfer_syntax = IMPLICIT_LE if h.implicit else (EXPLICIT_LE if h.little else EXPLICIT_BE)
    if pos >= len(buf):
        raise MalformedDicom("no data set")
    _scan_dataset(buf, pos, len(buf), h, record=True, allow_offset=True)
    if not h.elements:
        raise MalformedDicom("empty data set")
    return h


def _meta_string(h: Header, tag: int) -> str | None:
    elem = h.meta.get(tag)
    if elem is None or elem.value is None:
        return None
    return "".join(elem.value.decode("latin_1").split()).rstrip("\x00") or None


def _scan_meta(buf: bytes, pos: int, h: Header) -> int:
    n = len(buf)
    while pos + 8 <= n:
        group = buf[pos] | (buf[pos + 1] << 8)
        if group != 0x0002:
            break
        tag = (group << 16) | (buf[pos + 2] | (buf[pos + 3] << 8))
        vr = buf[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > n:
                raise MalformedDicom("truncated meta header")
            length = struct.unpack_from("<L", buf, pos + 8)[0]
            pos += 12
        elif vr in _VALID_VRS:
            length = struct.unpack_from("<H", buf, pos + 6)[0]
            pos += 8
        else:
            raise MalformedDicom("bad VR in the meta header")
        if length == _UNDEFINED or pos + length > n:
            raise MalformedDicom("truncated meta header")
        h.meta[tag] = RawElement(tag, vr.decode("ascii"), buf[pos:pos + length])
        pos += length
    return pos


def _guess_encoding(buf: bytes, pos: int) -> tuple[bool, bool]:
    """(implicit, little) of a data set without a usable transfer syntax, from its first element."""
    if pos + 8 > len(buf):
        raise MalformedDicom("truncated data set")
    little = not (buf[pos] == 0 and buf[pos + 1] != 0)
    implicit = buf[pos + 4:pos + 6] not in _VALID_VRS
    return implicit, little


def _dictionary_vr(tag: int) -> str | None:
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return None


def _scan_dataset(buf: bytes, pos: int, end: int, h: Header, record: bool, allow_offset: bool,
                  depth: int = 0, item: bool = False, implicit: bool | None = None) -> int:
    """Walk the elements in [pos, end); with `item`, stop after an item delimitation item."""
    if depth > h.max_depth:
        raise MalformedDicom("sequences nested too deeply")
    implicit = h.implicit if implicit is None else implicit
    little = h.little
    hdr = _LE if little else _BE
    hdr_explicit = _LE_EXPLICIT if little else _BE_EXPLICIT
    long_len = "<L" if little else ">L"
    elements = h.elements
    before_pixels = True
    while pos < end:
        if pos + 8 > end:
            if depth == 0 and not item and not buf[pos:end].strip(b"\x00"):
                return end  # trailing padding
            raise MalformedDicom("truncated element header")
        group, elem, length = hdr.unpack_from(buf, pos)
        start = pos
        h.count += 1
        if h.count > h.max_elements:
            raise MalformedDicom("too many data elements")
        if group == 0xFFFE:
            if elem == 0xE00D and item:
                return pos + 8
            raise MalformedDicom("unexpected delimiter")
        tag = (group << 16) | elem
        if implicit:
            vr_text: str | None = None
            pos += 8
        else:
            _, _, vr, short_len = hdr_explicit.unpack_from(buf, pos)
            if vr in _LONG_VRS:
                if pos + 12 > end:
                    raise MalformedDicom("truncated element header")
                length = struct.unpack_from(long_len, buf, pos + 8)[0]
                pos += 12
            elif vr in _VALID_VRS:
                length = short_len
                pos += 8
            else:
                raise MalformedDicom("bad VR")
            vr_text = vr.decode("ascii")
        is_pixels = tag == PIXEL_DATA and depth == 0
        if is_pixels and allow_offset and record and before_pixels:
            h.pixel_data_offset = start
            h.pixel_data_vr = vr_text
            before_pixels = False
        if length == _UNDEFINED:
            if tag == PIXEL_DATA:
                pos = _scan_fragments(buf, pos, end, h)
            else:
                seq_implicit = implicit or vr_text == "UN"
                pos = _scan_sequence(buf, pos, end, h, depth + 1, seq_implicit)
                if record and depth == 0 and before_pixels:
                    elements[tag] = RawElement(tag, "SQ", None)
            continue
        if pos + length > end:
            raise MalformedDicom("truncated element value")
        is_sequence = vr_text == "SQ" or (implicit and _dictionary_vr(tag) == "SQ")
        if is_sequence:
            _scan_sequence_defined(buf, pos, pos + length, h, depth + 1, implicit)
            if record and depth == 0 and before_pixels:
                elements[tag] = RawElement(tag, "SQ", None)
        elif record and depth == 0 and before_pixels:
            elements[tag] = RawElement(tag, vr_text, buf[pos:pos + length])
        pos += length
    if item:
        raise MalformedDicom("missing item delimiter")
    return pos


def _scan_sequence(buf: bytes, pos: int, end: int, h: Header, depth: int, implicit: bool) -> int:
    while True:
        elem, length = _item_header(buf, pos, end, h, "truncated sequence", "bad item")
        pos += 8
        if elem == 0xE0DD:
            return pos
        if elem != 0xE000:
            raise MalformedDicom("bad item tag")
        pos = _scan_item(buf, pos, end, h, depth, implicit, length)


def _scan_sequence_defined(buf: bytes, pos: int, end: int, h: Header, depth: int, implicit: bool) -> None:
    while pos < end:
        elem, length = _item_header(buf, pos, end, h, "truncated item", "bad item tag")
        pos += 8
        if elem != 0xE000:
            raise MalformedDicom("bad item tag")
        pos = _scan_item(buf, pos, end, h, depth, implicit, length)


def _item_header(buf: bytes, pos: int, end: int, h: Header, truncated: str, bad: str) -> tuple[int, int]:
    """(element, length) of the 8-byte item (or delimiter) header at `pos`, counted as an element.

    Shared by sequences and pixel data fragments, which differ only in their error messages: `truncated`
    when the header does not fit, `bad` when its tag is not in group FFFE.
    """
    if pos + 8 > end:
        raise MalformedDicom(truncated)
    group, elem, length = (_LE if h.little else _BE).unpack_from(buf, pos)
    _count(h)
    if group != 0xFFFE:
        raise MalformedDicom(bad)
    return elem, length


def _scan_item(buf: bytes, pos: int, end: int, h: Header, depth: int, implicit: bool, length: int) -> int:
    """Scan the data set of one sequence item starting at `pos`; returns the position after it."""
    if length == _UNDEFINED:
        return _scan_dataset(buf, pos, end, h, False, False, depth, item=True, implicit=implicit)
    if pos + length > end:
        raise MalformedDicom("truncated item")
    _scan_dataset(buf, pos, pos + length, h, False, False, depth, implicit=implicit)
    return pos + length


def _count(h: Header) -> None:
    h.count += 1
    if h.count > h.max_elements:
        raise MalformedDicom("too many data elements")


def _scan_fragments(buf: bytes, pos: int, end: int, h: Header) -> int:
    while True:
        elem, length = _item_header(buf, pos, end, h, "truncated pixel data", "bad fragment")
        pos += 8
        if elem == 0xE0DD:
            return pos
        if elem != 0xE000 or length == _UNDEFINED or pos + length > end:
            raise MalformedDicom("bad fragment")
        pos += length
