"""Donjon and Orthanc 1.10.1 over DICOM: the same C-FIND to both, and each as the other's modality.

* C-FIND differential: every sample in both servers, the same identifiers sent with pynetdicom at each
  level, the answers (all their elements, as strings) compared as sorted lists.
* Orthanc C-STOREs to Donjon and C-MOVEs from it; Donjon queries Orthanc, retrieves from it (C-MOVE
  to Donjon) and stores to it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from tests.diff.test_resources_diff import CHARSET_DIFFERENCES, CHARSET_FILES
from tests.support.servers import ORTHANC, SAMPLES, Server, sample_files, start_donjon, start_orthanc

pytestmark = [pytest.mark.orthanc, pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed")]

ALLOW = {"DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True, "DicomAlwaysAllowGet": True}


@pytest.fixture(scope="module")
def pair(samples: Any) -> Iterator[tuple[Server, Server]]:
    orthanc = start_orthanc({"DicomAet": "ORTHANC", **ALLOW})
    donjon = start_donjon({"DicomAet": "DONJON", **ALLOW})
    for f in sample_files():
        data = f.read_bytes()
        orthanc.post("/instances", content=data)
        donjon.post("/instances", content=data)
    orthanc.put("/modalities/donjon", json=["DONJON", "127.0.0.1", donjon.dicom_port])
    donjon.put("/modalities/orthanc", json=["ORTHANC", "127.0.0.1", orthanc.dicom_port])
    yield orthanc, donjon
    donjon.stop()
    orthanc.stop()


def charset_values() -> set[str]:
    """Identifiers of the samples whose strings differ on purpose (tests/diff/test_resources_diff.py)."""
    out = set(CHARSET_DIFFERENCES)
    for name in CHARSET_FILES:
        ds = pydicom.dcmread(SAMPLES / name, stop_before_pixels=True, force=True)
        out.update(str(ds.get(k, "")) for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
    out.discard("")
    return out


def c_find(server: Server, aet: str, level: str, keys: dict[str, Any]) -> tuple[list[dict[str, str]], int]:
    """Answers (tag -> string, RetrieveAETitle left out) and the final status of one C-FIND."""
    model = PatientRootQueryRetrieveInformationModelFind if level == "PATIENT" else StudyRootQueryRetrieveInformationModelFind
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    ae = AE(ae_title="DIFFSCU")
    ae.add_requested_context(model)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=aet)
    assert assoc.is_established
    answers, final = [], -1
    try:
        for status, identifier in assoc.send_c_find(ds, model):
            if status.Status in (0xFF00, 0xFF01):
                answers.append({f"{int(e.tag):08x}": _text(e.value) for e in identifier if e.tag != 0x00080054})
            else:
                final = int(status.Status)
    finally:
        assoc.release()
    return sorted(answers, key=lambda a: sorted(a.items())), final


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(_text(v) for v in value)
    if type(value).__name__ == "Sequence":
        return repr([{f"{int(e.tag):08x}": _text(e.value) for e in item} for item in value])
    return str(value)


FINDS: list[tuple[str, dict[str, Any]]] = [
    ("PATIENT", {"PatientName": "", "PatientID": "", "PatientBirthDate": "", "PatientSex": ""}),
    ("PATIENT", {"PatientName": "K*", "NumberOfPatientRelatedStudies": "", "NumberOfPatientRelatedSeries": "",
                 "NumberOfPatientRelatedInstances": ""}),
    ("PATIENT", {"PatientName": "knee", "PatientID": ""}),
    ("PATIENT", {"PatientID": "887\\COMMON", "PatientName": ""}),
    ("PATIENT", {"PatientBirthDate": "19000101-19500101", "PatientName": ""}),
    ("STUDY", {"PatientName": "", "StudyDescription": "", "StudyDate": "", "StudyInstanceUID": "",
               "AccessionNumber": "", "ModalitiesInStudy": "", "NumberOfStudyRelatedSeries": "",
               "NumberOfStudyRelatedInstances": ""}),
    ("STUDY", {"StudyDate": "20000101-20100101", "StudyInstanceUID": ""}),
    ("STUDY", {"StudyDescription": "*knee*", "StudyInstanceUID": ""}),
    ("STUDY", {"StudyDescription": "*KNEE*", "StudyInstanceUID": ""}),
    ("STUDY", {"ModalitiesInStudy": "CT\\PT", "StudyInstanceUID": "", "SOPClassesInStudy": ""}),
    ("STUDY", {"Modality": "MR", "StudyInstanceUID": ""}),
    ("STUDY", {"PatientName": "B*", "StudyInstanceUID": "", "InstitutionName": "", "SliceThickness": ""}),
    ("STUDY", {"PatientName": "BRAINIX", "StudyInstanceUID": "", "ReferencedStudySequence": []}),
    ("STUDY", {"StudyDate": "2006*"}),
    ("SERIES", {"Modality": "MR", "SeriesInstanceUID": "", "SeriesDescription": "", "NumberOfSeriesRelatedInstances": ""}),
    ("SERIES", {"Modality": "CT\\PT", "PatientName": "", "SeriesNumber": "", "StudyInstanceUID": ""}),
    ("SERIES", {"SeriesDescription": "*T1*", "SeriesInstanceUID": "", "BodyPartExamined": ""}),
    ("IMAGE", {"PatientName": "KNEE", "InstanceNumber": "5", "SOPInstanceUID": "", "ImagePositionPatient": ""}),
    ("IMAGE", {"SOPInstanceUID": "", "Rows": 512, "Columns": None}),
    ("PATIENT", {"PatientName": "Test-é*", "PatientID": "", "SpecificCharacterSet": "ISO_IR 100"}),
    ("PATIENT", {"PatientName": "TEST-É*", "PatientID": ""}),
    ("PATIENT", {"PatientName": "*", "PatientID": "", "IssuerOfPatientID": "", "OtherPatientIDs": ""}),
    ("STUDY", {"StudyInstanceUID": "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390\\1.2.3", "PatientID": ""}),
    ("STUDY", {"StudyTime": "090000-", "StudyInstanceUID": "", "TimezoneOffsetFromUTC": ""}),
    ("STUDY", {"AccessionNumber": "*", "StudyInstanceUID": "", "ProcedureCodeSequence": []}),
    ("IMAGE", {"PatientName": "KNEE", "InstanceNumber": "1", "ReferencedImageSequence": [], "ImageType": "",
               "SOPInstanceUID": ""}),
    ("IMAGE", {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.4", "InstanceNumber": "2\\3", "SOPInstanceUID": "",
               "AcquisitionDate": ""}),
]


@pytest.mark.parametrize(("level", "keys"), FINDS, ids=lambda x: str(x)[:60])
def test_c_find_matches_orthanc(pair: tuple[Server, Server], level: str, keys: dict[str, Any]) -> None:
    orthanc, donjon = pair
    a, status_a = c_find(orthanc, "ORTHANC", level, keys)
    b, status_b = c_find(donjon, "DONJON", level, keys)
    assert status_a == status_b
    skip = charset_values()
    a = [x for x in a if not skip & set(x.values())]
    b = [x for x in b if not skip & set(x.values())]
    assert a == b


def test_find_limit_matches_orthanc(samples: Any) -> None:
    config = {"LimitFindResults": 2, "LimitFindInstances": 3, **ALLOW}
    orthanc, donjon = start_orthanc({"DicomAet": "O", **config}), start_donjon({"DicomAet": "D", **config})
    try:
        for path in [*sorted((samples / "Brainix" / "Flair").iterdir())[:5], samples / "PrivateTags.dcm"]:
            orthanc.upload(path)
            donjon.upload(path)
        for level, limit in (("STUDY", 2), ("IMAGE", 3)):
            a = c_find(orthanc, "O", level, {"SOPInstanceUID": ""} if level == "IMAGE" else {"StudyInstanceUID": ""})
            b = c_find(donjon, "D", level, {"SOPInstanceUID": ""} if level == "IMAGE" else {"StudyInstanceUID": ""})
            assert (len(a[0]), a[1]) == (len(b[0]), b[1])
            assert len(a[0]) <= limit
    finally:
        orthanc.stop()
        donjon.stop()


# -- each as the other's modality -------------------------------------------------------------------------

def _wait_job(server: Server, job_id: str) -> dict[str, Any]:
    for _ in range(300):
        info = server.get(f"/jobs/{job_id}").json()
        if info["State"] in ("Success", "Failure"):
            return info
        time.sleep(0.1)
    raise AssertionError("the job did not finish")


def test_echo_both_ways(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    assert orthanc.post("/modalities/donjon/echo", content=b"").json() == {}
    assert donjon.post("/modalities/orthanc/echo", content=b"").json() == {}


def test_orthanc_stores_to_donjon() -> None:
    orthanc, donjon = start_orthanc({"DicomAet": "O2"}), start_donjon({"DicomAet": "D2"})
    try:
        orthanc.put("/modalities/donjon", json=["D2", "127.0.0.1", donjon.dicom_port])
        for path in [*sorted((SAMPLES / "Brainix" / "Epi").iterdir())[:6], SAMPLES / "Formats" / "Jpeg.dcm", SAMPLES / "Formats" / "Rle.dcm"]:
            orthanc.upload(path)
        job = orthanc.post("/modalities/donjon/store", json={"Resources": orthanc.get("/instances").json(),
                                                            "Synchronous": True})
        assert job.status_code == 200, job.text
        assert sorted(orthanc.get("/instances").json()) == sorted(donjon.get("/instances").json())
        for iid in donjon.get("/instances").json():
            assert orthanc.get(f"/instances/{iid}/tags?short").json() == donjon.get(f"/instances/{iid}/tags?short").json()
            md = donjon.get(f"/instances/{iid}/metadata?expand").json()
            assert (md["RemoteAET"], md["CalledAET"], md["Origin"]) == ("O2", "D2", "DicomProtocol")
            assert md["TransferSyntax"] == orthanc.get(f"/instances/{iid}/metadata/TransferSyntax").text
    finally:
        orthanc.stop()
        donjon.stop()


def test_orthanc_queries_and_moves_from_donjon() -> None:
    orthanc, donjon = start_orthanc({"DicomAet": "O3"}), start_donjon({"DicomAet": "D3"})
    try:
        orthanc.put("/modalities/donjon", json=["D3", "127.0.0.1", donjon.dicom_port])
        donjon.put("/modalities/orthanc", json=["O3", "127.0.0.1", orthanc.dicom_port])
        for path in sorted((SAMPLES / "Brainix" / "Flair").iterdir())[:8]:
            donjon.upload(path)
        q = orthanc.post("/modalities/donjon/query", json={"Level": "Study", "Query": {"PatientName": "BRAIN*"}})
        assert q.status_code == 200, q.text
        qid = q.json()["ID"]
        answers = orthanc.get(f"/queries/{qid}/answers?expand&simplify").json()
        assert len(answers) == 1 and answers[0]["PatientName"] == "BRAINIX" and answers[0]["RetrieveAETitle"] == "D3"
        r = orthanc.post(f"/queries/{qid}/retrieve", content=b"O3")
        assert r.status_code == 200, r.text
        assert sorted(orthanc.get("/instances").json()) == sorted(donjon.get("/instances").json())
        md = orthanc.get(f"/instances/{orthanc.get('/instances').json()[0]}/metadata?expand").json()
        assert md["RemoteAET"] == "D3"
    finally:
        orthanc.stop()
        donjon.stop()


def test_donjon_queries_retrieves_and_stores_with_orthanc() -> None:
    orthanc, donjon = start_orthanc({"DicomAet": "O4"}), start_donjon({"DicomAet": "D4"})
    try:
        orthanc.put("/modalities/donjon", json=["D4", "127.0.0.1", donjon.dicom_port])
        donjon.put("/modalities/orthanc", json=["O4", "127.0.0.1", orthanc.dicom_port])
        for path in sorted((SAMPLES / "Brainix" / "Flair").iterdir())[:6]:
            orthanc.upload(path)
        q = donjon.post("/modalities/orthanc/query", json={"Level": "Series", "Query": {"SeriesDescription": "",
                                                                                       "Modality": "MR"}})
        assert q.status_code == 200, q.text
        qid = q.json()["ID"]
        (answer,) = donjon.get(f"/queries/{qid}/answers?expand&simplify").json()
        assert (answer["Modality"], answer["RetrieveAETitle"]) == ("MR", "O4")
        job = donjon.post(f"/queries/{qid}/answers/0/retrieve", json={"TargetAet": "D4", "Synchronous": False}).json()
        assert _wait_job(donjon, job["ID"])["State"] == "Success"
        assert sorted(orthanc.get("/instances").json()) == sorted(donjon.get("/instances").json())
        # and back: delete from Orthanc, store from Donjon
        for pid in orthanc.get("/patients").json():
            orthanc.delete(f"/patients/{pid}")
        (study,) = donjon.get("/studies").json()
        content = donjon.post("/modalities/orthanc/store", json={"Resources": [study]}).json()
        assert (content["InstancesCount"], content["FailedInstancesCount"], content["RemoteAet"]) == (6, 0, "O4")
        assert sorted(orthanc.get("/instances").json()) == sorted(donjon.get("/instances").json())
        md = orthanc.get(f"/instances/{orthanc.get('/instances').json()[0]}/metadata?expand").json()
        assert (md["RemoteAET"], md["CalledAET"]) == ("D4", "O4")
        # C-GET from Orthanc (Donjon's /modalities/{id}/get, an Orthanc 1.12.6 route)
        uid = donjon.get(f"/studies/{study}").json()["MainDicomTags"]["StudyInstanceUID"]
        donjon.wipe()
        r = donjon.post("/modalities/orthanc/get", json={"Level": "Study", "Resources": [{"StudyInstanceUID": uid}]})
        assert r.status_code == 200, r.text
        assert sorted(orthanc.get("/instances").json()) == sorted(donjon.get("/instances").json())
    finally:
        orthanc.stop()
        donjon.stop()


def test_exports_of_a_store_match_orthanc() -> None:
    rows = []
    for start in (start_orthanc, start_donjon):
        source, target = start({"DicomAet": "SRC", "LogExportedResources": True}), start_donjon({"DicomAet": "DST"})
        try:
            source.put("/modalities/dst", json=["DST", "127.0.0.1", target.dicom_port])
            source.upload(SAMPLES / "Brainix" / "Flair" / "IM-0001-0001.dcm")
            (study,) = source.get("/studies").json()
            (series,) = source.get("/series").json()
            assert source.post("/modalities/dst/store", json={"Resources": [study, series]}).status_code == 200
            rows.append([{k: v for k, v in e.items() if k != "Date"} for e in source.get("/exports").json()["Exports"]])
        finally:
            source.stop()
            target.stop()
    assert rows[0] == rows[1]
