"""`/modify` and `/anonymize` over HTTP: answers, stored results, metadata, errors."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pydicom import dcmread

from tests.api.test_jobs import upload_study, wait_job
from tests.support.servers import Server, start_donjon


def instance_tags(server: Server, study: str) -> list[Any]:
    return [server.get(f"/instances/{i['ID']}/simplified-tags").json()
            for i in server.get(f"/studies/{study}/instances").json()]


def test_study_modification(donjon: Server) -> None:
    study = upload_study(donjon, "MODSTUDY", 101, 3)
    before = donjon.get("/statistics").json()["CountInstances"]
    r = donjon.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "hello"}})
    assert r.status_code == 200
    answer = r.json()
    new_study = answer["ID"]
    patient = donjon.get(f"/studies/{study}").json()["ParentPatient"]
    assert answer == {"Description": "REST API", "FailedInstancesCount": 0, "ID": new_study, "InstancesCount": 3,
                      "IsAnonymization": False, "Path": f"/studies/{new_study}", "PatientID": patient,
                      "Type": "Study"}
    assert donjon.get("/statistics").json()["CountInstances"] == before + 3
    described = donjon.get(f"/studies/{new_study}").json()
    assert described["MainDicomTags"]["StudyDescription"] == "hello"
    assert described["ModifiedFrom"] == study and described["ParentPatient"] == patient
    assert "ModifiedFrom" not in donjon.get(f"/patients/{patient}").json()
    series = donjon.get(f"/studies/{new_study}/series").json()[0]
    assert series["ModifiedFrom"] == donjon.get(f"/studies/{study}/series").json()[0]["ID"]
    instance = donjon.get(f"/studies/{new_study}/instances").json()[0]["ID"]
    md = donjon.get(f"/instances/{instance}/metadata?expand").json()
    assert md["Origin"] == "RestApi" and md["RemoteIP"] == "127.0.0.1" and md["HttpUsername"] == ""
    originals = {i["ID"] for i in donjon.get(f"/studies/{study}/instances").json()}
    assert md["ModifiedFrom"] in originals
    tags = instance_tags(donjon, new_study)
    assert {t["StudyInstanceUID"] for t in tags} == {described["MainDicomTags"]["StudyInstanceUID"]}
    assert len({t["SeriesInstanceUID"] for t in tags}) == 1 and len({t["SOPInstanceUID"] for t in tags}) == 3
    assert all(t["PatientID"] == "MODSTUDY" for t in tags)


def test_patient_modification_and_keep_source(donjon: Server) -> None:
    study = upload_study(donjon, "MODPAT", 102, 2)
    patient = donjon.get(f"/studies/{study}").json()["ParentPatient"]
    r = donjon.post(f"/patients/{patient}/modify", json={})
    assert r.status_code == 400
    assert r.json()["Details"] == "When modifying a patient, her PatientID is required to be modified"
    r = donjon.post(f"/patients/{patient}/modify", json={"Replace": {"PatientID": "MODPAT2"}, "Force": True,
                                                         "KeepSource": False})
    assert r.status_code == 200 and r.json()["Type"] == "Patient"
    new_patient = r.json()["ID"]
    assert donjon.get(f"/patients/{patient}").status_code == 404  # the sources are gone
    assert donjon.get(f"/patients/{new_patient}").json()["MainDicomTags"]["PatientID"] == "MODPAT2"


def test_request_errors(donjon: Server) -> None:
    study = upload_study(donjon, "MODERR", 103, 1)
    cases = [
        ({"Replace": {"PatientID": "x"}}, 400, 8),
        ({"Remove": ["StudyInstanceUID"]}, 400, 8),
        ({"Replace": "x"}, 400, 8),
        ({"Replace": {"NotATag": "x"}}, 400, 27),  # Orthanc 1.10.1: 500 (a client mistake: 400 here)
        ({"Force": "yes"}, 400, 15),
    ]
    for body, status, code in cases:
        r = donjon.post(f"/studies/{study}/modify", json=body)
        assert (r.status_code, r.json()["OrthancStatus"]) == (status, code), body
    for body in (b"hello", b"[]"):
        r = donjon.post(f"/studies/{study}/modify", content=body)
        assert r.status_code == 400 and r.json()["OrthancStatus"] == 15
    r = donjon.post("/studies/nope/modify", json={})
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    r = donjon.post(f"/series/{study}/modify", json={})  # a study id at the series level
    assert r.status_code == 404


def test_anonymization(donjon: Server) -> None:
    study = upload_study(donjon, "ANON", 104, 2)
    first = donjon.post(f"/studies/{study}/anonymize", json={}).json()
    second = donjon.post(f"/studies/{study}/anonymize", json={}).json()
    assert first["IsAnonymization"] is True and first["Type"] == "Study"
    names = [donjon.get(f"/patients/{a['PatientID']}").json()["MainDicomTags"]["PatientName"] for a in (first, second)]
    n1, n2 = (int(n.removeprefix("Anonymized")) for n in names)
    assert n2 == n1 + 1
    original_patient = donjon.get(f"/studies/{study}").json()["ParentPatient"]
    assert donjon.get(f"/patients/{first['PatientID']}").json()["AnonymizedFrom"] == original_patient
    tags = instance_tags(donjon, first["ID"])
    for t in tags:
        assert t["PatientIdentityRemoved"] == "YES"
        assert t["DeidentificationMethod"].endswith("PS 3.15-2021b Table E.1-1 Basic Profile")
        assert t["AccessionNumber"] == "" and "StudyDescription" not in t
    named = donjon.post(f"/studies/{study}/anonymize", json={"Replace": {"PatientName": "Bob"}}).json()
    assert donjon.get(f"/patients/{named['PatientID']}").json()["MainDicomTags"]["PatientName"] == "Bob"


def test_instance_routes_answer_a_file(donjon: Server) -> None:
    study = upload_study(donjon, "MODINST", 105, 1)
    instance = donjon.get(f"/studies/{study}/instances").json()[0]["ID"]
    count = donjon.get("/statistics").json()["CountInstances"]
    r = donjon.post(f"/instances/{instance}/modify", json={"Replace": {"StudyDescription": "x"}})
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom"
    assert "content-disposition" not in r.headers
    ds = dcmread(io.BytesIO(r.content))
    original = dcmread(io.BytesIO(donjon.get(f"/instances/{instance}/file").content))
    assert ds.StudyDescription == "x" and ds.StudyInstanceUID == original.StudyInstanceUID
    assert ds.SOPInstanceUID != original.SOPInstanceUID
    r = donjon.post(f"/instances/{instance}/anonymize", json={})
    ds = dcmread(io.BytesIO(r.content))
    assert ds.PatientName.original_string.startswith(b"Anonymized") and ds.PatientIdentityRemoved == "YES"
    assert donjon.get("/statistics").json()["CountInstances"] == count  # nothing stored
    assert donjon.post("/instances/nope/modify", json={}).status_code == 404


def test_bulk_modify(donjon: Server) -> None:
    a = upload_study(donjon, "BULK", 106, 1)
    b = upload_study(donjon, "BULK", 107, 2)
    r = donjon.post("/tools/bulk-modify", json={"Resources": [a, b], "Replace": {"InstitutionName": "X"},
                                                "Level": "Study"})
    assert r.status_code == 200
    resources = r.json()["Resources"]
    types = [x["Type"] for x in resources]
    assert types == ["Instance"] * 3 + ["Series"] * 2 + ["Study"] * 2 + ["Patient"]
    assert all(x["Path"] == f"/{ {'Instance': 'instances', 'Series': 'series', 'Study': 'studies', 'Patient': 'patients'}[x['Type']]}/{x['ID']}" for x in resources)


@pytest.fixture(scope="module")
def paused_worker() -> Any:
    server = start_donjon({"ConcurrentJobs": 1, "JobsHistorySize": 100})
    yield server
    server.stop()


@pytest.mark.parametrize("permissive", [False, True])
def test_instance_disappearing_midway(paused_worker: Server, permissive: bool) -> None:
    server = paused_worker
    study = upload_study(server, f"GONE{permissive}", 108 + int(permissive), 3)
    job_id = server.post(f"/studies/{study}/modify", json={"Asynchronous": True, "Permissive": permissive}).json()["ID"]
    server.post(f"/jobs/{job_id}/pause")
    state = wait_job(server, job_id, ("Paused", "Success"))["State"]
    if state == "Success":
        pytest.skip("the job ended before it could be paused")
    instances = server.get(f"/studies/{study}/instances").json()
    server.delete(f"/instances/{instances[-1]['ID']}")
    server.post(f"/jobs/{job_id}/resume")
    info = wait_job(server, job_id)
    if permissive:
        assert info["State"] == "Success" and info["Content"]["FailedInstancesCount"] == 1
    else:
        assert info["State"] == "Failure" and info["ErrorCode"] == -1


def test_split_study(donjon: Server) -> None:
    study = upload_study(donjon, "SPLIT", 110, 2, series=2)
    series = [s["ID"] for s in donjon.get(f"/studies/{study}/series").json()]
    r = donjon.post(f"/studies/{study}/split", json={})
    assert r.status_code == 400 and r.json()["Details"] == 'Both the "Series" and the "Instances" fields are missing'
    r = donjon.post(f"/studies/{study}/split", json={"Series": [series[0]], "Replace": {"SeriesDescription": "x"}})
    assert r.status_code == 400 and r.json()["OrthancStatus"] == 3
    r = donjon.post(f"/studies/{study}/split", json={"Series": "x"})
    assert r.status_code == 400 and r.json()["Details"] == "List of strings expected in field: Series"
    r = donjon.post(f"/studies/{study}/split", json={"Series": [series[0]], "Replace": {"StudyDescription": "new"}})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert sorted(answer) == ["Description", "FailedInstancesCount", "InstancesCount", "TargetStudy", "TargetStudyUID"]
    assert answer["InstancesCount"] == 2
    target = donjon.get(f"/studies/{answer['TargetStudy']}").json()
    assert target["MainDicomTags"]["StudyDescription"] == "new"
    assert target["MainDicomTags"]["StudyInstanceUID"] == answer["TargetStudyUID"]
    assert [s["ID"] for s in donjon.get(f"/studies/{study}/series").json()] == [series[1]]  # sources deleted


def test_merge_study(donjon: Server) -> None:
    target = upload_study(donjon, "MERGE1", 111, 1)
    source = upload_study(donjon, "MERGE2", 112, 2)
    r = donjon.post(f"/studies/{target}/merge", json={})
    assert r.status_code == 400 and r.json()["Details"] == "List of strings expected in field: Resources"
    r = donjon.post(f"/studies/{target}/merge", json={"Resources": [target]})
    assert r.status_code == 404 and r.json()["Details"] == f"Cannot merge a study into the same study: {target}"
    patient = donjon.get(f"/studies/{source}").json()["ParentPatient"]
    r = donjon.post(f"/studies/{target}/merge", json={"Resources": [patient]})
    assert r.status_code == 404 and r.json()["Details"].endswith("is a Patient")
    r = donjon.post(f"/studies/{target}/merge", json={"Resources": [source], "KeepSource": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": 2,
                        "TargetStudy": target}
    instances = donjon.get(f"/studies/{target}/instances").json()
    assert len(instances) == 3
    tags = [donjon.get(f"/instances/{i['ID']}/file").content for i in instances]
    assert {dcmread(io.BytesIO(t)).PatientID for t in tags} == {"MERGE1"}
    assert donjon.get(f"/studies/{source}").status_code == 200  # KeepSource
