"""Differential tests of modify, anonymize, jobs and archives: the same requests to Orthanc 1.10.1 and Donjon.

Normalised on purpose:
* Generated UIDs and the anonymized PatientID are random in Orthanc and derived in Donjon: every UID
  that one server generated is replaced by a placeholder numbered in order of appearance, so that the
  structure (which references point to the same new UID) is still compared.
* `DeidentificationMethod` starts with the server's name and version.
* Times (CreationTime, ...) and job IDs differ.
* An unknown tag name gets `Details` in Donjon's error (Orthanc sends none).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.api.test_jobs import wait_job
from tests.support.dicom_files import file_bytes
from tests.support.servers import Server, loaded_pair

pytestmark = pytest.mark.orthanc

FILES = ["Brainix/Epi/IM-0001-0001.dcm", "Brainix/Epi/IM-0001-0002.dcm", "Knee/T1/IM-0001-0001.dcm",
         "DummyCT.dcm", "PrivateTags.dcm", "PatientWith2studies/TEST_1_study_1234.dcm",
         "PatientWith2studies/TEST_1_study_2345.dcm"]
GENERATED = ("1.2.276.0.7230010.3.1.",)


@pytest.fixture(scope="module")
def servers() -> Iterator[list[Server]]:
    yield from loaded_pair(FILES)


class Normaliser:
    """Replaces generated identifiers by placeholders, consistently within one server's answers."""

    def __init__(self, generated: set[str]):
        self.generated = generated
        self.names: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        if value in self.generated or value.startswith(GENERATED):
            return self.names.setdefault(value, f"<uid{len(self.names)}>")
        return value


def flatten(ds: Dataset, norm: Normaliser, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for elem in ds:
        key = f"{prefix}{int(elem.tag):08X}"
        if elem.VR == "SQ":
            out[key] = f"SQ{len(elem.value)}"
            for i, item in enumerate(elem.value):
                out.update(flatten(item, norm, f"{key}[{i}]."))
        elif int(elem.tag) == 0x7FE00010:
            out[key] = f"pixels{len(elem.value or b'')}"
        elif isinstance(elem.value, bytes):
            out[key] = elem.value.rstrip(b"\x00 ").hex()
        else:
            out[key] = norm(str(elem.value).rstrip("\x00 "))
    return out


def file_tags(data: bytes, norm: Normaliser) -> dict[str, str]:
    ds = dcmread(io.BytesIO(data))
    tags = flatten(ds, norm)
    tags.pop("00120063", None)  # DeidentificationMethod: "Orthanc 1.10.1 - ..." vs "Donjon x - ..."
    tags["meta.0002,0003"] = norm(str(ds.file_meta.MediaStorageSOPInstanceUID))
    return tags


def study_of(server: Server, patient_id: str) -> str:
    studies = [s for s in server.get("/studies?expand").json()
               if s["PatientMainDicomTags"].get("PatientID") == patient_id and "ModifiedFrom" not in s
               and "AnonymizedFrom" not in s]
    return sorted(s["ID"] for s in studies)[0]


def job_shape(r: httpx.Response) -> tuple[int, Any]:
    if not r.content:
        return r.status_code, None
    body = r.json()
    if "OrthancStatus" in body:
        return r.status_code, (body["OrthancStatus"], body.get("Details"))
    return r.status_code, sorted(body)


def modified_files(server: Server, study: str) -> dict[str, bytes]:
    """The files of a new study, keyed by the Orthanc ID of the instance they came from."""
    out = {}
    for i in server.get(f"/studies/{study}/instances").json():
        source = server.get(f"/instances/{i['ID']}/metadata/ModifiedFrom")
        if source.status_code != 200:
            source = server.get(f"/instances/{i['ID']}/metadata/AnonymizedFrom")
        out[source.text] = server.get(f"/instances/{i['ID']}/file").content
    return out


@pytest.mark.parametrize("route, body", [
    ("modify", {"Replace": {"StudyDescription": "hello", "InstitutionName": "Clinic"}, "Remove": ["StationName"]}),
    ("modify", {"Replace": {"StudyDescription": "kept"}, "Keep": ["SeriesInstanceUID"], "Force": True}),
    ("anonymize", {}),
    ("anonymize", {"Keep": ["StudyDescription", "SeriesDescription"], "KeepPrivateTags": True}),
    ("anonymize", {"DicomVersion": "2017c", "Replace": {"PatientName": "Hidden"}}),
    ("anonymize", {"DicomVersion": "2008"}),
])
def test_study_modification_results(servers: list[Server], route: str, body: dict[str, Any]) -> None:
    answers = []
    files = []
    for server in servers:
        study = study_of(server, "5Yp0E")
        r = server.post(f"/studies/{study}/{route}", json=body)
        answers.append(job_shape(r))
        assert r.status_code == 200, r.text
        content = r.json()
        files.append(modified_files(server, content["ID"]))
        assert content["InstancesCount"] == 2 and content["IsAnonymization"] == (route == "anonymize")
    assert answers[0] == answers[1]
    assert sorted(files[0]) == sorted(files[1])  # same sources
    for source in files[0]:
        tags = []
        for server_files in files:
            norm = Normaliser(set())
            tags.append(file_tags(server_files[source], norm))
        if route == "anonymize":
            for t in tags:  # Orthanc: a random UUID; Donjon: a UUID too
                assert len(t.pop("00100020")) == 36
                name = t.pop("00100010")
                assert name.startswith("Anonymized") or name == body.get("Replace", {}).get("PatientName")
        assert tags[0] == tags[1], {k: (tags[0].get(k), tags[1].get(k)) for k in set(tags[0]) | set(tags[1])
                                    if tags[0].get(k) != tags[1].get(k)}


def test_private_tags_and_other_samples(servers: list[Server]) -> None:
    for patient in ("ozp00SjY2xG", "95", "TEST_1"):
        tags = []
        for server in servers:
            study = study_of(server, patient)
            content = server.post(f"/studies/{study}/anonymize", json={}).json()
            files = modified_files(server, content["ID"])
            tags.append({k: file_tags(v, Normaliser(set())) for k, v in files.items()})
        for t in (t for per_server in tags for t in per_server.values()):
            t.pop("00100020")
            t.pop("00100010")
        assert tags[0] == tags[1], patient


@pytest.mark.parametrize("body", [
    {}, {"Replace": {"PatientID": "x"}}, {"Replace": {"PatientID": "x"}, "Force": True},
    {"Remove": ["PatientID"], "Force": True}, {"Replace": "x"}, {"Remove": "x"}, {"Replace": {"Nope": "x"}},
    {"Synchronous": 1}, {"Priority": "x"}, {"Force": "x"}, {"Replace": {"StudyDescription": 5}},
])
def test_error_answers(servers: list[Server], body: dict[str, Any]) -> None:
    shapes = []
    for server in servers:
        patient = server.get(f"/studies/{study_of(server, 'ozp00SjY2xG')}").json()["ParentPatient"]
        shapes.append(job_shape(server.post(f"/patients/{patient}/modify", json=body)))
    if shapes[0][1] == (27, None):  # Donjon names the unknown tag in Details and answers 400, not 500
        assert shapes == [(500, (27, None)), (400, (27, "Unknown DICOM tag: Nope"))]
        return
    assert shapes[0] == shapes[1]


def test_unknown_and_malformed(servers: list[Server]) -> None:
    for path, content in (("/studies/nope/modify", b"{}"), ("/studies/nope/anonymize", b"{}"),
                          ("/studies/nope/archive", b"{}"), ("/tools/create-archive", b'["nope"]'),
                          ("/instances/nope/modify", b"{}")):
        shapes = [job_shape(s.post(path, content=content)) for s in servers]
        assert shapes[0] == shapes[1], path
    shapes = [job_shape(s.get("/studies/nope/archive")) for s in servers]
    assert shapes[0] == shapes[1]
    for s in servers:
        study = study_of(s, "ozp00SjY2xG")
        assert s.post(f"/studies/{study}/modify", content=b"hello").status_code == 400


def test_job_fields(servers: list[Server]) -> None:
    infos = []
    for server in servers:
        study = study_of(server, "ozp00SjY2xG")
        job = server.post(f"/studies/{study}/modify", json={"Asynchronous": True}).json()
        assert sorted(job) == ["ID", "Path"]
        info = wait_job(server, job["ID"])
        infos.append(info)
        assert server.get("/jobs/nope").status_code == 404
        assert server.post("/jobs/nope/pause").status_code == 400
    assert sorted(infos[0]) == sorted(infos[1])
    assert sorted(infos[0]["Content"]) == sorted(infos[1]["Content"])
    for key in ("Type", "State", "Progress", "Priority", "ErrorCode", "ErrorDescription", "ErrorDetails"):
        assert infos[0][key] == infos[1][key], key
    failed = []
    for server in servers:
        study = study_of(server, "ozp00SjY2xG")
        job = server.post(f"/studies/{study}/modify", json={"Replace": {"PatientID": "x"}, "Force": True,
                                                            "Asynchronous": True}).json()
        failed.append(wait_job(server, job["ID"]))
    for key in ("State", "ErrorCode", "ErrorDescription", "ErrorDetails", "Content"):
        assert failed[0][key] == failed[1][key], key


def zip_names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content)).namelist()


def test_archive_structure(servers: list[Server], tmp_path: Path) -> None:
    for path in ("/patients/{p}/archive", "/patients/{p}/media", "/studies/{s}/archive", "/studies/{b}/media"):
        names = []
        for server in servers:  # patients that no test modified (new studies have random IDs, hence order)
            s = study_of(server, "TEST_1")
            b = study_of(server, "5Yp0E")
            p = server.get(f"/studies/{s}").json()["ParentPatient"]
            names.append(zip_names(server.get(path.format(p=p, s=s, b=b))))
        assert names[0] == names[1], path
    answers = []
    for server in servers:
        every = [server.get(f"/studies/{study_of(server, p)}").json()["ParentPatient"] for p in ("TEST_1", "95")]
        every.append(study_of(server, "5Yp0E"))
        r = server.post("/tools/create-archive", json={"Resources": every})
        answers.append((r.headers["content-disposition"], zip_names(r)))
        job = server.post("/tools/create-archive", json={"Resources": every, "Asynchronous": True}).json()
        info = wait_job(server, job["ID"])
        assert sorted(info["Content"]) == ["ArchiveSize", "ArchiveSizeMB", "Description", "InstancesCount",
                                           "UncompressedSize", "UncompressedSizeMB"]
        assert info["Type"] == "Archive"
        r = server.get(f"/jobs/{job['ID']}/archive")
        answers.append((r.headers["content-disposition"], sorted(zip_names(r))))
        answers.append(job_shape(server.get(f"/jobs/{job['ID']}/other")))
    assert answers[:3] == answers[3:]


def test_duplicate_folder_names_and_odd_tags(servers: list[Server]) -> None:
    from tests.api.test_jobs import small_instance
    names = []
    for server in servers:
        for study in (301, 302):
            for series in (1, 2):
                data = small_instance("DUP^NAMES", study, series, 1)
                ds = dcmread(io.BytesIO(data))
                ds.AccessionNumber = "SAME"
                ds.SeriesDescription = "same"
                if series == 2:
                    del ds.Modality
                out = io.BytesIO()
                ds.save_as(out)
                assert server.post("/instances", content=out.getvalue()).status_code == 200
        p = server.get(f"/studies/{study_of(server, 'DUP^NAMES')}").json()["ParentPatient"]
        names.append(zip_names(server.get(f"/patients/{p}/archive")))
    assert names[0] == names[1]


@pytest.mark.parametrize("route, body", [
    ("modify", {"Replace": {"StudyDescription": "x"}}),
    ("modify", {"Replace": {"SeriesInstanceUID": "1.2.3"}, "Force": True}),
    ("anonymize", {"Replace": {"PatientName": "N"}}),
])
def test_instance_routes(servers: list[Server], route: str, body: dict[str, Any]) -> None:
    tags = []
    for server in servers:
        instance = server.get(f"/studies/{study_of(server, 'ozp00SjY2xG')}/instances").json()[0]["ID"]
        r = server.post(f"/instances/{instance}/{route}", json=body)
        assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
        t = file_tags(r.content, Normaliser(set()))
        if route == "anonymize":
            t.pop("00100020")
        tags.append(t)
    assert tags[0] == tags[1]


def test_bulk_answers(servers: list[Server]) -> None:
    shapes = []
    for server in servers:
        study = study_of(server, "TEST_1")
        r = server.post("/tools/bulk-modify", json={"Resources": [study], "Replace": {"StudyDescription": "b"},
                                                    "Level": "Study"})
        assert r.status_code == 200, r.text
        content = r.json()
        shapes.append((sorted(content), [x["Type"] for x in content["Resources"]]))
    assert shapes[0] == shapes[1]


def test_split_and_merge(servers: list[Server]) -> None:
    from tests.api.test_jobs import upload_study
    results = []
    for server in servers:
        study = upload_study(server, "SPLITDIFF", 401, 2, series=2)
        series = sorted(s["ID"] for s in server.get(f"/studies/{study}/series").json())
        shapes = [job_shape(server.post(f"/studies/{study}/split", json=body)) for body in (
            {}, {"Series": "x"}, {"Series": ["nope"]}, {"Series": [series[0]], "Replace": {"SeriesDescription": "x"}},
            {"Series": [series[0]], "Replace": {"StudyInstanceUID": "1.2"}})]
        r = server.post(f"/studies/{study}/split", json={"Series": [series[0]], "Replace": {"StudyDescription": "S"},
                                                         "Remove": ["AccessionNumber"]})
        shapes.append(job_shape(r))
        split = r.json()
        files = [server.get(f"/instances/{i['ID']}/file").content
                 for i in server.get(f"/studies/{split['TargetStudy']}/instances").json()]
        split_tags = sorted(sorted(file_tags(f, Normaliser({split["TargetStudyUID"]})).items()) for f in files)
        remaining = [s["ID"] for s in server.get(f"/studies/{study}/series").json()]
        target = upload_study(server, "MERGEDIFF", 402, 1)
        merge_shapes = [job_shape(server.post(f"/studies/{target}/merge", json=body)) for body in (
            {}, {"Resources": ["nope"]}, {"Resources": [target]})]
        r = server.post(f"/studies/{target}/merge", json={"Resources": [study]})
        merge_shapes.append(job_shape(r))
        merged = sorted(sorted(file_tags(server.get(f"/instances/{i['ID']}/file").content, Normaliser(set())).items())
                        for i in server.get(f"/studies/{target}/instances").json())
        results.append((shapes, split_tags, remaining == [series[1]], merge_shapes, merged,
                        server.get(f"/studies/{study}").status_code))
    assert results[0][0] == results[1][0]
    assert results[0][1] == results[1][1]
    assert results[0][2] and results[1][2]
    assert results[0][3] == results[1][3]
    assert results[0][4] == results[1][4]
    assert results[0][5] == results[1][5] == 404


_VALUES = {"AE": "AET", "AS": "030Y", "CS": "CS", "DA": "20200101", "DS": "1.5", "DT": "20200101101010",
           "IS": "7", "LO": "LO", "LT": "LT", "PN": "PN^X", "SH": "SH", "ST": "ST", "TM": "101010", "UC": "UC",
           "UR": "http://x", "UT": "UT", "US": 7, "SS": 7, "UL": 7, "SL": 7, "FL": 1.5, "FD": 1.5, "SV": 7, "UV": 7,
           "AT": 0x00100010, "OB": b"\x01\x02", "OW": b"\x01\x02", "OF": b"\x00\x00\x80\x3f", "OD": b"\x00" * 8,
           "OL": b"\x01\x02\x03\x04", "OV": b"\x00" * 8, "UN": b"\x01\x02"}


def every_attribute_file() -> bytes:
    """A file holding every attribute of pydicom's dictionary (UIDs distinct, one item per sequence)."""
    from pydicom.datadict import DicomDictionary
    from pydicom.sequence import Sequence
    ds = Dataset()
    for n, (tag, (vr, _vm, _name, _retired, keyword)) in enumerate(sorted(DicomDictionary.items())):
        vr = vr.split(" or ")[0]
        if (tag >> 16) in (0x0000, 0x0002, 0x7FE0, 0xFFFE, 0xFFFC) or not keyword or vr == "NONE":
            continue
        if vr == "SQ":
            item = Dataset()
            item.CodeValue = f"SQ{n}"
            ds.add_new(tag, vr, Sequence([item]))
        else:
            ds.add_new(tag, vr, f"1.2.3.{n}" if vr == "UI" else _VALUES[vr])
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.999.1", "1.2.3.999.2", "1.2.3.999.3"
    ds.PatientID, ds.PatientName = "EVERY", "EVERY^ATTRIBUTE"
    ds.add_new(0x00090010, "LO", "CREATOR")
    ds.add_new(0x00091001, "LO", "PRIVATE")
    return file_bytes(ds)


@pytest.mark.parametrize("version", ["2008", "2017c", "2021b"])
def test_profile_on_every_attribute(servers: list[Server], version: str) -> None:
    data = every_attribute_file()
    tags = []
    for server in servers:
        instance = server.post("/instances", content=data).json()["ID"]
        r = server.post(f"/instances/{instance}/anonymize", json={"DicomVersion": version,
                                                                   "Replace": {"PatientName": "P"}})
        assert r.status_code == 200, r.text
        t = file_tags(r.content, Normaliser(set()))
        t.pop("00100020")
        tags.append(t)
        server.delete(f"/instances/{instance}")
    assert tags[0] == tags[1], {k: (tags[0].get(k), tags[1].get(k)) for k in set(tags[0]) | set(tags[1])
                                if tags[0].get(k) != tags[1].get(k)}
