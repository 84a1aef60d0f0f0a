"""`/modalities` and `/queries` between two Donjon servers: CRUD, echo, query, retrieve, move, store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import SAMPLES, Server, free_port, start_donjon

BRAINIX = "Brainix/Flair"


@pytest.fixture(scope="module")
def pair(samples: Any) -> Iterator[tuple[Server, Server]]:
    """`a` (empty, AET A) and `b` (Brainix Flair, AET B), each knowing the other."""
    a = start_donjon({"DicomAet": "A", "DicomModalities": {"arr": ["X", "h", 1234, "GE"],
                                                          "obj": {"AET": "Y", "Host": "h", "Port": "104",
                                                                  "AllowStore": False, "LocalAet": "ME",
                                                                  "Timeout": 3}}})
    b = start_donjon({"DicomAet": "B"})
    assert a.put("/modalities/b", json=["B", "127.0.0.1", b.dicom_port]).status_code == 200
    assert b.put("/modalities/a", json={"AET": "A", "Host": "127.0.0.1", "Port": a.dicom_port}).status_code == 200
    for path in sorted((samples / BRAINIX).iterdir()):
        b.upload(path)
    yield a, b
    a.stop()
    b.stop()


def error(r: Any) -> tuple[int, int, str | None]:
    body = r.json()
    return r.status_code, body["OrthancStatus"], body.get("Details")


# -- CRUD ------------------------------------------------------------------------------------------------

def test_both_configuration_forms(pair: tuple[Server, Server]) -> None:
    a, _ = pair
    assert a.get("/modalities").json() == ["arr", "b", "obj"]
    expanded = a.get("/modalities?expand").json()
    assert expanded["arr"] == {"AET": "X", "AllowEcho": True, "AllowEventReport": True, "AllowFind": True,
                               "AllowFindWorklist": True, "AllowGet": True, "AllowMove": True, "AllowNAction": True,
                               "AllowStore": True, "AllowTranscoding": True, "Host": "h", "LocalAet": "",
                               "Manufacturer": "GE", "Port": 1234, "Timeout": 0, "UseDicomTls": False}
    obj = a.get("/modalities/obj/configuration").json()
    assert (obj["Port"], obj["AllowStore"], obj["LocalAet"], obj["Timeout"]) == (104, False, "ME", 3)
    assert list(obj) == sorted(obj) and len(obj) == 16
    assert "query" in a.get("/modalities/arr").json()
    assert a.get("/modalities/nope").status_code == 404
    assert error(a.get("/modalities/nope/configuration")) == (404, 7, "No modality with symbolic name: nope")


@pytest.mark.parametrize(("body", "expected"), [
    (["A", "h", 0], (400, 3, "A TCP port number must be in range [1..65534], but found: 0")),
    (["A", "h"], (400, 15, None)),
    ({"AET": "A", "Host": "h"}, (400, 15, None)),
    ({"AET": "A", "Host": "h", "Port": 1, "Manufacturer": "Foo"}, (400, 3, 'Unknown modality manufacturer: "Foo"')),
    ({"AET": "A", "Host": "h", "Port": 1, "AllowEcho": "yes"}, (400, 15, "Boolean value expected in field: AllowEcho")),
])
def test_bad_definitions(pair: tuple[Server, Server], body: Any, expected: tuple[int, int, str | None]) -> None:
    a, _ = pair
    assert error(a.put("/modalities/p", json=body)) == expected


def test_put_and_delete(pair: tuple[Server, Server]) -> None:
    a, _ = pair
    r = a.put("/modalities/tmp", json={"AET": "T", "Host": "127.0.0.1", "Port": "11112",
                                       "AllowStorageCommitment": False})
    assert (r.status_code, r.text) == (200, "")
    conf = a.get("/modalities/tmp/configuration").json()
    assert (conf["Port"], conf["AllowNAction"], conf["AllowEventReport"]) == (11112, False, False)
    assert error(a.put("/modalities/bad name", json=["A", "h", 1]))[:2] == (400, 15)
    assert a.delete("/modalities/tmp").status_code == 200
    assert error(a.delete("/modalities/tmp")) == (404, 7, "Unknown DICOM modality with symbolic name: tmp")


def test_modalities_in_database(tmp_path: Any) -> None:
    config = {"DicomModalitiesInDatabase": True, "DicomModalities": {"ignored": ["I", "h", 1]}}
    s = start_donjon(config, workdir=tmp_path)
    try:
        assert s.get("/modalities").json() == []
        s.put("/modalities/kept", json=["K", "127.0.0.1", 104, "GenericNoWildcardInDates"])
    finally:
        s.stop()
    s = start_donjon(config, workdir=tmp_path)
    try:
        assert s.get("/modalities").json() == ["kept"]
        assert s.get("/modalities/kept/configuration").json()["Manufacturer"] == "GenericNoWildcardInDates"
    finally:
        s.stop()


# -- C-ECHO ---------------------------------------------------------------------------------------------

def test_echo(pair: tuple[Server, Server]) -> None:
    a, b = pair
    assert a.post("/modalities/b/echo", content=b"").json() == {}
    assert a.post("/modalities/b/echo", json={"Timeout": 5, "CheckFind": True}).json() == {}
    assert a.post("/tools/dicom-echo", json={"AET": "B", "Host": "127.0.0.1", "Port": b.dicom_port}).json() == {}
    dead = a.post("/tools/dicom-echo", json=["DEAD", "127.0.0.1", free_port()])
    assert error(dead)[:2] == (500, 9)
    assert error(dead)[2] == 'DicomAssociation - connecting to AET "DEAD": TCP Initialization Error: Connection refused'
    assert error(a.post("/modalities/obj/echo", content=b""))[2] == \
        'DicomAssociation - connecting to AET "Y": Attempt to connect to unknown host: h'
    assert error(a.post("/modalities/nope/echo", content=b"")) == (404, 7, "No modality with symbolic name: nope")


def test_echo_to_a_modality_that_never_answers(pair: tuple[Server, Server]) -> None:
    a, _ = pair
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        r = a.post("/tools/dicom-echo", json={"AET": "SILENT", "Host": "127.0.0.1", "Port": port, "Timeout": 1})
    assert error(r)[:2] == (500, 9)
    assert time.monotonic() - t0 < 10


# -- C-FIND and /queries ------------------------------------------------------------------------------------

def test_query_and_answers(pair: tuple[Server, Server]) -> None:
    a, _ = pair
    r = a.post("/modalities/b/query", json={"Level": "Study", "Query": {"PatientName": "", "StudyDescription": "*"}})
    qid = r.json()["ID"]
    assert r.json()["Path"] == f"/queries/{qid}"
    assert qid in a.get("/queries").json()
    assert a.get(f"/queries/{qid}").json() == ["answers", "level", "modality", "query", "retrieve"]
    assert a.get(f"/queries/{qid}/answers").json() == ["0"]
    simplified = a.get(f"/queries/{qid}/answers/0/content?simplify").json()
    assert simplified["PatientName"] == "BRAINIX"
    assert simplified["RetrieveAETitle"] == "B"
    assert simplified["QueryRetrieveLevel"] == "STUDY"
    assert simplified["StudyDescription"] == "IRM cérébrale, neuro-crâne"
    assert {"AccessionNumber", "PatientID", "StudyInstanceUID"} <= set(simplified)  # added by the SCU
    full = a.get(f"/queries/{qid}/answers/0/content").json()
    assert full["0010,0010"] == {"Name": "PatientName", "Type": "String", "Value": "BRAINIX"}
    assert a.get(f"/queries/{qid}/answers?expand&short").json()[0]["0010,0010"] == "BRAINIX"
    assert a.get(f"/queries/{qid}/answers/0").json() == ["content", "retrieve", "query-series", "query-instances"]
    assert a.get(f"/queries/{qid}/level").text == "Study"
    assert a.get(f"/queries/{qid}/modality").text == "b"
    assert a.get(f"/queries/{qid}/query?simplify").json() == {"PatientName": "", "StudyDescription": "*"}
    assert error(a.get(f"/queries/{qid}/answers/5/content"))[:2] == (400, 3)
    child = a.post(f"/queries/{qid}/answers/0/query-series", json={"Query": {"SeriesDescription": ""}}).json()
    series = a.get(f"/queries/{child['ID']}/answers?expand&simplify").json()
    assert len(series) == 1 and series[0]["QueryRetrieveLevel"] == "SERIES"
    assert error(a.post(f"/queries/{qid}/answers/0/query-studies", json={}))[:2] == (404, 17)
    assert error(a.post(f"/queries/{qid}/answers/9/query-series", json={}))[:2] == (400, 3)
    assert a.delete(f"/queries/{qid}").status_code == 200
    assert error(a.get(f"/queries/{qid}"))[:2] == (404, 17)


@pytest.mark.parametrize(("body", "expected"), [
    ({"Query": {}}, (400, 15, "The JSON body must contain field Level")),
    ({"Level": "Foo"}, (400, 3)),
    ({"Level": "Study", "Query": {"Nope": ""}}, (400, 15, "Associative array of DICOM tags to strings expected in field: Query")),
    ({"Level": "Study", "Query": {"PatientName": 3}}, (400, 15, "Associative array of DICOM tags to strings expected in field: Query")),
])
def test_bad_queries(pair: tuple[Server, Server], body: dict[str, Any], expected: tuple[Any, ...]) -> None:
    a, _ = pair
    assert error(a.post("/modalities/b/query", json=body))[:len(expected)] == expected


def test_deprecated_find_study(pair: tuple[Server, Server]) -> None:
    a, _ = pair
    answers = a.post("/modalities/b/find-study", json={"PatientName": "BRAIN*"}).json()
    assert len(answers) == 1 and answers[0]["StudyDescription"] == "IRM cérébrale, neuro-crâne"


# -- C-MOVE ---------------------------------------------------------------------------------------------

def test_retrieve_a_query_into_a(pair: tuple[Server, Server]) -> None:
    a, b = pair
    a.wipe()
    qid = a.post("/modalities/b/query", json={"Level": "Series", "Query": {"SeriesDescription": ""}}).json()["ID"]
    content = a.post(f"/queries/{qid}/retrieve", content=b"A").json()
    assert content["Description"] == "REST API"
    assert (content["LocalAet"], content["RemoteAet"]) == ("A", "B")
    assert content["Query"][0]["0008,0052"] == "SERIES" and "0020,000e" in content["Query"][0]
    assert a.get("/statistics").json()["CountInstances"] == b.get("/statistics").json()["CountInstances"]
    job = a.post(f"/queries/{qid}/answers/0/retrieve", json={"TargetAet": "A", "Synchronous": False, "Simplify": True}).json()
    for _ in range(100):
        info = a.get(f"/jobs/{job['ID']}").json()
        if info["State"] in ("Success", "Failure"):
            break
        time.sleep(0.1)
    assert info["State"] == "Success" and info["Type"] == "DicomMoveScu"
    assert info["Content"]["Query"][0]["QueryRetrieveLevel"] == "SERIES"


def test_move(pair: tuple[Server, Server]) -> None:
    a, b = pair
    a.wipe()
    (study,) = b.get("/studies").json()
    uid = b.get(f"/studies/{study}").json()["MainDicomTags"]["StudyInstanceUID"]
    r = a.post("/modalities/b/move", json={"Level": "Study", "Resources": [{"StudyInstanceUID": uid}], "TargetAet": "A"})
    assert r.status_code == 200, r.text
    assert r.json()["Query"] == [{"0008,0052": "STUDY", "0020,000d": uid}]
    assert len(a.get("/instances").json()) == len(b.get("/instances").json())
    missing = a.post("/modalities/b/move", json={"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}]})
    assert error(missing) == (422, 9, 'C-MOVE SCU to AET "B" has failed with DIMSE status 0xC000 '
                                      "(unable to process - resource not found ?)")
    assert error(a.post("/modalities/b/move", json={"Level": "Study"}))[:2] == (400, 15)


def test_get(pair: tuple[Server, Server]) -> None:
    """`/modalities/{id}/get` (Orthanc 1.12.6+): C-GET, the instances stored as DICOM arrivals."""
    a, b = pair
    a.wipe()
    (series,) = b.get("/series").json()
    tags = b.get(f"/series/{series}").json()["MainDicomTags"]
    study_uid = b.get(f"/studies/{b.get(f'/series/{series}').json()['ParentStudy']}").json()["MainDicomTags"]["StudyInstanceUID"]
    r = a.post("/modalities/b/get", json={"Level": "Series", "Resources": [
        {"StudyInstanceUID": study_uid, "SeriesInstanceUID": tags["SeriesInstanceUID"]}]})
    assert r.status_code == 200, r.text
    assert sorted(a.get("/instances").json()) == sorted(b.get("/instances").json())
    md = a.get(f"/instances/{a.get('/instances').json()[0]}/metadata?expand").json()
    assert (md["Origin"], md["RemoteAET"], md["CalledAET"]) == ("DicomProtocol", "B", "A")
    missing = a.post("/modalities/b/get", json={"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2.3"}]})
    assert error(missing)[:2] == (500, 9)


# -- C-STORE ---------------------------------------------------------------------------------------------

def test_store_job(pair: tuple[Server, Server]) -> None:
    a, b = pair
    b.wipe()
    a.wipe()
    for path in sorted((SAMPLES / BRAINIX).iterdir())[:5]:
        a.upload(path)
    (study,) = a.get("/studies").json()
    content = a.post("/modalities/b/store", content=study.encode()).json()
    assert content == {"Description": "REST API", "FailedInstancesCount": 0, "InstancesCount": 5,
                       "LocalAet": "A", "ParentResources": [study], "RemoteAet": "B"}
    assert len(b.get("/instances").json()) == 5
    md = b.get(f"/instances/{b.get('/instances').json()[0]}/metadata?expand").json()
    assert (md["Origin"], md["RemoteAET"], md["CalledAET"]) == ("DicomProtocol", "A", "B")
    job = a.post("/modalities/b/store", json={"Resources": [study], "Asynchronous": True, "MoveOriginatorID": 7}).json()
    for _ in range(100):
        info = a.get(f"/jobs/{job['ID']}").json()
        if info["State"] in ("Success", "Failure"):
            break
        time.sleep(0.1)
    assert info["State"] == "Success"
    assert (info["Content"]["MoveOriginatorAET"], info["Content"]["MoveOriginatorID"]) == ("A", 7)
    (instance,) = a.get("/instances").json()[:1]
    straight = a.post("/modalities/b/store-straight", content=a.get(f"/instances/{instance}/file").content).json()
    assert set(straight) == {"SOPClassUID", "SOPInstanceUID"}


@pytest.mark.parametrize(("body", "expected"), [
    (b"", (400, 15)),
    (b"not-an-id", (400, 15, "This string is not a valid Orthanc identifier: not-an-id")),
    (json.dumps({"Nope": 1}).encode(), (400, 15, 'Missing field in JSON: "Resources"')),
    (json.dumps([1]).encode(), (400, 15, "This string is not a valid Orthanc identifier: 1")),
    (b"01234567-01234567-01234567-01234567-01234567", (404, 17)),
])
def test_bad_store_bodies(pair: tuple[Server, Server], body: bytes, expected: tuple[Any, ...]) -> None:
    a, _ = pair
    assert error(a.post("/modalities/b/store", content=body))[:len(expected)] == expected


def test_store_to_a_dead_modality_fails_the_job(pair: tuple[Server, Server], samples: Any) -> None:
    a, _ = pair
    a.put("/modalities/dead", json=["DEAD", "127.0.0.1", free_port()])
    a.upload(samples / BRAINIX / "IM-0001-0001.dcm")
    (instance,) = a.get("/instances").json()[:1]
    r = a.post("/modalities/dead/store", json={"Resources": [instance]})
    assert error(r)[:2] == (500, 9)
    assert "Connection refused" in error(r)[2]
    a.delete("/modalities/dead")


def test_shutdown_and_reset_with_the_dicom_server() -> None:
    """`/tools/reset` restarts the DICOM server; it does not keep a stopping Donjon alive."""
    s = start_donjon({"DicomAet": "Z"})
    try:
        assert s.post("/tools/reset").status_code == 200
        assert s.post("/tools/dicom-echo", json=["Z", "127.0.0.1", s.dicom_port]).json() == {}
        s.post("/tools/shutdown")
        s.process.wait(timeout=20)
        assert s.process.returncode == 0
    finally:
        s.stop()


def test_dicom_jobs_survive_a_restart(tmp_path: Any, samples: Any) -> None:
    """Saved DicomModalityStore / DicomMoveScu jobs are reloaded (SaveJobs) with their content."""
    dead = ["DEAD", "127.0.0.1", free_port()]
    s = start_donjon({"DicomAet": "S", "DicomModalities": {"dead": dead}}, workdir=tmp_path)
    try:
        s.upload(samples / BRAINIX / "IM-0001-0001.dcm")
        (instance,) = s.get("/instances").json()
        store = s.post("/modalities/dead/store", json={"Resources": [instance], "Asynchronous": True,
                                                       "Priority": 3, "LocalAet": "ME"}).json()
        move = s.post("/modalities/dead/move", json={"Level": "Patient", "Resources": [{"PatientID": "X"}],
                                                     "Asynchronous": True}).json()
        for job in (store, move):
            for _ in range(100):
                if s.get(f"/jobs/{job['ID']}").json()["State"] == "Failure":
                    break
                time.sleep(0.1)
        before = {j: s.get(f"/jobs/{j}").json() for j in (store["ID"], move["ID"])}
        assert before[store["ID"]]["ErrorCode"] == 9 and "Connection refused" in before[store["ID"]]["ErrorDetails"]
    finally:
        s.stop()
    s = start_donjon({"DicomAet": "S", "DicomModalities": {"dead": dead}}, workdir=tmp_path)
    try:
        for job_id, info in before.items():
            again = s.get(f"/jobs/{job_id}").json()
            assert (again["Type"], again["State"], again["Content"]) == (info["Type"], info["State"], info["Content"])
    finally:
        s.stop()
