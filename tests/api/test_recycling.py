"""Recycling and protection: limits, order, Reject mode, protection, concurrency, statistics."""

from __future__ import annotations

import copy
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest

from tests.support.servers import Server, start_donjon
from tests.support.stored import settled_sizes


def make_instance(samples: Path, patient: str, index: int, size: int = 0) -> bytes:
    """A copy of DummyCT with its own patient, UIDs and (optionally) a payload of `size` bytes."""
    ds = pydicom.dcmread(samples / "DummyCT.dcm")
    ds = copy.deepcopy(ds)
    ds.PatientID = patient
    ds.PatientName = f"RECYCLE^{patient}"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.7.{abs(hash(patient)) % 10**8}"
    ds.SeriesInstanceUID = ds.StudyInstanceUID + ".1"
    ds.SOPInstanceUID = ds.StudyInstanceUID + f".1.{index}"
    if size:
        ds.add_new(0x00091010, "LO", "DONJON")
        ds.add_new(0x00091001, "OB", b"\x00" * size)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def patient_ids(server: Server) -> set[str]:
    return {p["MainDicomTags"]["PatientID"] for p in server.get("/patients?expand").json()}


def store(server: Server, data: bytes):  # type: ignore[no-untyped-def]
    return server.post("/instances", content=data)


@pytest.fixture
def counted(samples) -> Iterator[Server]:
    server = start_donjon({"MaximumPatientCount": 2})
    yield server
    server.stop()


def test_patient_count_recycles_the_oldest(counted: Server, samples) -> None:
    store(counted, make_instance(samples, "P1", 1))
    store(counted, make_instance(samples, "A", 1))
    store(counted, make_instance(samples, "P1", 2))  # P1 becomes the most recent
    assert store(counted, make_instance(samples, "B", 1)).status_code == 200
    assert patient_ids(counted) == {"P1", "B"}
    stats = counted.get("/statistics").json()
    assert stats["CountPatients"] == 2 and stats["CountInstances"] == 3


def test_protected_patients_are_never_recycled(counted: Server, samples) -> None:
    store(counted, make_instance(samples, "P1", 1))
    store(counted, make_instance(samples, "P2", 1))
    ids = {p["MainDicomTags"]["PatientID"]: p["ID"] for p in counted.get("/patients?expand").json()}
    assert counted.put(f"/patients/{ids['P1']}/protected", content="1").status_code == 200
    assert counted.get(f"/patients/{ids['P1']}/protected").text == "1"
    store(counted, make_instance(samples, "P3", 1))
    assert patient_ids(counted) == {"P1", "P3"}
    ids = {p["MainDicomTags"]["PatientID"]: p["ID"] for p in counted.get("/patients?expand").json()}
    counted.put(f"/patients/{ids['P3']}/protected", content="true")
    shown = {p["MainDicomTags"]["PatientID"]: p["IsProtected"] for p in counted.get("/patients?expand").json()}
    assert shown == {"P1": True, "P3": True}  # as Orthanc 1.12.5+
    assert counted.get(f"/patients/{ids['P3']}").json()["IsProtected"] is True
    r = store(counted, make_instance(samples, "P4", 1))
    assert r.status_code == 507
    assert r.json()["OrthancStatus"] == 19
    assert patient_ids(counted) == {"P1", "P3"}
    # unprotecting puts the patient back in the order, as the most recent
    counted.put(f"/patients/{ids['P1']}/protected", content="0")
    assert store(counted, make_instance(samples, "P4", 1)).status_code == 200
    assert patient_ids(counted) == {"P3", "P4"}
    shown = {p["MainDicomTags"]["PatientID"]: p["IsProtected"] for p in counted.get("/patients?expand").json()}
    assert shown == {"P3": True, "P4": False}
    assert len(settled_sizes(counted, lambda files: len(files) == 2)) == 2


def test_protection_errors(donjon: Server, samples) -> None:
    pid = store(donjon, make_instance(samples, "PROT", 1)).json()["ParentPatient"]
    r = donjon.put(f"/patients/{pid}/protected", content="yes")
    assert r.status_code == 400 and r.json()["Details"] == "Boolean value expected"
    r = donjon.get("/patients/unknown/protected")
    assert r.status_code == 400 and r.json()["OrthancStatus"] == 3
    study = donjon.get(f"/patients/{pid}").json()["Studies"][0]
    assert donjon.get(f"/patients/{study}/protected").status_code == 400
    assert donjon.get(f"/studies/{study}/protected").status_code == 404
    assert donjon.get(f"/patients/{pid}/protected").text == "0"


def test_size_limit(samples) -> None:
    server = start_donjon({"MaximumStorageSize": 1})
    try:
        big = make_instance(samples, "BIG", 1, size=1_100_000)
        r = store(server, big)
        assert r.status_code == 507 and r.json()["OrthancStatus"] == 19
        for i, name in enumerate(("S1", "S2", "S3")):
            assert store(server, make_instance(samples, name, i, size=400_000)).status_code == 200
        assert patient_ids(server) == {"S2", "S3"}
        stats = server.get("/statistics").json()
        assert int(stats["TotalDiskSize"]) <= 1024 * 1024
        total = int(stats["TotalDiskSize"])
        assert sum(settled_sizes(server, lambda files: sum(files.values()) == total).values()) == total
    finally:
        server.stop()


def test_reject_mode(samples) -> None:
    server = start_donjon({"MaximumPatientCount": 1, "MaximumStorageMode": "Reject"})
    try:
        assert store(server, make_instance(samples, "R1", 1)).status_code == 200
        # a new instance of the existing patient is still accepted
        assert store(server, make_instance(samples, "R1", 2)).status_code == 200
        r = store(server, make_instance(samples, "R2", 1))
        assert r.status_code == 507
        assert patient_ids(server) == {"R1"}
    finally:
        server.stop()


def test_concurrent_uploads_at_the_limit(samples) -> None:
    server = start_donjon({"MaximumPatientCount": 3})
    try:
        payloads = [make_instance(samples, f"C{i}", i) for i in range(40)]
        errors: list[int] = []

        def worker(chunk: list[bytes]) -> None:
            import httpx

            with httpx.Client(base_url=server.url) as c:
                for data in chunk:
                    r = c.post("/instances", content=data)
                    if r.status_code != 200:
                        errors.append(r.status_code)

        threads = [threading.Thread(target=worker, args=(payloads[i::8],)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        stats = server.get("/statistics").json()
        assert stats["CountPatients"] == 3 and stats["CountInstances"] == 3
        assert len(settled_sizes(server, lambda files: len(files) == 3)) == 3
    finally:
        server.stop()
