"""`/jobs` over HTTP: answers, states, actions, errors, and jobs surviving a restart or a kill -9."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.support.dicom_files import file_bytes
from tests.support.servers import Server, start_donjon


def small_instance(patient: str, study: int, series: int, index: int, size: int = 0) -> bytes:
    """A tiny CT-like file; `size` adds that many random bytes as pixel data."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.99.{study}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.{series}"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{index}"
    ds.PatientID = patient
    ds.PatientName = f"JOBS^{patient}"
    ds.StudyDescription = "Jobs test"
    ds.AccessionNumber = f"ACC{study}"
    ds.Modality = "CT"
    ds.SeriesDescription = f"Series {series}"
    ds.InstanceNumber = index
    if size:
        ds.add_new(0x7FE00010, "OB", os.urandom(size))  # incompressible, so that archives are big
    return file_bytes(ds)


def upload_study(server: Server, patient: str, study: int, count: int, series: int = 1, size: int = 0) -> str:
    ids = set()
    for s in range(1, series + 1):
        for i in range(1, count + 1):
            r = server.post("/instances", content=small_instance(patient, study, s, i, size))
            assert r.status_code == 200, r.text
            ids.add(r.json()["ParentStudy"])
    assert len(ids) == 1
    return ids.pop()


def wait_job(server: Server, job_id: str, states: tuple[str, ...] = ("Success", "Failure"),
             timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = server.get(f"/jobs/{job_id}").json()
        if info["State"] in states:
            return info
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {info['State']}")


@pytest.fixture(scope="module")
def one_worker() -> Any:
    server = start_donjon({"ConcurrentJobs": 1, "JobsHistorySize": 100})
    yield server
    server.stop()


def test_unknown_job(donjon: Server) -> None:
    r = donjon.get("/jobs/nope")
    assert r.status_code == 404 and r.json()["HttpStatus"] == 404
    for action in ("cancel", "pause", "resume", "resubmit"):
        r = donjon.post(f"/jobs/nope/{action}")
        assert r.status_code == 400 and r.json()["HttpStatus"] == 400, action
    r = donjon.delete("/jobs/nope")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 7


def test_job_info_and_listing(donjon: Server) -> None:
    study = upload_study(donjon, "JOBINFO", 1, 2)
    r = donjon.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "x"}, "Asynchronous": True,
                                                      "Priority": 7})
    assert r.status_code == 200
    answer = r.json()
    job_id = answer["ID"]
    assert answer == {"ID": job_id, "Path": f"/jobs/{job_id}"}
    info = wait_job(donjon, job_id)
    assert set(info) == {"ID", "Type", "State", "Priority", "Progress", "CreationTime", "EffectiveRuntime",
                         "ErrorCode", "ErrorDescription", "ErrorDetails", "Timestamp", "CompletionTime", "Content"}
    assert info["Type"] == "ResourceModification" and info["State"] == "Success" and info["Priority"] == 7
    assert info["Progress"] == 100 and info["ErrorCode"] == 0 and info["ErrorDescription"] == "Success"
    assert job_id in donjon.get("/jobs").json()
    ids = donjon.get("/jobs").json()
    assert ids == sorted(ids)
    assert job_id in [j["ID"] for j in donjon.get("/jobs?expand").json()]
    # actions on a finished job
    assert donjon.post(f"/jobs/{job_id}/pause").json() == {}
    assert donjon.post(f"/jobs/{job_id}/cancel").json() == {}
    assert donjon.post(f"/jobs/{job_id}/resume").status_code == 400
    assert donjon.post(f"/jobs/{job_id}/resubmit").status_code == 400
    r = donjon.get(f"/jobs/{job_id}/archive")
    assert r.status_code == 404 and r.json()["Details"] == "Job has no such output: archive"
    assert donjon.delete(f"/jobs/{job_id}").status_code == 200
    assert donjon.get(f"/jobs/{job_id}").status_code == 404


def test_failed_job_and_resubmit(donjon: Server) -> None:
    study = upload_study(donjon, "JOBFAIL", 2, 1)
    r = donjon.post(f"/studies/{study}/modify", json={"Replace": {"PatientID": "x"}, "Force": True,
                                                      "Asynchronous": True})
    info = wait_job(donjon, r.json()["ID"])
    assert info["State"] == "Failure" and info["ErrorCode"] == 8
    assert info["ErrorDetails"] == "When modifying a study, the parent PatientID cannot be manually modified"
    assert donjon.post(f"/jobs/{info['ID']}/resubmit").json() == {}
    info = wait_job(donjon, info["ID"])
    assert info["State"] == "Failure"


def test_options_are_checked(donjon: Server) -> None:
    study = upload_study(donjon, "JOBOPT", 3, 1)
    for body, details in (({"Synchronous": 1}, "Boolean value expected in field: Synchronous"),
                          ({"Asynchronous": "yes"}, "Boolean value expected in field: Asynchronous"),
                          ({"Priority": "x"}, "Integer value expected in field: Priority")):
        r = donjon.post(f"/studies/{study}/modify", json=body)
        assert r.status_code == 400 and r.json()["OrthancStatus"] == 15 and r.json()["Details"] == details


def test_pause_resume_cancel_over_http(one_worker: Server) -> None:
    server = one_worker
    big = upload_study(server, "JOBSLOW", 4, 60)
    small = upload_study(server, "JOBQUEUED", 5, 1)
    running = server.post(f"/studies/{big}/modify", json={"Asynchronous": True}).json()["ID"]
    queued = server.post(f"/studies/{small}/modify", json={"Asynchronous": True}).json()["ID"]
    assert server.post(f"/jobs/{queued}/pause").json() == {}
    assert server.get(f"/jobs/{queued}").json()["State"] == "Paused"
    assert server.post(f"/jobs/{queued}/resume").json() == {}
    assert server.post(f"/jobs/{queued}/cancel").json() == {}
    info = server.get(f"/jobs/{queued}").json()
    assert info["State"] == "Failure" and info["ErrorCode"] == 37
    assert info["ErrorDescription"] == "This job was canceled"
    server.post(f"/jobs/{running}/pause")
    info = wait_job(server, running, ("Paused", "Success"))
    if info["State"] == "Paused":
        assert info["Progress"] < 100
        server.post(f"/jobs/{running}/resume")
    assert wait_job(server, running)["State"] == "Success"
    assert server.post(f"/jobs/{queued}/resubmit").json() == {}
    assert wait_job(server, queued)["State"] == "Success"


def test_priorities(one_worker: Server) -> None:
    server = one_worker
    blocker = upload_study(server, "JOBPRIO", 6, 40)
    studies = [upload_study(server, f"JOBPRIO{i}", 10 + i, 1) for i in range(3)]
    server.post(f"/studies/{blocker}/modify", json={"Asynchronous": True})
    ids = [server.post(f"/studies/{s}/modify", json={"Asynchronous": True, "Priority": p}).json()["ID"]
           for s, p in zip(studies, (-5, 0, 10), strict=True)]
    infos = [wait_job(server, i) for i in ids]
    completion = sorted(range(3), key=lambda k: infos[k]["CompletionTime"])
    assert completion == [2, 1, 0]


def test_history_size_zero_breaks_synchronous_requests() -> None:
    server = start_donjon({"JobsHistorySize": 0})
    try:
        study = upload_study(server, "JOBHIST", 7, 1)
        r = server.post(f"/studies/{study}/modify", json={})
        assert r.status_code == 404 and r.json()["OrthancStatus"] == 7
        assert "JobsHistorySize" in r.json()["Details"]
    finally:
        server.stop()


def _restart(server: Server, args: list[str] | None = None) -> Server:
    return start_donjon(server.config, workdir=server.workdir, args=args)


def test_jobs_survive_a_restart() -> None:
    server = start_donjon({"ConcurrentJobs": 1})
    try:
        big = upload_study(server, "JOBRESTART", 8, 40)
        small = upload_study(server, "JOBPAUSED", 9, 1)
        running = server.post(f"/studies/{big}/modify", json={"Asynchronous": True}).json()["ID"]
        deadline = time.monotonic() + 30  # the single worker must hold the big job before the small one comes
        while server.get(f"/jobs/{running}").json()["State"] == "Pending" and time.monotonic() < deadline:
            time.sleep(0.002)
        paused = server.post(f"/studies/{small}/modify", json={"Asynchronous": True, "Priority": 3}).json()["ID"]
        server.post(f"/jobs/{paused}/pause")
        before = server.get(f"/jobs/{paused}").json()
        assert before["State"] == "Paused", before
        server.stop()
        server = _restart(server)
        after = server.get(f"/jobs/{paused}").json()
        assert after["State"] == "Paused" and after["Priority"] == 3
        assert after["CreationTime"] == before["CreationTime"]
        info = wait_job(server, running)
        assert info["State"] == "Success" and info["Content"]["InstancesCount"] == 40
        new_study = info["Content"]["ID"]
        assert len(server.get(f"/studies/{new_study}/instances").json()) == 40
        server.post(f"/jobs/{paused}/resume")
        assert wait_job(server, paused)["State"] == "Success"
        server.stop()
        server = _restart(server, ["--no-jobs"])
        assert running not in server.get("/jobs").json()
    finally:
        server.stop()


def test_kill_9_during_a_job() -> None:
    server = start_donjon({"ConcurrentJobs": 1})
    try:
        study = upload_study(server, "JOBKILL", 11, 150)
        job_id = server.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "after kill"},
                                                                "Asynchronous": True}).json()["ID"]
        deadline = time.monotonic() + 30
        while server.get(f"/jobs/{job_id}").json()["Progress"] < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.15)  # let the registry be saved with a position > 0
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        server = _restart(server)
        restarted = server.get(f"/jobs/{job_id}").json()
        assert restarted["State"] in ("Pending", "Running", "Success")
        assert restarted["Progress"] > 0, restarted  # it continues from its saved position
        info = wait_job(server, job_id, timeout=60)
        assert info["State"] == "Success", info
        new_study = info["Content"]["ID"]
        instances = server.get(f"/studies/{new_study}/instances").json()
        assert len(instances) == 150  # redone instances are found again, not duplicated
        originals = {i["ID"] for i in server.get(f"/studies/{study}/instances").json()}
        modified_from = {server.get(f"/instances/{i['ID']}/metadata/ModifiedFrom").text for i in instances}
        assert modified_from == originals
    finally:
        server.stop()


def test_saving_jobs_disabled() -> None:
    """`SaveJobs: false`: nothing is written to the index, so no job comes back after a restart."""
    server = start_donjon({"SaveJobs": False})
    try:
        study = upload_study(server, "NOSAVE", 12, 1)
        r = server.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "x"}})
        assert r.status_code == 200, r.text
        assert len(server.get("/jobs").json()) == 1
        server.stop()
        server = _restart(server)
        assert server.get("/jobs").json() == []
        server.stop()
        server = start_donjon({**server.config, "SaveJobs": True}, workdir=server.workdir)
        assert server.get("/jobs").json() == []  # not merely skipped at start-up: never saved
    finally:
        server.stop()


@pytest.fixture(scope="module")
def uncached() -> Any:
    """No storage cache, so that removing a stored file makes its instance unreadable at once."""
    server = start_donjon({"MaximumStorageCacheSize": 0})
    yield server
    server.stop()


def _break_one_file(server: Server, instance: str) -> None:
    uuid = server.get(f"/instances/{instance}/attachments/dicom/info").json()["Uuid"]
    path = server.workdir / "storage" / uuid[0:2] / uuid[2:4] / uuid
    if not path.is_file():
        pytest.skip("the storage is not a folder (DONJON_TEST_STORAGE)")
    path.unlink()


@pytest.mark.parametrize("permissive", [False, True])
def test_split_permissive(uncached: Server, permissive: bool) -> None:
    server = uncached
    study = upload_study(server, f"SPLITP{permissive}", 120 + int(permissive), 3)
    instances = [i["ID"] for i in server.get(f"/studies/{study}/instances").json()]
    _break_one_file(server, instances[1])
    r = server.post(f"/studies/{study}/split", json={"Instances": instances, "Permissive": permissive})
    if not permissive:  # the job fails on the unreadable instance (Orthanc: "Internal error")
        assert r.status_code == 500 and r.json()["OrthancStatus"] == -1, r.text
        assert len(server.get(f"/studies/{study}/instances").json()) == 3  # sources kept: no trailing step
        return
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["InstancesCount"] == 3 and answer["FailedInstancesCount"] == 1
    assert len(server.get(f"/studies/{answer['TargetStudy']}/instances").json()) == 2
    # the two moved sources are deleted, the one that could not be moved stays
    assert [i["ID"] for i in server.get(f"/studies/{study}/instances").json()] == [instances[1]]


@pytest.mark.parametrize("permissive", [False, True])
def test_merge_permissive(uncached: Server, permissive: bool) -> None:
    server = uncached
    target = upload_study(server, f"MERGET{permissive}", 130 + int(permissive), 1)
    source = upload_study(server, f"MERGES{permissive}", 132 + int(permissive), 3)
    instances = [i["ID"] for i in server.get(f"/studies/{source}/instances").json()]
    _break_one_file(server, instances[0])
    job = server.post(f"/studies/{target}/merge", json={"Resources": [source], "Permissive": permissive,
                                                         "Asynchronous": True}).json()
    info = wait_job(server, job["ID"])
    if not permissive:
        assert info["State"] == "Failure" and info["ErrorCode"] == -1, info
        assert info["Content"]["FailedInstancesCount"] == 1  # counted even though it fails the job, as Orthanc
        assert len(server.get(f"/studies/{target}/instances").json()) == 1
        return
    assert info["State"] == "Success", info
    assert info["Content"]["FailedInstancesCount"] == 1 and info["Content"]["InstancesCount"] == 3
    assert len(server.get(f"/studies/{target}/instances").json()) == 3
    assert [i["ID"] for i in server.get(f"/studies/{source}/instances").json()] == [instances[0]]
