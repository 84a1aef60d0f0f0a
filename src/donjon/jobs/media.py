"""DICOMDIR of a media archive, written with pydicom's file-set support.

pydicom builds the directory records (patient/study/series/image...) and computes the record
offsets; Donjon only imposes Orthanc's file names (`IMAGES/IM<n>`). The instances are staged
without their pixel data, so memory stays small whatever the number of instances.
"""

from __future__ import annotations

import io
import logging

from pydicom import dcmread
from pydicom.filebase import DicomFileLike
from pydicom.fileset import FileSet

log = logging.getLogger(__name__)

# Type 1 attributes that pydicom requires in the records, with the value used when a file lacks them.
_DEFAULTS = {"PatientID": "UNKNOWN", "StudyDate": "19700101", "StudyTime": "000000", "StudyID": "0",
             "Modality": "OT", "SeriesNumber": "0", "InstanceNumber": "0"}


class DicomDir:
    def __init__(self, extended: bool = False):
        self.extended = extended  # pydicom's records already hold the usual "extended" keys
        self.fileset = FileSet()
        self.names: dict[str, list[str]] = {}

    def add(self, source: bytes | str, name: str) -> None:
        """`source`: the file's bytes or its path (only the header is read)."""
        try:
            ds = dcmread(io.BytesIO(source) if isinstance(source, bytes) else source, stop_before_pixels=True,
                         force=True)
            for keyword, value in _DEFAULTS.items():
                if not str(ds.get(keyword, "") or "").strip():
                    setattr(ds, keyword, value)
            self.fileset.add(ds)
            self.names[str(ds.SOPInstanceUID)] = name.split("/")
        except Exception as e:  # an instance pydicom cannot describe stays on the media without a record
            log.warning("DICOMDIR: no directory record for %s: %s", name, e)

    def encode(self) -> bytes:
        for instance in self.fileset:
            parts = self.names.get(str(instance.SOPInstanceUID))
            if parts is not None:
                instance.node._record.ReferencedFileID = parts
        buf = io.BytesIO()
        self.fileset._write_dicomdir(DicomFileLike(buf), copy_safe=True)
        return buf.getvalue()
