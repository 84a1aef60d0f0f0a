"""Test data sets made into DICOM files (Part 10 bytes), the way the tests that generate instances need."""

from __future__ import annotations

import io

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian


def file_bytes(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    """`ds` with a file meta header naming its SOP class and instance, as the bytes of a file."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
