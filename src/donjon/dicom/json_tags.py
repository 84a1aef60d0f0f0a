"""Orthanc's views of a stored file's content (`/tags`, `/header`, `/shared-tags`, `/content`, `/frames`).

Orthanc 1.10.1 converts a DCMTK dataset; Donjon reads pydicom's raw elements (bytes, never decoded
by pydicom) and applies DCMTK's and Orthanc's rules itself, so answers are equal in content:

* names and implicit-VR types come from DCMTK's dictionaries as Orthanc loads them (`dcmtk_names`
  holds where they differ from pydicom's); private tags are looked up with the private creator
  reserved in the same item; Orthanc renames a few main tags (`OtherPatientIDs`);
* strings: trailing padding removed as DCMTK does, then converted to UTF-8 with the one encoding
  Orthanc detects for the whole file (first non-empty term of SpecificCharacterSet; with several
  terms, ISO 2022 escape sequences are dropped after the conversion, as Orthanc does);
* numbers (US SS UL SL FL FD): all values `\\`-separated, floats printed as doubles with 17
  significant digits; AT: first value only; empty numbers and binary or DCMTK-internal VRs (OB OW
  OF UN ox xs lt...) are `Null`; strings over 256 UTF-8 bytes are `TooLong`;
* the top-level dataset stops at the pixel data, which is shown as `Null` (`?whole` keeps the rest);
* the meta header is split from the dataset by its group length, as DCMTK reads it.

The full format is computed once; `simplify()` derives the short and human formats from it exactly
like Orthanc's `Toolbox::SimplifyDicomAsJson` (so name collisions resolve the same way).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filereader import read_partial, read_sequence
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from ..core.views import TagFormat
from ..errors import ErrorCode, OrthancError
from .tag_dictionary import UNKNOWN_NAME, dictionary_entry, format_tag, is_private, parse_tag

PIXEL_DATA = 0x7FE00010
SPECIFIC_CHARACTER_SET = 0x00080005
NUMBER_OF_FRAMES = 0x00280008
MAX_STRING_LENGTH = 256  # ORTHANC_MAXIMUM_TAG_LENGTH: longer strings are "TooLong" in /tags

Json = dict[str, Any]
Element = RawDataElement | DataElement

# VRs of the elements DCMTK stores as strings (`isaString()`).
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                        "UI", "UR", "UT"})
# VRs Orthanc prints as numbers; every other leaf (OB OW OF OD OL OV UN SV UV, DCMTK's ox xs lt up na) is Null.
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
# Orthanc's `IsBinaryTag()`: skipped by `/header` (no IncludeBinary flag there).
_BINARY_VRS = frozenset({"OB", "OW", "UN", "ox"})
# Size of the words DCMTK swaps to the host's (little-endian) order when it sends a raw value.
_SWAP_SIZES = {"US": 2, "SS": 2, "OW": 2, "AT": 2, "xs": 2, "lt": 2, "UL": 4, "SL": 4, "FL": 4, "OF": 4,
               "OL": 4, "up": 4, "FD": 8, "OD": 8, "SV": 8, "UV": 8, "OV": 8}
_LONG_HEADER_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
# Transfer syntaxes of videos: Orthanc counts one frame whatever NumberOfFrames says.
_VIDEO_SYNTAXES = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in range(100, 109))

# -- character sets -----------------------------------------------------------------------------------

# Orthanc's `GetDicomEncoding()`: SpecificCharacterSet term -> Python codec ("ascii" = Orthanc's ASCII).
_CHARSETS = {
    "ISO_IR 6": "ascii", "ISO 2022 IR 6": "ascii", "ISO_IR 192": "utf_8",
    "ISO_IR 100": "latin_1", "ISO 2022 IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2", "ISO 2022 IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3", "ISO 2022 IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4", "ISO 2022 IR 110": "iso8859_4",
    "ISO_IR 148": "iso8859_9", "ISO 2022 IR 148": "iso8859_9",
    "ISO_IR 144": "iso8859_5", "ISO 2022 IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6", "ISO 2022 IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7", "ISO 2022 IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8", "ISO 2022 IR 138": "iso8859_8",
    "ISO_IR 166": "tis_620", "ISO 2022 IR 166": "tis_620",
    "ISO_IR 13": "shift_jis", "ISO 2022 IR 13": "shift_jis",
    "GB18030": "gb18030", "GBK": "gb18030",
    "ISO 2022 IR 149": "euc_kr", "ISO 2022 IR 87": "iso2022_jp", "ISO 2022 IR 58": "gb2312",
}
# iconv's Shift_JIS (behind Orthanc's boost::locale) reads these two bytes as JIS X 0201 Roman.
_SHIFT_JIS_ROMAN = str.maketrans({"\\": "\u00a5", "~": "\u203e"})
_ISO2022_ESCAPE = re.compile(r"\x1b[\x20-\x2f]*[\x30-\x7e]")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")
_WHITE_SPACE = b" \t\n\v\f\r"


@dataclass(frozen=True, slots=True)
class Charset:
    """The single encoding Orthanc uses for every string of a file."""

    codec: str
    code_extensions: bool = False

    def decode(self, value: bytes) -> str:
        """Orthanc's `Toolbox::ConvertToUtf8()`: invalid bytes are skipped, not replaced."""
        if self.codec == "ascii":  # Orthanc's ConvertToAscii keeps printable ASCII only
            return _NOT_PRINTABLE_ASCII.sub("", value.decode("latin_1"))
        try:
            text = value.decode(self.codec, "ignore")
        except LookupError:
            text = value.decode("latin_1")
        if self.codec == "shift_jis":
            text = text.translate(_SHIFT_JIS_ROMAN)
        if self.code_extensions:
            text = _ISO2022_ESCAPE.sub("", text)
        return text


def detect_charset(raw: bytes | None, default_codec: str) -> Charset:
    """Orthanc's `DetectEncoding()`: the first non-empty term decides (an unsupported one means ASCII)."""
    if raw is None:
        return Charset(default_codec)
    terms = _strip_padding(raw, "CS").decode("latin_1").split("\\")
    codec = default_codec
    for term in terms:
        term = term.strip(" ").upper()
        if term:
            codec = _CHARSETS.get(term, "ascii")
            break
    return Charset(codec, len(terms) > 1)


def _strip_padding(value: bytes, vr: str) -> bytes:
    """DCMTK's `getString()`: trailing padding removed, then the value is a C string (cut at a NUL)."""
    value = value.translate(None, _WHITE_SPACE) if vr == "UI" else value.rstrip(b" ")
    nul = value.find(b"\x00")
    return value if nul < 0 else value[:nul]


# -- reading ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ParsedFile:
    """A file read up to (or past) its pixel data, with what the conversions need."""

    dataset: Dataset
    meta: Dataset
    implicit: bool
    little_endian: bool
    has_pixel_data: bool

    @property
    def transfer_syntax(self) -> str | None:
        elem = self.meta._dict.get(0x00020010)
        raw = _value_bytes(elem) if elem is not None else None
        return _strip_padding(raw, "UI").decode("latin_1") if raw else None


def read_dicom(data: bytes, whole: bool = False, pixel_data_follows: bool = False) -> ParsedFile:
    """Parse `data` with pydicom, stopping before the pixel data unless `whole`.

    The pixel data itself is not read (its presence is enough: Orthanc shows it as `Null`); `data`
    may also be a header cut right before the pixel data (`pixel_data_follows`).
    """
    seen_pixels = False

    def stop(tag: BaseTag, vr: str | None, length: int) -> bool:
        nonlocal seen_pixels
        if tag == PIXEL_DATA:
            seen_pixels = True
            return not whole
        return False

    fp = io.BytesIO(data)
    try:
        ds = read_partial(fp, stop_when=stop, force=True)
    except (EOFError, OSError, ValueError, struct.error, NotImplementedError, KeyError, TypeError,
            IndexError) as e:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot parse the stored DICOM file: {e}") from None
    implicit, little = ds.original_encoding
    implicit = bool(implicit) if implicit is not None else False
    little = bool(little) if little is not None else True
    if not seen_pixels and not whole:
        seen_pixels = pixel_data_follows or data[fp.tell():fp.tell() + 4] == (b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10")
    meta = ds.file_meta
    _restore_raw(meta, data, False, True)
    if not _is_deflated(meta):  # else the data set's offsets are offsets in the inflated stream
        _restore_raw(ds, data, implicit, little)
        _split_meta_like_dcmtk(data, meta, ds)
    return ParsedFile(ds, meta, implicit, little, seen_pixels)


def _is_deflated(meta: Dataset) -> bool:
    elem = meta._dict.get(0x00020010)
    raw = _value_bytes(elem) if elem is not None else None
    return raw is not None and _strip_padding(raw, "UI") == b"1.2.840.10008.1.2.1.99"


def _restore_raw(ds: Dataset, data: bytes, implicit: bool, little: bool) -> None:
    """Put back the raw bytes of the few elements pydicom decodes while reading (SpecificCharacterSet,
    TransferSyntaxUID...), so that padding is seen as DCMTK sees it."""
    for tag, elem in list(ds._dict.items()):
        if not isinstance(elem, DataElement) or isinstance(elem.value, Sequence) or elem.file_tell is None:
            continue
        pos = elem.file_tell
        endian = "<" if little else ">"
        if implicit or (elem.VR in _LONG_HEADER_VRS):
            length = struct.unpack_from(endian + "I", data, pos - 4)[0] if pos >= 4 else None
        else:
            length = struct.unpack_from(endian + "H", data, pos - 2)[0] if pos >= 2 else None
        if length is None or length == 0xFFFFFFFF or pos + length > len(data):
            continue
        ds._dict[tag] = RawDataElement(BaseTag(tag), None if implicit else elem.VR, length,
                                       data[pos:pos + length], pos, implicit, little)


def _split_meta_like_dcmtk(data: bytes, meta: Dataset, ds: Dataset) -> None:
    """DCMTK reads the meta header by its group length (0002,0000), pydicom by group number.

    When they disagree (a data set element counted in the group length, or a 0002 element past it),
    move elements so that `/header` and `/tags` show what Orthanc shows.
    """
    start = 132 if data[128:132] == b"DICM" else 0
    if data[start:start + 6] != b"\x02\x00\x00\x00UL" or len(data) < start + 12:
        return
    end = start + 12 + int.from_bytes(data[start + 8:start + 12], "little")

    def header_start(elem: Element) -> int | None:
        tell = elem.value_tell if isinstance(elem, RawDataElement) else elem.file_tell
        if tell is None:
            return None
        implicit = isinstance(elem, RawDataElement) and elem.is_implicit_VR
        return tell - (12 if not implicit and (elem.VR or "") in _LONG_HEADER_VRS else 8)

    for tag in [t for t in ds._dict if t >> 16 != 0x0002]:
        pos = header_start(ds._dict[tag])
        if pos is None or pos >= end:
            break
        meta._dict[tag] = ds._dict.pop(tag)
    for tag in [t for t in meta._dict if t != 0x00020000]:
        pos = header_start(meta._dict[tag])
        if pos is not None and pos >= end:
            ds._dict[tag] = meta._dict.pop(tag)


def _value_bytes(elem: Element) -> bytes | None:
    """The raw value of a leaf; None when pydicom holds something else (it should not)."""
    value = elem.value
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("latin_1", "replace")
    return None


# -- the walk shared by every view --------------------------------------------------------------------


class _Walker:
    """What is needed to interpret one file's elements the way DCMTK does."""

    __slots__ = ("implicit", "little")

    def __init__(self, implicit: bool, little: bool):
        self.implicit = implicit
        self.little = little

    @staticmethod
    def creators(ds: Dataset) -> dict[tuple[int, int], str]:
        """(group, block) -> private creator, from the reservations (gggg,0010-00FF) of one item."""
        out: dict[tuple[int, int], str] = {}
        for tag, elem in ds._dict.items():
            if 0x10 <= tag & 0xFFFF <= 0xFF and is_private(tag >> 16):
                raw = _value_bytes(elem)
                if raw:
                    text = _strip_padding(raw, "LO").decode("latin_1")
                    if text:
                        out[(tag >> 16, tag & 0xFF)] = text
        return out

    @staticmethod
    def creator_of(tag: int, creators: dict[tuple[int, int], str]) -> str | None:
        group, element = tag >> 16, tag & 0xFFFF
        if not is_private(group) or element < 0x1000:
            return None
        return creators.get((group, element >> 8))

    def vr(self, elem: Element, entry: tuple[str, str] | None) -> str:
        """DCMTK's VR: the file's (explicit VR), else its dictionary's, else UN."""
        if isinstance(elem, DataElement):
            return "SQ" if isinstance(elem.value, Sequence) else (elem.VR or "UN")
        if elem.VR is not None and not self.implicit:
            return elem.VR
        return entry[0] if entry is not None else "UN"

    def items(self, elem: Element, vr: str) -> list[Dataset] | None:
        """The items of a sequence element, None if it is not one."""
        if isinstance(elem, DataElement):
            return list(elem.value) if isinstance(elem.value, Sequence) else None
        if vr != "SQ":
            return None
        raw = elem.value
        if not raw:
            return []
        try:
            return list(read_sequence(io.BytesIO(raw), self.implicit or elem.VR == "UN", self.little, len(raw),
                                      "iso8859"))
        except (OSError, EOFError, ValueError, struct.error, NotImplementedError):
            return None


class _JsonConverter(_Walker):
    """Orthanc's `FromDcmtkBridge::DatasetToJson()`, full format."""

    __slots__ = ("charset", "ignore_length", "include_binary", "include_private", "include_unknown", "max_length")

    def __init__(self, parsed: ParsedFile, charset: Charset, max_length: int = MAX_STRING_LENGTH,
                 ignore_length: frozenset[int] = frozenset(), include_binary: bool = True,
                 include_private: bool = True, include_unknown: bool = True):
        super().__init__(parsed.implicit, parsed.little_endian)
        self.charset = charset
        self.max_length = max_length
        self.ignore_length = ignore_length
        self.include_binary = include_binary
        self.include_private = include_private
        self.include_unknown = include_unknown

    def dataset(self, ds: Dataset, top_level_until_pixels: bool = False) -> Json:
        elements = ds._dict
        creators = self.creators(ds)
        out: Json = {}
        for tag in sorted(map(int, elements)):
            if top_level_until_pixels and tag > PIXEL_DATA:
                break
            if not self.include_private and is_private(tag >> 16):
                continue
            creator = self.creator_of(tag, creators)
            entry = dictionary_entry(tag, creator)
            if entry is None and not self.include_unknown:
                continue
            node = self.element(elements[tag], tag, creator, entry)
            if node is not None:
                out[format_tag(tag)] = node
        return out

    def element(self, elem: Element, tag: int, creator: str | None, entry: tuple[str, str] | None) -> Json | None:
        name = entry[1] if entry is not None else UNKNOWN_NAME
        vr = self.vr(elem, entry)
        items = self.items(elem, vr)
        if items is not None:
            return {"Name": name, "Type": "Sequence", "Value": [self.dataset(item) for item in items]}
        if (vr in _BINARY_VRS or entry is None) and not self.include_binary:
            return None
        node: Json = {"Name": name}
        if creator is not None:
            node["PrivateCreator"] = creator
        text = self.leaf_value(_value_bytes(elem), vr, entry)
        if text is None:
            node["Type"], node["Value"] = "Null", None
        elif self.max_length and tag not in self.ignore_length and len(text.encode("utf-8")) > self.max_length:
            node["Type"], node["Value"] = "TooLong", None
        else:
            node["Type"], node["Value"] = "String", text
        return node

    def leaf_value(self, raw: bytes | None, vr: str, entry: tuple[str, str] | None) -> str | None:
        """Orthanc's `ConvertLeafElement()` with ConvertBinaryToNull."""
        if raw is None:
            return None
        if vr in STRING_VRS:
            return self.charset.decode(_strip_padding(raw, vr))
        if vr in _NUMBER_FORMATS or vr == "AT":
            return format_numbers(raw, vr, self.little)
        if vr == "UN" and entry is not None and entry[0] in STRING_VRS and _is_printable_ascii(raw):
            return raw.decode("ascii")  # a UN element the dictionary knows as a string: as is
        return None


def format_numbers(raw: bytes, vr: str, little: bool = True) -> str | None:
    """Orthanc's numbers: every value `\\`-separated when the length is a multiple of the size, else
    the first one only; None (Null) when there is none. Floats print as doubles with 17 significant
    digits (boost::lexical_cast); AT gives its first value only, as `gggg,eeee`."""
    endian = "<" if little else ">"
    if vr == "AT":
        if len(raw) < 4:
            return None
        group, element = struct.unpack(endian + "HH", raw[:4])
        return f"{group:04x},{element:04x}"
    code = _NUMBER_FORMATS[vr]
    size = struct.calcsize(endian + code)
    if len(raw) < size:
        return None
    count = len(raw) // size if len(raw) % size == 0 else 1
    numbers = struct.unpack(f"{endian}{count}{code}", raw[:count * size])
    if code in "fd":
        return "\\".join(f"{x:.17g}" for x in numbers)
    return "\\".join(str(x) for x in numbers)


def _is_printable_ascii(raw: bytes) -> bool:
    return all(32 <= c < 127 for c in raw)


# -- /tags, /header, /shared-tags ---------------------------------------------------------------------


def _charset_of(ds: Dataset, default_codec: str) -> Charset:
    elem = ds._dict.get(SPECIFIC_CHARACTER_SET)
    if elem is None:
        return Charset(default_codec)
    return detect_charset(_value_bytes(elem) or b"", default_codec)


def dicom_to_json(parsed: ParsedFile, default_codec: str = "latin_1", whole: bool = False,
                  ignore_length: Iterable[int] = ()) -> Json:
    """Orthanc's full DICOM-as-JSON of a file (what `GET /instances/{id}/tags` answers)."""
    conv = _JsonConverter(parsed, _charset_of(parsed.dataset, default_codec), ignore_length=frozenset(ignore_length))
    out = conv.dataset(parsed.dataset, top_level_until_pixels=not whole)
    if parsed.has_pixel_data and format_tag(PIXEL_DATA) not in out:
        out[format_tag(PIXEL_DATA)] = {"Name": "PixelData", "Type": "Null", "Value": None}
    return out


def header_to_json(parsed: ParsedFile) -> Json:
    """Orthanc's `/header`: the file meta group, without binary, private or unknown elements, in ASCII."""
    conv = _JsonConverter(parsed, Charset("ascii"), max_length=0, include_binary=False, include_private=False,
                          include_unknown=False)
    conv.implicit, conv.little = False, True  # the meta header is always explicit VR little endian
    return conv.dataset(parsed.meta)


def simplify(full: Json, fmt: TagFormat) -> Json:
    """Orthanc's `SimplifyDicomAsJson()`: names (human) or tags (short) as keys, values only."""
    if fmt is TagFormat.FULL:
        return full
    out: Json = {}
    human = fmt is TagFormat.HUMAN
    for key in sorted(full):
        node = full[key]
        kind = node["Type"]
        name = node["Name"] if human else key
        if kind == "String":
            out[name] = node["Value"]
        elif kind in ("TooLong", "Null"):
            out[name] = None
        elif kind == "Sequence":
            out[name] = [simplify(item, fmt) for item in node["Value"]]
    return out


class SharedTags:
    """Orthanc's shared tags, fed one instance at a time: the top-level `String` tags whose whole
    JSON node (name and value) is the same in every instance."""

    __slots__ = ("shared",)

    def __init__(self) -> None:
        self.shared: Json | None = None

    def add(self, tags: Json) -> None:
        if self.shared is None:
            self.shared = {k: v for k, v in tags.items() if v.get("Type") == "String"}
        else:
            self.shared = {k: v for k, v in self.shared.items() if tags.get(k) == v}

    def result(self) -> Json:
        return self.shared or {}


def convert(data: bytes, fmt: TagFormat = TagFormat.FULL, default_codec: str = "latin_1",
            whole: bool = False) -> Json:
    """Bytes of a DICOM file -> the `/tags` answer in the given format."""
    return simplify(dicom_to_json(read_dicom(data, whole), default_codec, whole), fmt)


# -- /content -----------------------------------------------------------------------------------------

_INDEX = re.compile(r"^[+-]?[0-9]+$")


def _lexical_index(text: str, bits: int) -> int | None:
    """boost::lexical_cast to an unsigned integer (a minus sign wraps around), None if not a number."""
    if _INDEX.match(text) is None:
        return None
    return int(text) % (1 << bits)


def content(parsed: ParsedFile, path: list[str]) -> list[str] | bytes | None:
    """Orthanc's `ParsedDicomFile::SendPathValue()`: tags of an item (`gggg-eeee`), item indexes of a
    sequence, or the raw bytes of a leaf; None when there is nothing there (Orthanc answers 404).

    `parsed` must hold the whole file: the listing includes the pixel data and what follows it.
    """
    walker = _Walker(parsed.implicit, parsed.little_endian)
    ds = parsed.dataset
    if len(path) in (1, 2) and parse_tag(path[0]) == PIXEL_DATA:
        return _pixel_data(ds, walker, path[1] if len(path) == 2 else None)
    for pos in range(len(path) // 2):
        index = _lexical_index(path[2 * pos + 1], 64)
        if index is None:
            return None
        tag = parse_tag(path[2 * pos])
        elem = ds._dict.get(tag)
        if elem is None:
            return None
        items = walker.items(elem, walker.vr(elem, dictionary_entry(tag, walker.creator_of(tag, walker.creators(ds)))))
        signed = index - (1 << 64) if index >= 1 << 63 else index  # DCMTK takes a signed long; -1 = the last
        if not items or not (signed == -1 or 0 <= signed < len(items)):
            return None
        ds = items[signed]
    if len(path) % 2 == 0:
        return [f"{t >> 16:04x}-{t & 0xFFFF:04x}" for t in sorted(ds._dict)]
    tag = parse_tag(path[-1])
    elem = ds._dict.get(tag)
    if elem is None:
        return None
    vr = walker.vr(elem, dictionary_entry(tag, walker.creator_of(tag, walker.creators(ds))))
    items = walker.items(elem, vr)
    if items is not None:
        return [str(i) for i in range(len(items))]
    raw = _value_bytes(elem)
    return None if raw is None else _as_sent(raw, vr, walker.little)


def _as_sent(raw: bytes, vr: str, little: bool) -> bytes:
    """The bytes DCMTK sends for a value (`getLength()` then `getPartialValue()`).

    Strings go through DCMTK's `makeDicomByteString()`: trailing padding (spaces; NULs and all white
    space for UIDs) removed, then one padding character added back if the length is odd. Numbers are
    sent in the host's (little-endian) byte order.
    """
    if vr in STRING_VRS:
        if len(raw) % 2:
            raw += b"\x00"  # DCMTK loads an odd value with an extra NUL
        if vr == "UI":
            value = raw.translate(None, _WHITE_SPACE).rstrip(b"\x00")
            pad = b"\x00"
        else:
            value = raw.rstrip(b" ")
            pad = b" "
        return value + pad if len(value) % 2 else value
    size = _SWAP_SIZES.get(vr)
    if not little and size is not None and len(raw) % size == 0:
        return b"".join(raw[i:i + size][::-1] for i in range(0, len(raw), size))
    return raw


def _pixel_data(ds: Dataset, walker: _Walker, block: str | None) -> list[str] | bytes | None:
    """Orthanc's `AnswerPixelData()`: the fragments of encapsulated pixel data (the first one being the
    offset table), or the whole raw pixel data as block 0."""
    elem = ds._dict.get(PIXEL_DATA)
    if elem is None:
        return None
    fragments = _fragments(elem, walker.little)
    count = len(fragments) if fragments is not None else 1
    if block is None:
        return [str(i) for i in range(count)]
    index = _lexical_index(block, 32)
    if index is None or index >= count:
        return None
    if fragments is not None:
        return fragments[index]
    raw = _value_bytes(elem)
    if raw is None:
        return None
    return _as_sent(raw, walker.vr(elem, ("OW", "PixelData")), walker.little)


def _fragments(elem: Element, little: bool) -> list[bytes] | None:
    """The items of encapsulated pixel data, None when it is not encapsulated."""
    if not isinstance(elem, RawDataElement) or elem.length != 0xFFFFFFFF or not isinstance(elem.value, bytes):
        return None
    data = elem.value
    endian = "<" if little else ">"
    out = []
    pos = 0
    while pos + 8 <= len(data):
        group, element, length = struct.unpack_from(endian + "HHI", data, pos)
        pos += 8
        if (group, element) != (0xFFFE, 0xE000) or pos + length > len(data):
            break
        out.append(data[pos:pos + length])
        pos += length
    return out


# -- /frames ------------------------------------------------------------------------------------------


def frames_count(parsed: ParsedFile) -> int:
    """Orthanc's `DicomFrameIndex::GetFramesCount()`: NumberOfFrames, 1 if absent (or a video)."""
    if parsed.transfer_syntax in _VIDEO_SYNTAXES:
        return 1
    elem = parsed.dataset._dict.get(NUMBER_OF_FRAMES)
    raw = _value_bytes(elem) if elem is not None else None
    text = _strip_padding(raw, "IS").decode("latin_1") if raw else ""
    if not text:
        return 1
    if re.match(r"^[+-]?[0-9]+$", text) is None or not -(2 ** 31) <= int(text) < 2 ** 31 or int(text) < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
    return int(text)


__all__ = ["Charset", "ParsedFile", "SharedTags", "content", "convert", "detect_charset", "dicom_to_json",
           "format_numbers", "frames_count", "header_to_json", "read_dicom", "simplify"]
