"""Differential tests of media DICOMDIRs and archive arguments: the same requests to Orthanc 1.10.1 and Donjon.

Normalised on purpose:
* A study record without any study, series, acquisition or content date/time gets the current date
  and time (`HHMMSS.000000`) in both servers; those values are replaced by a placeholder.
* Only ASCII values are compared: Orthanc 1.10.1 drops the non-ASCII characters of record values
  (and the backslashes of a multi-valued SpecificCharacterSet), Donjon keeps them in the file's
  character set (documented in docs/jobs.md).
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.support.dicom_files import file_bytes
from tests.support.servers import SAMPLES, Server, loaded_pair

pytestmark = pytest.mark.orthanc

SAMPLE_FILES = ["Brainix/Epi/IM-0001-0001.dcm", "Brainix/Epi/IM-0001-0002.dcm", "Knee/T1/IM-0001-0001.dcm",
                "DummyCT.dcm", "PatientIdsCollision/Issue131-a.dcm", "PatientIdsCollision/Issue131-b.dcm",
                "Phenix/IM-0001-0001.dcm", "Formats/Jpeg.dcm"]


def _file(study: int, **tags: Any) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = tags.pop("SOPClassUID", "1.2.840.10008.5.1.4.1.1.2")
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{study}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.1"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.1"
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    return file_bytes(ds)


# Many candidate "extended" attributes on one file; the others lack, or leave empty, attributes of the records.
GENERATED = [
    _file(1, PatientID="RICH", PatientName="R^ICH", PatientBirthDate="19800101", StudyDate="20200102",
          StudyTime="101010", StudyDescription="Study", StudyID="S1", AccessionNumber="ACC1",
          ReferringPhysicianName="Ref^Doc", InstitutionName="Inst", Modality="MR", SeriesNumber="3",
          SeriesDescription="Series", SeriesDate="20200103", BodyPartExamined="HEAD", ProtocolName="Proto",
          InstanceNumber="7", ImageType=["ORIGINAL", "PRIMARY"], ImageComments="Comment", Rows=2, Columns=2,
          AcquisitionDate="20200104", ContentDate="20200105", NumberOfFrames="1", SliceLocation="1.5",
          SpecificCharacterSet="ISO_IR 100"),
    _file(2, PatientID="MINIMAL"),
    _file(3, PatientID="SERIESDATE", SeriesDate="20210101", SeriesTime="090909", AcquisitionDate="20220101"),
    _file(4, PatientID="ACQDATE", AcquisitionDate="20220101", ContentDate="20230101", ContentTime="080808"),
    _file(5, PatientID="EMPTY", StudyDate="", Modality="", SeriesNumber="", InstanceNumber="", StudyID="",
          SeriesDescription="", PatientName=""),
    _file(6, PatientID="SR", SOPClassUID="1.2.840.10008.5.1.4.1.1.88.22", Modality="SR", ContentDate="20200101",
          ContentTime="1010", CompletionFlag="COMPLETE", VerificationFlag="UNVERIFIED"),
]


@pytest.fixture(scope="module")
def servers() -> Iterator[list[Server]]:
    yield from loaded_pair(SAMPLE_FILES, GENERATED)


def _value(elem: Any) -> str:
    value = elem.value
    text = value.hex() if isinstance(value, bytes) else str(value)
    return "".join(c for c in text if c.isascii())  # see the module's docstring


def dicomdir(r: httpx.Response) -> tuple[list[str], list[dict[str, str]]]:
    """The ZIP's file names and the DICOMDIR's records (offsets left out: the encodings differ)."""
    assert r.status_code == 200, r.text
    z = zipfile.ZipFile(io.BytesIO(r.content))
    ds = dcmread(io.BytesIO(z.read("DICOMDIR")))
    assert ds.FileSetID == "ORTHANC_MEDIA"
    today = time.strftime("%Y%m%d")
    records = []
    for rec in ds.DirectoryRecordSequence:
        out = {}
        for elem in rec:
            if elem.tag in (0x00041400, 0x00041420):
                continue
            value = _value(elem)
            if elem.keyword == "StudyTime" and value.endswith(".000000"):
                value = "<now>"
            elif elem.keyword == "StudyDate" and value == today:
                value = "<today>"
            out[elem.keyword] = value
        records.append(out)
    return z.namelist(), records


def _all_patients(server: Server) -> list[str]:
    return list(server.get("/patients").json())


@pytest.mark.parametrize("route, body", [
    ("/tools/create-media", {}),
    ("/tools/create-media", {"Extended": True}),
    ("/tools/create-media-extended", {}),
    ("/tools/create-media-extended", {"Extended": False}),
])
def test_dicomdir_records(servers: list[Server], route: str, body: dict[str, Any]) -> None:
    answers = [dicomdir(s.post(route, json={"Resources": _all_patients(s), **body})) for s in servers]
    assert answers[0][0] == answers[1][0]
    assert len(answers[0][1]) == len(answers[1][1])
    for ours, theirs in zip(answers[1][1], answers[0][1], strict=True):
        assert ours == theirs


@pytest.mark.parametrize("query", ["", "?extended", "?extended=false"])
def test_dicomdir_of_a_study(servers: list[Server], query: str) -> None:
    answers = []
    for server in servers:
        study = server.post("/instances", content=GENERATED[0]).json()["ParentStudy"]
        answers.append(dicomdir(server.get(f"/studies/{study}/media{query}")))
    assert answers[0] == answers[1]


def _error(r: httpx.Response) -> tuple[int, Any]:
    if not r.content:
        return r.status_code, None
    body = r.json()
    body.pop("Uri", None)
    return r.status_code, body


@pytest.mark.parametrize("value", ["foo", "", "1.2.3", 12, None])
def test_bad_transcode(servers: list[Server], value: Any) -> None:
    answers = []
    for server in servers:
        study = server.post("/instances", content=GENERATED[1]).json()["ParentStudy"]
        rs = [server.post(f"/studies/{study}/archive", json={"Transcode": value}),
              server.post(f"/studies/{study}/media", json={"Transcode": value, "Asynchronous": True}),
              server.post("/tools/create-archive", json={"Resources": [study], "Transcode": value}),
              server.post("/studies/nope/archive", json={"Transcode": value})]
        if isinstance(value, str):
            rs += [server.get(f"/studies/{study}/archive?transcode={value}"),
                   server.get(f"/studies/{study}/media?transcode={value}"),
                   server.get(f"/studies/nope/media?transcode={value}")]
        answers.append([_error(r) for r in rs])
    assert answers[0] == answers[1]


def test_transcoded_archive(servers: list[Server]) -> None:
    syntaxes = []
    for server in servers:
        series = server.upload(SAMPLES / SAMPLE_FILES[0]).json()["ParentSeries"]
        r = server.get(f"/series/{series}/media?transcode=1.2.840.10008.1.2")
        names, records = dicomdir(r)
        z = zipfile.ZipFile(io.BytesIO(r.content))
        syntaxes.append(([str(dcmread(io.BytesIO(z.read(n))).file_meta.TransferSyntaxUID) for n in names
                          if n != "DICOMDIR"], [rec.get("ReferencedTransferSyntaxUIDInFile") for rec in records]))
    assert syntaxes[0] == syntaxes[1]
    assert set(syntaxes[0][0]) == {"1.2.840.10008.1.2"}
