"""DICOMDIR of a media archive, written with pydicom's file-set support.

pydicom lays out the DICOMDIR (record sequence, offsets, links); the records themselves are filled
as Orthanc 1.10.1's `DicomDirWriter` fills them, so that a viewer sees the same directory:
* PATIENT: PatientID (only if it has a value), PatientName (always, maybe empty);
* STUDY: StudyDate and StudyTime (else the series, acquisition or content ones, else now),
  StudyDescription, AccessionNumber (always), StudyInstanceUID, StudyID (only if it has a value);
* SERIES: Modality (always, maybe empty), SeriesInstanceUID, SeriesNumber (only if it has a value),
  and SeriesDescription in extended mode (if the file has the tag);
* IMAGE for every instance, whatever its SOP class: InstanceNumber (always, maybe empty);
* SpecificCharacterSet in every record of a file that has one.
Nothing is invented: a missing Type 1 value stays empty, as in Orthanc. Records are keyed like
Orthanc's (a missing PatientID groups under ""). The instances are staged without their pixel
data, so memory stays small whatever the number of instances. File names: `IMAGES/IM<n>`.
"""

from __future__ import annotations

import io
import logging
import time
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomFileLike
from pydicom.fileset import FileSet, RecordNode

log = logging.getLogger(__name__)

FILE_SET_ID = "ORTHANC_MEDIA"
# Keywords copied into each record: (keyword, copy when missing as empty, copy when present but empty).
# Type 1 and 2 -> (True, True); Type 1C -> (False, False); Type 3 -> (False, True), as Orthanc's CopyString.
_TYPE_1_2 = (True, True)
_TYPE_1C = (False, False)
_TYPE_3 = (False, True)
_DATE_SOURCES = ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_TIME_SOURCES = ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime")


class _Node(RecordNode):
    """A record node whose identity is Orthanc's key of the level (pydicom requires a PatientID)."""

    def __init__(self, record: Dataset, key: str):
        self._key = key  # read by RecordNode.__init__
        super().__init__(record)

    @property
    def key(self) -> str:
        return self._key


def _copy(record: Dataset, ds: Dataset, keyword: str, rule: tuple[bool, bool]) -> None:
    when_missing, when_empty = rule
    elem = ds.data_element(keyword) if keyword in ds else None
    if elem is None:
        if when_missing:
            setattr(record, keyword, "")
    elif when_empty or not elem.is_empty:
        record.add_new(elem.tag, elem.VR, elem.value)


def _first(ds: Dataset, keywords: tuple[str, ...], now: str) -> Any:
    """The first of the tags that the file has (even empty), else `now` (Orthanc's study date rule)."""
    for keyword in keywords:
        if keyword in ds:
            return ds.data_element(keyword).value  # type: ignore[union-attr]
    return now


def _record(kind: str, ds: Dataset) -> Dataset:
    record = Dataset()
    record.DirectoryRecordType = kind
    if "SpecificCharacterSet" in ds and not ds.data_element("SpecificCharacterSet").is_empty:  # type: ignore[union-attr]
        record.SpecificCharacterSet = ds.SpecificCharacterSet
    return record


def _records(ds: Dataset, extended: bool) -> list[tuple[Dataset, str]]:
    """The PATIENT, STUDY, SERIES and IMAGE records of one instance, with their keys."""
    patient = _record("PATIENT", ds)
    _copy(patient, ds, "PatientID", _TYPE_1C)
    _copy(patient, ds, "PatientName", _TYPE_1_2)

    study = _record("STUDY", ds)
    now = time.localtime()
    study.StudyDate = _first(ds, _DATE_SOURCES, time.strftime("%Y%m%d", now))
    study.StudyTime = _first(ds, _TIME_SOURCES, time.strftime("%H%M%S", now) + ".000000")
    for keyword, rule in (("StudyDescription", _TYPE_1_2), ("StudyInstanceUID", _TYPE_1_2),
                          ("StudyID", _TYPE_1C), ("AccessionNumber", _TYPE_1_2)):
        _copy(study, ds, keyword, rule)

    series = _record("SERIES", ds)
    for keyword, rule in (("Modality", _TYPE_1_2), ("SeriesInstanceUID", _TYPE_1_2), ("SeriesNumber", _TYPE_1C)):
        _copy(series, ds, keyword, rule)
    if extended:  # Orthanc's only "extended" key (non-standard Type 3, PS3.3 F.5-1 of 2009)
        _copy(series, ds, "SeriesDescription", _TYPE_3)

    image = _record("IMAGE", ds)
    _copy(image, ds, "InstanceNumber", _TYPE_1_2)
    return [(patient, str(ds.get("PatientID", "") or "")), (study, str(ds.StudyInstanceUID)),
            (series, str(ds.SeriesInstanceUID)), (image, str(ds.SOPInstanceUID))]


class DicomDir:
    """The DICOMDIR of one media archive, built one instance at a time.

    The record tree is built here rather than by `FileSet.add()`, which looks for the instance among
    all those already added (quadratic: 10 s for 1,000 instances) and writes a copy of each header.
    Records are indexed by level and UID across the whole DICOMDIR, as Orthanc does: a series or
    study met again (even under another PatientID) gets the new records under its first parents.
    """

    def __init__(self, extended: bool = False):
        self.extended = extended
        self.fileset = FileSet()
        self.fileset.ID = FILE_SET_ID
        self.nodes: dict[tuple[str, str], RecordNode] = {}

    def add(self, source: bytes | str, name: str) -> None:
        """`source`: the file's bytes or its path (only the header is read)."""
        try:
            ds = dcmread(io.BytesIO(source) if isinstance(source, bytes) else source, stop_before_pixels=True,
                         force=True)
            records = _records(ds, self.extended)
            leaf = records[-1][0]
            leaf.ReferencedFileID = name.split("/")
            leaf.ReferencedSOPClassUIDInFile = ds.SOPClassUID
            leaf.ReferencedSOPInstanceUIDInFile = records[-1][1]
            leaf.ReferencedTransferSyntaxUIDInFile = ds.file_meta.TransferSyntaxUID
        except Exception as e:  # an instance pydicom cannot describe stays on the media without a record
            log.warning("DICOMDIR: no directory record for %s: %s", name, e)
            return
        keys = [(str(record.DirectoryRecordType), key) for record, key in records]
        if keys[-1] in self.nodes:
            return  # the same SOP instance twice: one record
        parent: RecordNode = self.fileset._tree
        start = 0
        for level in (2, 1, 0):  # under the deepest level already known
            known = self.nodes.get(keys[level])
            if known is not None:
                parent, start = known, level + 1
                break
        for (record, key), index in zip(records[start:], keys[start:], strict=True):
            node = _Node(record, key)
            node.parent = parent
            self.nodes[index] = node
            parent = node

    def encode(self) -> bytes:
        buf = io.BytesIO()
        self.fileset._write_dicomdir(DicomFileLike(buf), copy_safe=True)
        return buf.getvalue()
