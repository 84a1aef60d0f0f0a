"""DICOM files <-> data sets on the wire: the file meta header Orthanc writes, and its removal.

An instance received by C-STORE is stored as the bytes received, in the transfer syntax they came
in, behind the meta header Orthanc 1.10.1 (DCMTK 3.6.7) writes: version, SOP class and instance,
transfer syntax, implementation class UID and version name (no source AET).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

IMPLEMENTATION_CLASS_UID = "1.2.276.0.7230010.3.0.3.6.7"
IMPLEMENTATION_VERSION_NAME = "OFFIS_DCMTK_367"
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_PREAMBLE = b"\x00" * 128 + b"DICM"


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHL", 0x0002, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _uid(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b"\x00" if len(data) % 2 else data


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> bytes:
    """Preamble, `DICM` and group 0002, as DCMTK writes them for Orthanc."""
    version = IMPLEMENTATION_VERSION_NAME.encode("ascii")
    body = b"".join((
        _element(0x0001, b"OB", b"\x00\x01"),
        _element(0x0002, b"UI", _uid(sop_class)),
        _element(0x0003, b"UI", _uid(sop_instance)),
        _element(0x0010, b"UI", _uid(transfer_syntax)),
        _element(0x0012, b"UI", _uid(IMPLEMENTATION_CLASS_UID)),
        _element(0x0013, b"SH", version + b" " if len(version) % 2 else version),
    ))
    return _PREAMBLE + _element(0x0000, b"UL", struct.pack("<L", len(body))) + body


@dataclass(frozen=True)
class SplitFile:
    transfer_syntax: str | None
    sop_class: str | None
    sop_instance: str | None
    dataset_start: int


def split_file(data: bytes | memoryview) -> SplitFile:
    """Where the data set of a stored file starts, and what its meta header says."""
    pos = 132 if len(data) >= 132 and bytes(data[128:132]) == b"DICM" else 0
    found: dict[int, str] = {}
    n = len(data)
    while pos + 8 <= n and data[pos] == 0x02 and data[pos + 1] == 0x00:
        element = data[pos + 2] | (data[pos + 3] << 8)
        vr = bytes(data[pos + 4:pos + 6])
        if vr in _LONG_VRS:
            length = struct.unpack_from("<L", data, pos + 8)[0]
            pos += 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            pos += 8
        if element in (0x0002, 0x0003, 0x0010):
            found[element] = bytes(data[pos:pos + length]).decode("latin_1").strip(" \x00")
        pos += length
    return SplitFile(found.get(0x0010), found.get(0x0002), found.get(0x0003), pos)
