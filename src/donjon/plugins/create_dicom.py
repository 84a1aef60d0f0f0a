"""`orthanc.CreateDicom(json, image, flags)`: a DICOM file from a JSON object of tags.

Keys are tag names or `gggg,eeee`; values are strings, or arrays of objects for sequences (the
rules of Orthanc's `Replace`, shared with `dicom.modify`). `SpecificCharacterSet` defaults to the
`DefaultEncoding`; `GENERATE_IDENTIFIERS` adds the missing Patient ID and Study/Series/SOP Instance
UIDs. The file is written in Explicit VR Little Endian with Orthanc's meta header.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.dsutils import encode

from ..dicom.modify import _element_for, _Encoding
from ..dicom.tag_dictionary import parse_tag
from ..dicom.values import DEFAULT_ENCODINGS, dataset_encodings
from ..errors import ErrorCode, OrthancError
from ..network.answers import SPECIFIC_CHARACTER_SETS
from ..network.meta import file_meta
from .exceptions import OrthancException, UnsupportedCall

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
_CHARSET, _PATIENT_ID, _SOP_CLASS = 0x00080005, 0x00100020, 0x00080016
_STUDY_UID, _SERIES_UID, _SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
_UID_ROOTS = {_STUDY_UID: "1.2.276.0.7230010.3.1.2.", _SERIES_UID: "1.2.276.0.7230010.3.1.3.",
              _SOP_UID: "1.2.276.0.7230010.3.1.4."}
DECODE_DATA_URI_SCHEME, GENERATE_IDENTIFIERS = 1, 2


def create_dicom(text: str | bytes, pixel_data: Any, flags: int, default_encoding: str) -> bytes:
    if pixel_data is not None:
        raise UnsupportedCall("CreateDicom(..., pixel_data=<orthanc.Image>, ...)")
    try:
        tags = json.loads(text)
    except ValueError:
        raise OrthancException(ErrorCode.BAD_JSON) from None
    if not isinstance(tags, dict):
        raise OrthancException(ErrorCode.BAD_JSON)
    try:
        return _create(tags, int(flags), default_encoding)
    except OrthancError as e:
        raise OrthancException.of(e) from None


def _create(tags: dict[str, Any], flags: int, default_encoding: str) -> bytes:
    values = {parse_tag(name): value for name, value in tags.items()}
    if _CHARSET not in values:
        values[_CHARSET] = SPECIFIC_CHARACTER_SETS.get(default_encoding, "ISO_IR 100")
    if flags & GENERATE_IDENTIFIERS:
        values.setdefault(_PATIENT_ID, str(uuid.uuid4()))
        for tag, root in _UID_ROOTS.items():
            values.setdefault(tag, generate_uid(prefix=root))
    charset = values[_CHARSET]
    codecs = dataset_encodings(charset if isinstance(charset, str) else None,
                               DEFAULT_ENCODINGS.get(default_encoding, "latin_1"))
    enc = _Encoding(implicit=False, little=True, charsets=codecs)
    ds = Dataset()
    for tag in sorted(values):
        ds[tag] = _element_for(tag, values[tag], enc)
    sop_class = values.get(_SOP_CLASS, "")
    sop_instance = values.get(_SOP_UID, "")
    meta = file_meta(sop_class if isinstance(sop_class, str) else "",
                     sop_instance if isinstance(sop_instance, str) else "", EXPLICIT_LITTLE)
    return meta + (encode(ds, False, True) or b"")
