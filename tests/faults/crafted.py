"""Hostile DICOM files, built with pydicom where it can write them and byte by byte where it cannot."""

from __future__ import annotations

import io
import struct

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

EXPLICIT_LE = "1.2.840.10008.1.2.1"


def base_dataset(patient: str = "FAULTS", syntax: str = ExplicitVRLittleEndian) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient
    ds.PatientName = "Faults^Crafted"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    return ds


def to_bytes(ds: Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _element(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHL", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _undefined_sequence(group: int, element: int, items: list[bytes]) -> bytes:
    body = b"".join(struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + item
                    + struct.pack("<HHL", 0xFFFE, 0xE00D, 0) for item in items)
    return struct.pack("<HH2sHL", group, element, b"SQ", 0, 0xFFFFFFFF) + body + struct.pack(
        "<HHL", 0xFFFE, 0xE0DD, 0)


def _with_body(extra: bytes, patient: str = "FAULTS") -> bytes:
    """A valid file (explicit VR little endian) with `extra` elements appended after the identifiers;
    `extra` must keep the tag order (group 0x0040 and above sorts after the identifiers)."""
    return to_bytes(base_dataset(patient)) + extra


def deep_sequence(depth: int) -> bytes:
    """Sequences of undefined length nested `depth` levels deep (raw bytes: pydicom recurses)."""
    inner = _element(0x0010, 0x0010, b"PN", b"DEEP")
    for _ in range(depth):
        inner = _undefined_sequence(0x0040, 0xA730, [inner])
    return _with_body(inner)


def many_items(count: int) -> bytes:
    """One sequence holding `count` empty items: `count` elements that cost nothing to send."""
    return _with_body(_undefined_sequence(0x0040, 0xA730, [b""] * count))


def many_elements(count: int) -> bytes:
    """A sequence whose items hold `count` small elements in all (the ingest-time linearity probe)."""
    per_item = 100
    items = []
    for i in range(count // per_item):
        item = b"".join(_element(0x0070, 0x0001 + j, b"LO", b"%06d" % i) for j in range(per_item))
        items.append(item)
    return _with_body(_undefined_sequence(0x0040, 0xA730, items))


def lying_lengths() -> list[bytes]:
    """Files whose element, item or sequence lengths point past the end or into the middle of things."""
    good = to_bytes(base_dataset())
    out = [
        good + struct.pack("<HH2sH", 0x0040, 0x0001, b"LO", 0xFFF0) + b"short",
        good + struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, 0x7FFFFFF0) + b"\x00" * 16,
        good + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFF0) + b"\x00" * 64,
        good + struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, 24)
        + struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFF00) + b"\x00" * 16,
        good + struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF),  # no item, no end
        good + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
        + struct.pack("<HHL", 0xFFFE, 0xE000, 0x7FFFFFFF),  # fragment past the end
        good[:len(good) // 2],  # truncated in the middle of an element
        good.replace(b"DICM", b"DICM", 1)[:140] + b"\xff" * 4000,
    ]
    return out


def huge_image(rows: int = 65535, columns: int = 65535, rle: bool = False, frames: int = 1,
               rows_vr_ul: bool = False) -> bytes:
    """Rows x Columns claimed huge, with a few bytes of pixel data (native or RLE)."""
    ds = base_dataset(syntax=RLELossless if rle else ExplicitVRLittleEndian)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = min(rows, 65535)
    ds.Columns = min(columns, 65535)
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if rle:
        from pydicom.encaps import encapsulate

        segment = struct.pack("<16L", 1, 64, *([0] * 14)) + b"\x81\x00" * 32
        ds.PixelData = encapsulate([segment] * frames)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = b"\x00\x01" * 64
        ds["PixelData"].VR = "OW"
    data = to_bytes(ds)
    if rows_vr_ul:  # Rows and Columns as UL 65536 (the 65536 x 65536): rewrite the US elements
        for tag, value in ((0x0010, rows), (0x0011, columns)):
            old = struct.pack("<HH2sH", 0x0028, tag, b"US", 2) + struct.pack("<H", min(value, 65535))
            new = struct.pack("<HH2sH", 0x0028, tag, b"UL", 4) + struct.pack("<L", value)
            assert old in data
            data = data.replace(old, new, 1)
    return data
