"""Storing instances over REST: answers, identifiers, core metadata, duplicates, ZIP and gzip bodies."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from tests.support.servers import Server, start_donjon
from tests.support.stored import settled_sizes, stored_files

KNEE1 = "Knee/T1/IM-0001-0001.dcm"
KNEE1_ID = "c8df6478-d7794217-0f11c293-a41237c9-31d98357"


@pytest.fixture
def fresh(donjon: Server) -> Server:
    donjon.wipe()
    return donjon


def test_answer_shape(fresh: Server, samples) -> None:
    r = fresh.upload(samples / KNEE1)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "ID": KNEE1_ID,
        "ParentPatient": "ca29faea-b6a0e17f-067743a1-8b778011-a48b2a17",
        "ParentSeries": "6de73705-c4e65c1b-9d9ea1b5-cabcd8e7-f15e4285",
        "ParentStudy": "0a9b3153-2512774b-2d9580de-1fc3dcf6-3bd83918",
        "Path": f"/instances/{KNEE1_ID}",
        "Status": "Success",
    }
    again = fresh.upload(samples / KNEE1)
    assert again.json()["Status"] == "AlreadyStored"
    assert fresh.get("/statistics").json()["CountInstances"] == 1


def test_file_comes_back_byte_identical(fresh: Server, samples) -> None:
    data = (samples / KNEE1).read_bytes()
    fresh.post("/instances", content=data)
    r = fresh.get(f"/instances/{KNEE1_ID}/file")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom"
    assert r.content == data
    info = fresh.get(f"/instances/{KNEE1_ID}").json()
    assert info["FileSize"] == len(data)
    assert r.headers["content-disposition"] == f'filename="{info["FileUuid"]}.dcm"'


def test_core_metadata_recorded(fresh: Server, samples) -> None:
    fresh.upload(samples / KNEE1)
    ctx_rows = fresh.get(f"/instances/{KNEE1_ID}/metadata?expand")
    if ctx_rows.status_code == 404:
        pytest.skip("metadata routes are part of the metadata issue")
    md = ctx_rows.json()
    assert md["Origin"] == "RestApi"
    assert md["RemoteIP"] == "127.0.0.1"
    assert md["HttpUsername"] == ""
    assert md["RemoteAET"] == ""
    assert md["IndexInSeries"] == "1"
    assert md["PixelDataOffset"] == "3192"
    assert md["TransferSyntax"] == "1.2.840.10008.1.2.4.91"
    assert md["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.4"
    assert len(md["ReceptionDate"]) == 15


def test_zip_upload(fresh: Server, samples) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm", "HelloWorld.pdf",
                     "Encodings/DavidClunie/DICOMDIR"):
            z.write(samples / name, name)
        z.writestr("folder/", b"")
        z.writestr("empty.dcm", b"")
    r = fresh.post("/instances", content=buf.getvalue())
    assert r.status_code == 200
    answers = r.json()
    assert isinstance(answers, list)
    assert [a["Status"] for a in answers] == ["Success", "Success"]
    assert answers[0]["ID"] == KNEE1_ID
    assert fresh.get("/statistics").json()["CountInstances"] == 2


def test_corrupted_zip_is_refused(fresh: Server) -> None:
    r = fresh.post("/instances", content=b"PK\x03\x04" + b"\x00" * 100)
    assert r.status_code == 400
    assert r.json()["OrthancStatus"] == 15


def test_gzip_body(fresh: Server, samples) -> None:
    data = (samples / KNEE1).read_bytes()
    r = fresh.post("/instances", content=gzip.compress(data), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200
    assert r.json()["ID"] == KNEE1_ID
    assert fresh.get(f"/instances/{KNEE1_ID}/file").content == data


def test_bad_bodies_leave_the_store_untouched(fresh: Server, samples) -> None:
    fresh.upload(samples / KNEE1)
    before = fresh.get("/statistics").json()
    data = (samples / "Knee/T1/IM-0001-0002.dcm").read_bytes()
    for body in (b"", b"hello", data[:200], data[:-7], b"PK\x03\x04garbage"):
        r = fresh.post("/instances", content=body)
        assert r.status_code == 400, body[:20]
        assert r.json()["OrthancStatus"] == 15
        assert r.headers["x-content-type-options"] == "nosniff"
    r = fresh.post("/instances", content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert fresh.get("/statistics").json() == before
    assert len(stored_files(fresh)) == 1


def test_overwrite_instances(samples) -> None:
    server = start_donjon({"OverwriteInstances": True})
    try:
        first = server.upload(samples / KNEE1).json()
        uuid1 = server.get(f"/instances/{KNEE1_ID}").json()["FileUuid"]
        second = server.upload(samples / KNEE1).json()
        assert first["Status"] == second["Status"] == "Success"
        assert server.get(f"/instances/{KNEE1_ID}").json()["FileUuid"] != uuid1
        changes = [c["ChangeType"] for c in server.get("/changes").json()["Changes"]]
        # the old instance and its parents were deleted with their change rows, then re-created
        assert changes == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
        assert len(settled_sizes(server, lambda files: len(files) == 1)) == 1  # the replaced file removed
    finally:
        server.stop()


def test_patient_id_collision_shares_one_patient(fresh: Server, samples) -> None:
    for name in ("Image1.dcm", "Image2.dcm", "Image3.dcm"):
        fresh.upload(samples / "PatientIdsCollision" / name)
    patients = fresh.get("/patients?expand").json()
    assert len(patients) == 1
    assert patients[0]["MainDicomTags"]["PatientName"] == "HELLO"  # the first instance wins
    studies = fresh.get("/studies?expand").json()
    assert sorted(s["PatientMainDicomTags"]["PatientName"] for s in studies) == ["FOO", "HELLO", "WORLD"]


def test_multipart_upload_posts_each_part(fresh: Server, samples) -> None:
    files = {"a": ("a.dcm", (samples / KNEE1).read_bytes(), "application/dicom"),
             "b": ("b.dcm", (samples / "Knee/T1/IM-0001-0002.dcm").read_bytes(), "application/dicom")}
    r = fresh.post("/instances", files=files)
    assert r.status_code == 200 and r.content == b""
    assert fresh.get("/statistics").json()["CountInstances"] == 2
    bad = {"a": ("a.dcm", (samples / "Knee/T1/IM-0001-0003.dcm").read_bytes()), "b": ("b.bin", b"garbage")}
    r = fresh.post("/instances", files=bad)
    assert r.status_code == 400 and r.json()["OrthancStatus"] == 15
