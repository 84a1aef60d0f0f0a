"""Parse an incoming DICOM file once: identifiers, main tags, the values of core metadata.

The file is scanned by `header.scan` (element headers only, every element checked to fit), so a
truncated or malformed file is refused before anything is written, as DCMTK refuses it in Orthanc.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ErrorCode, OrthancError
from ..ids import InstanceIds
from ..registry import Level
from .header import Header, MalformedDicom, RawElement, scan
from .main_tags import MAIN_TAGS
from .values import MAX_STRING_LENGTH, dataset_encodings, raw_to_string


@dataclass(slots=True)
class ParsedInstance:
    """What the index needs from one file, computed in a single pass."""

    header: Header
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
    try:
        h = scan(buf)
    except (MalformedDicom, RecursionError, MemoryError):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT,
                           f"Cannot parse an invalid DICOM file (size: {len(buf)} bytes)") from None
    try:
        encodings = element_encodings(h.elements, default_encoding)
        values = _Values(h.elements, encodings, h.little)

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
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT,
                           f"Cannot parse an invalid DICOM file (size: {len(buf)} bytes)") from None

    pixel_vr = None
    if h.pixel_data_offset is not None and h.pixel_data_vr is not None:
        pixel_vr = _unexpected_pixel_vr(h, h.pixel_data_vr)

    return ParsedInstance(
        header=h, encodings=encodings, patient_id=patient_id, study_uid=study_uid,
        series_uid=series_uid, sop_uid=sop_uid,
        ids=InstanceIds.compute(patient_id, study_uid, series_uid, sop_uid),
        main_tags=main_tags, transfer_syntax=h.transfer_syntax, sop_class_uid=sop_class or None,
        pixel_data_offset=h.pixel_data_offset, index_in_series=index_in_series,
        expected_instances=expected, little_endian=h.little, size=len(buf), pixel_data_vr=pixel_vr,
    )


def element_encodings(elements: dict[int, RawElement], default_encoding: str) -> list[str]:
    charset = elements.get(0x00080005)
    return dataset_encodings(charset.value if charset is not None else None, default_encoding)


_COMPRESSED_SYNTAX_PREFIXES = ("1.2.840.10008.1.2.4.", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.8")


def _unexpected_pixel_vr(h: Header, found: str) -> str | None:
    """PixelDataVR metadata: the VR found, only when it is not the one Orthanc expects."""
    if (h.transfer_syntax or "").startswith(_COMPRESSED_SYNTAX_PREFIXES):
        expected = "OB"
    else:
        elem = h.elements.get(0x00280100)
        value = elem.value if elem is not None else None
        allocated = 8
        if isinstance(value, bytes) and len(value) >= 2:
            allocated = int.from_bytes(value[:2], "little" if h.little else "big")
        expected = "OW" if allocated > 8 else "OB"
    return None if found == expected else found


class _Values:
    """Lazy access to the string value of top-level elements."""

    __slots__ = ("_dict", "encodings", "little")

    def __init__(self, elements: dict[int, RawElement], encodings: list[str], little: bool):
        self._dict = elements
        self.encodings = encodings
        self.little = little

    def string(self, tag: int) -> str | None:
        """Orthanc's string value: None if absent or binary; may be longer than the main-tag limit."""
        elem = self._dict.get(tag)
        if elem is None or elem.VR == "SQ":
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
