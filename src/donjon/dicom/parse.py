"""Parse an incoming DICOM file once: identifiers, main tags, the values of core metadata.

The header is read by pydicom up to the pixel data only; the rest of the file is checked by a
header-only walk (no value is copied), so a truncated or malformed file is refused before anything
is written, as DCMTK refuses it in Orthanc.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field

from pydicom import config as pydicom_config
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import dcmread

from ..errors import ErrorCode, OrthancError
from ..ids import InstanceIds
from ..registry import Level
from .main_tags import MAIN_TAGS
from .values import MAX_STRING_LENGTH, dataset_encodings, element_vr, raw_to_string

pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE
warnings.filterwarnings("ignore", module="pydicom")

PIXEL_DATA = 0x7FE00010
DEFLATED = "1.2.840.10008.1.2.1.99"
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_MAX_DEPTH = 64
_IMPLIED_SYNTAX = {
    (True, True): "1.2.840.10008.1.2",
    (False, True): "1.2.840.10008.1.2.1",
    (False, False): "1.2.840.10008.1.2.2",
    (True, False): "1.2.840.10008.1.2",
}


@dataclass(slots=True)
class ParsedInstance:
    """What the index needs from one file, computed in a single pass."""

    dataset: Dataset
    encodings: list[str]
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    ids: InstanceIds
    main_tags: dict[Level, list[tuple[int, str]]]
    transfer_syntax: str | None
    sop_class_uid: str | None
    pixel_data_offset: int | None
    index_in_series: str | None
    expected_instances: int | None
    little_endian: bool = True
    size: int = 0
    pixel_data_vr: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_instance(data: bytes | bytearray | memoryview, default_encoding: str = "latin_1") -> ParsedInstance:
    if len(data) == 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Received an empty DICOM file")
    buf = bytes(data) if not isinstance(data, bytes) else data
    invalid = OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot parse an invalid DICOM file (size: {len(buf)} bytes)")
    fp = io.BytesIO(buf)
    try:
        ds = dcmread(fp, stop_before_pixels=True, force=True)
        stop = fp.tell()
        implicit, little = ds.original_encoding
        if implicit is None:
            raise invalid
        ts = _transfer_syntax(ds) or _IMPLIED_SYNTAX[(bool(implicit), bool(little))]
        start = _dataset_start(buf)
        if start is None:
            raise invalid
        if ts != DEFLATED:
            _walk(buf, start, len(buf), bool(implicit), bool(little), 0, top_level=True)
    except OrthancError:
        raise
    except (InvalidDicomError, EOFError, ValueError, struct.error, KeyError, TypeError, IndexError,
            NotImplementedError, OverflowError, RecursionError, AttributeError, UnicodeError):
        raise invalid from None
    if len(ds._dict) == 0:
        raise invalid

    pixel_offset = None
    if ts != DEFLATED and stop + 4 <= len(buf):
        tag_bytes = buf[stop:stop + 4]
        if tag_bytes == (b"\xe0\x7f\x10\x00" if little else b"\x7f\xe0\x00\x10"):
            pixel_offset = stop

    try:
        charset_elem = ds._dict.get(0x00080005)
        charset_raw = getattr(charset_elem, "value", None) if charset_elem is not None else None
        encodings = dataset_encodings(charset_raw, default_encoding)
        values = _Values(ds, encodings, bool(little))

        patient_id = values.identifier(0x00100020, required=False)
        study_uid = values.identifier(0x0020000D)
        series_uid = values.identifier(0x0020000E)
        sop_uid = values.identifier(0x00080018)
        if not study_uid or not series_uid or not sop_uid:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT,
                               "missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")

        main_tags: dict[Level, list[tuple[int, str]]] = {}
        for level, tags in MAIN_TAGS.items():
            found: list[tuple[int, str]] = []
            for tag, _name in tags:
                v = values.main(tag)
                if v is not None:
                    found.append((tag, v))
            main_tags[level] = found

        index_in_series = _index_in_series(values)
        expected = _expected_instances(values)
        sop_class = values.main(0x00080016)
    except OrthancError:
        raise
    except Exception:
        raise invalid from None

    pixel_vr = None
    if pixel_offset is not None and not implicit:
        pixel_vr = _unexpected_pixel_vr(ds, ts, buf[pixel_offset + 4:pixel_offset + 6], bool(little))

    return ParsedInstance(
        dataset=ds, encodings=encodings, patient_id=patient_id, study_uid=study_uid,
        series_uid=series_uid, sop_uid=sop_uid,
        ids=InstanceIds.compute(patient_id, study_uid, series_uid, sop_uid),
        main_tags=main_tags, transfer_syntax=ts, sop_class_uid=sop_class or None,
        pixel_data_offset=pixel_offset, index_in_series=index_in_series,
        expected_instances=expected, little_endian=bool(little), size=len(buf), pixel_data_vr=pixel_vr,
    )


_COMPRESSED_SYNTAX_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.8")


def _unexpected_pixel_vr(ds: Dataset, ts: str | None, vr_bytes: bytes, little: bool) -> str | None:
    """PixelDataVR metadata: the VR found, only when it is not the one Orthanc expects."""
    found = vr_bytes.decode("latin_1", "replace")
    if (ts or "").startswith(_COMPRESSED_SYNTAX_PREFIXES):
        expected = "OB"
    else:
        elem = ds._dict.get(0x00280100)
        value = getattr(elem, "value", None)
        allocated = 8
        if isinstance(value, bytes) and len(value) >= 2:
            allocated = int.from_bytes(value[:2], "little" if little else "big")
        expected = "OW" if allocated > 8 else "OB"
    return None if found == expected else found


class _Values:
    """Lazy access to the string value of top-level elements."""

    __slots__ = ("_dict", "encodings", "little")

    def __init__(self, ds: Dataset, encodings: list[str], little: bool):
        self._dict = ds._dict
        self.encodings = encodings
        self.little = little

    def string(self, tag: int) -> str | None:
        """Orthanc's string value: None if absent or binary; may be longer than the main-tag limit."""
        elem = self._dict.get(tag)
        if elem is None:
            return None
        if not hasattr(elem, "value") or not isinstance(elem.value, bytes | bytearray | None):
            return None
        if element_vr(elem) == "SQ":
            return None
        return raw_to_string(elem, self.encodings, self.little)

    def main(self, tag: int) -> str | None:
        """Value as stored in main tags: absent, binary or over 256 bytes -> None."""
        v = self.string(tag)
        if v is None or len(v.encode("utf-8")) > MAX_STRING_LENGTH:
            return None
        return v

    def identifier(self, tag: int, required: bool = True) -> str:
        if tag not in self._dict:
            if required:
                raise OrthancError(ErrorCode.INEXISTENT_TAG)
            return ""
        v = self.string(tag)
        if v is None:
            raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE)
        if len(v.encode("utf-8")) > MAX_STRING_LENGTH:
            raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE)
        return v


def _transfer_syntax(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return None
    elem = meta._dict.get(0x00020010)
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes):
        value = value.decode("latin_1")
    text = "".join(str(value).split()).rstrip("\x00")
    return text or None


def _index_in_series(values: _Values) -> str | None:
    if 0x00200013 in values._dict:
        v = values.main(0x00200013)
    elif 0x00541330 in values._dict:
        v = values.main(0x00541330)
    else:
        return None
    return None if v is None else v.strip()


def _int_value(values: _Values, tag: int) -> int | None:
    v = values.main(tag)
    if v is None:
        return None
    try:
        return int(v.strip())
    except ValueError:
        return None


def _expected_instances(values: _Values) -> int | None:
    d = values._dict
    if 0x00201002 in d and 0x00200105 in d:
        a, b = _int_value(values, 0x00201002), _int_value(values, 0x00200105)
    elif 0x00540081 in d and 0x00540101 in d:
        a, b = _int_value(values, 0x00540081), _int_value(values, 0x00540101)
    elif 0x00181090 in d:
        a, b = _int_value(values, 0x00181090), 1
    else:
        return None
    if a is None or b is None or a * b <= 0:
        return None
    return a * b


def _dataset_start(buf: bytes) -> int | None:
    """Offset of the first element after the preamble and the file meta group."""
    pos = 132 if len(buf) >= 132 and buf[128:132] == b"DICM" else 0
    # the meta group is always explicit VR little endian
    while pos + 8 <= len(buf):
        group = buf[pos] | (buf[pos + 1] << 8)
        if group != 0x0002:
            break
        vr = buf[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > len(buf):
                return None
            length = struct.unpack_from("<L", buf, pos + 8)[0]
            pos += 12
        else:
            length = struct.unpack_from("<H", buf, pos + 6)[0]
            pos += 8
        if length == _UNDEFINED or pos + length > len(buf):
            return None
        pos += length
    return pos


def _walk(buf: bytes, pos: int, end: int, implicit: bool, little: bool, depth: int,
          top_level: bool = False, item_end_tag: bool = False) -> int:
    """Check that the elements from `pos` fit in the buffer; return where they stop.

    With `item_end_tag`, stops after an item delimitation item (undefined-length item).
    """
    if depth > _MAX_DEPTH:
        raise ValueError("sequences nested too deeply")
    endian = "<" if little else ">"
    hdr = struct.Struct(endian + "HHL")
    hdr_explicit = struct.Struct(endian + "HH2sH")
    long_len = struct.Struct(endian + "L")
    while pos < end:
        if pos + 8 > end:
            if top_level and buf[pos:end].strip(b"\x00") == b"":
                return end  # trailing NUL padding after the dataset is tolerated
            raise ValueError("truncated element header")
        group, elem, length = hdr.unpack_from(buf, pos)
        if group == 0xFFFE:
            # item delimiters inside a sequence
            if elem == 0xE00D and item_end_tag:
                return pos + 8
            raise ValueError("unexpected delimiter")
        if implicit:
            vr = b"SQ" if length == _UNDEFINED else None
            pos += 8
        else:
            _, _, vr, short_len = hdr_explicit.unpack_from(buf, pos)
            if vr in _LONG_VRS:
                if pos + 12 > end:
                    raise ValueError("truncated element header")
                length = long_len.unpack_from(buf, pos + 8)[0]
                pos += 12
            elif vr.isalpha() and vr.isupper():
                length = short_len
                pos += 8
            else:
                raise ValueError("bad VR")
        if length == _UNDEFINED:
            if (group << 16 | elem) == PIXEL_DATA:
                pos = _walk_fragments(buf, pos, end, little)
            else:
                pos = _walk_sequence(buf, pos, end, implicit or vr == b"UN", little, depth + 1)
        else:
            if pos + length > end:
                raise ValueError("truncated element value")
            pos += length
    if item_end_tag:
        raise ValueError("missing item delimiter")
    return pos


def _walk_sequence(buf: bytes, pos: int, end: int, implicit: bool, little: bool, depth: int) -> int:
    endian = "<" if little else ">"
    hdr = struct.Struct(endian + "HHL")
    while True:
        if pos + 8 > end:
            raise ValueError("truncated sequence")
        group, elem, length = hdr.unpack_from(buf, pos)
        pos += 8
        if group != 0xFFFE:
            raise ValueError("bad item")
        if elem == 0xE0DD:
            return pos
        if elem != 0xE000:
            raise ValueError("bad item tag")
        if length == _UNDEFINED:
            pos = _walk(buf, pos, end, implicit, little, depth + 1, item_end_tag=True)
        else:
            if pos + length > end:
                raise ValueError("truncated item")
            _walk(buf, pos, pos + length, implicit, little, depth + 1)
            pos += length


def _walk_fragments(buf: bytes, pos: int, end: int, little: bool) -> int:
    endian = "<" if little else ">"
    hdr = struct.Struct(endian + "HHL")
    while True:
        if pos + 8 > end:
            raise ValueError("truncated pixel data")
        group, elem, length = hdr.unpack_from(buf, pos)
        pos += 8
        if group != 0xFFFE:
            raise ValueError("bad fragment")
        if elem == 0xE0DD:
            return pos
        if elem != 0xE000 or length == _UNDEFINED or pos + length > end:
            raise ValueError("bad fragment")
        pos += length
