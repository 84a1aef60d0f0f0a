"""Archives and media over HTTP: layout, exact contents, DICOMDIR, jobs, cancellation mid-stream."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom import dcmread
from pydicom.fileset import FileSet

from tests.api.test_jobs import small_instance, upload_study, wait_job
from tests.support.servers import Server, start_donjon


def zip_of(r: httpx.Response) -> zipfile.ZipFile:
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content))


def test_study_archive_layout_and_contents(donjon: Server) -> None:
    study = upload_study(donjon, "ARCH^ONE", 201, 3, series=2)
    r = donjon.get(f"/studies/{study}/archive")
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"] == f'filename="{study}.zip"'
    assert "content-length" not in r.headers  # streamed while built
    z = zip_of(r)
    assert z.comment == b"Created by Orthanc"
    names = z.namelist()
    folder = "ARCH ONE JOBS ARCH ONE/ACC201 Jobs test/CT Series "
    assert sorted(names) == [f"{folder}{s}/CT00000{i}.dcm" for s in (1, 2) for i in range(3)]
    assert names[:3] == sorted(names[:3])  # the counter restarts in each series
    # exactly the study's files, byte for byte
    stored = {donjon.get(f"/instances/{i['ID']}/file").content for i in donjon.get(f"/studies/{study}/instances").json()}
    assert {z.read(n) for n in names} == stored and len(names) == 6


def test_folder_names(donjon: Server) -> None:
    data = small_instance("A-B(C)", 202, 1, 1)
    ds = dcmread(io.BytesIO(data))
    ds.PatientName = "Dupont^Émile"
    ds.StudyDescription = ""
    ds.AccessionNumber = ""
    ds.Modality = "M"
    ds.SeriesDescription = "x/y_z  w"
    out = io.BytesIO()
    ds.save_as(out)
    r = donjon.post("/instances", content=out.getvalue())
    patient = r.json()["ParentPatient"]
    names = zip_of(donjon.get(f"/patients/{patient}/archive")).namelist()
    assert names == ["ABC Dupont mile/Unknown Study/M xy_z w/M0000000.dcm"]


def test_series_archive_keeps_the_hierarchy(donjon: Server) -> None:
    study = upload_study(donjon, "ARCHSER", 203, 2, series=2)
    series = donjon.get(f"/studies/{study}/series").json()[0]["ID"]
    names = zip_of(donjon.get(f"/series/{series}/archive")).namelist()
    assert len(names) == 2 and all(n.startswith("ARCHSER JOBS ARCHSER/ACC203 Jobs test/CT Series ") for n in names)
    r = donjon.get("/series/nope/archive")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17


def test_media(donjon: Server, tmp_path: Path) -> None:
    study = upload_study(donjon, "MEDIA", 204, 3)
    z = zip_of(donjon.get(f"/studies/{study}/media"))
    assert z.namelist() == ["IMAGES/IM0", "IMAGES/IM1", "IMAGES/IM2", "DICOMDIR"]
    z.extractall(tmp_path)
    fs = FileSet(tmp_path / "DICOMDIR")
    files = sorted(Path(i.path).relative_to(tmp_path).as_posix() for i in fs)
    assert files == ["IMAGES/IM0", "IMAGES/IM1", "IMAGES/IM2"]
    assert {str(dcmread(tmp_path / f).PatientID) for f in files} == {"MEDIA"}
    r = donjon.post(f"/studies/{study}/media", json={"Extended": True})
    assert zip_of(r).namelist()[-1] == "DICOMDIR"


def _records(r: httpx.Response) -> list[Any]:
    """The directory records of the DICOMDIR of a media ZIP."""
    return list(dcmread(io.BytesIO(zip_of(r).read("DICOMDIR"))).DirectoryRecordSequence)


def _series_records_have_description(r: httpx.Response) -> list[bool]:
    return ["SeriesDescription" in rec for rec in _records(r) if rec.DirectoryRecordType == "SERIES"]


def test_extended_dicomdir(donjon: Server) -> None:
    """Orthanc 1.10.1's extended DICOMDIR adds SeriesDescription to the SERIES records, nothing else."""
    study = upload_study(donjon, "EXTENDED", 213, 1, series=2)
    plain, extended = [False, False], [True, True]
    assert _series_records_have_description(donjon.get(f"/studies/{study}/media")) == plain
    for q in ("extended", "extended=true", "extended=false"):  # Orthanc: present means extended
        assert _series_records_have_description(donjon.get(f"/studies/{study}/media?{q}")) == extended, q
    assert _series_records_have_description(donjon.post(f"/studies/{study}/media", json={})) == plain
    assert _series_records_have_description(donjon.post(f"/studies/{study}/media",
                                                         json={"Extended": True})) == extended
    for route, body, expected in (("create-media", {}, plain), ("create-media", {"Extended": True}, extended),
                                  ("create-media-extended", {}, extended),
                                  ("create-media-extended", {"Extended": False}, plain)):
        r = donjon.post(f"/tools/{route}", json={"Resources": [study], **body})
        assert _series_records_have_description(r) == expected, (route, body)
    r = donjon.get(f"/tools/create-media-extended?resources={study}")
    assert _series_records_have_description(r) == extended
    series = [rec for rec in _records(r) if rec.DirectoryRecordType == "SERIES"]
    assert sorted(str(rec.SeriesDescription) for rec in series) == ["Series 1", "Series 2"]
    job = donjon.post(f"/studies/{study}/media", json={"Extended": True, "Asynchronous": True}).json()
    assert wait_job(donjon, job["ID"])["State"] == "Success"
    assert _series_records_have_description(donjon.get(f"/jobs/{job['ID']}/archive")) == extended


def test_dicomdir_records_invent_nothing(donjon: Server) -> None:
    """Records are filled as Orthanc's: empty Type 1 values stay empty, study date and time fall back."""
    ds = dcmread(io.BytesIO(small_instance("NOVALUES", 214, 1, 1)))
    del ds.Modality, ds.InstanceNumber, ds.StudyDescription
    ds.SeriesDate, ds.AcquisitionTime = "20210304", "101112"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"  # an SR
    out = io.BytesIO()
    ds.save_as(out)
    study = donjon.post("/instances", content=out.getvalue()).json()["ParentStudy"]
    r = donjon.get(f"/studies/{study}/media")
    assert dcmread(io.BytesIO(zip_of(r).read("DICOMDIR"))).FileSetID == "ORTHANC_MEDIA"
    records = {rec.DirectoryRecordType: rec for rec in _records(r)}
    assert sorted(records) == ["IMAGE", "PATIENT", "SERIES", "STUDY"]  # IMAGE whatever the SOP class
    assert records["PATIENT"].PatientID == "NOVALUES" and "StudyID" not in records["STUDY"]
    assert (records["STUDY"].StudyDate, records["STUDY"].StudyTime) == ("20210304", "101112")
    assert records["STUDY"].StudyDescription == "" and records["STUDY"].AccessionNumber == "ACC214"
    assert records["SERIES"].Modality == "" and "SeriesNumber" not in records["SERIES"]
    assert "InstanceNumber" in records["IMAGE"] and records["IMAGE"]["InstanceNumber"].is_empty


def test_transcode_argument(donjon: Server) -> None:
    study = upload_study(donjon, "TRANSCODE", 215, 2)
    series = donjon.get(f"/studies/{study}/series").json()[0]["ID"]
    for value in ("foo", "", "1.2.3"):
        for r in (donjon.get(f"/studies/{study}/archive?transcode={value}"),
                  donjon.get(f"/series/{series}/media?transcode={value}"),
                  donjon.post(f"/studies/{study}/media", json={"Transcode": value}),
                  donjon.post(f"/series/{series}/archive", json={"Transcode": value, "Asynchronous": True}),
                  donjon.post("/tools/create-archive", json={"Resources": [study], "Transcode": value}),
                  donjon.get(f"/tools/create-media?resources={study}&transcode={value}")):
            assert r.status_code == 400, r.text
            body = r.json()
            assert (body["OrthancStatus"], body["Message"]) == (3, "Parameter out of range")
            assert body["Details"] == f"Unknown transfer syntax: {value}"
    for value in (12, None, ["1.2.840.10008.1.2"]):
        r = donjon.post(f"/studies/{study}/archive", json={"Transcode": value})
        assert r.status_code == 400 and r.json()["OrthancStatus"] == 15
        assert r.json()["Details"] == "String value expected in field: Transcode"
    assert donjon.get("/studies/nope/archive?transcode=foo").status_code == 404  # GET: the resource first
    implicit = "1.2.840.10008.1.2"
    z = zip_of(donjon.get(f"/studies/{study}/archive?transcode={implicit}"))
    assert {str(dcmread(io.BytesIO(z.read(n))).file_meta.TransferSyntaxUID) for n in z.namelist()} == {implicit}
    r = donjon.post(f"/studies/{study}/media", json={"Transcode": implicit})
    assert {str(rec.ReferencedTransferSyntaxUIDInFile) for rec in _records(r) if "ReferencedFileID" in rec} \
        == {implicit}
    # a syntax Donjon cannot write: the files are kept as stored, as Orthanc does
    z = zip_of(donjon.post("/tools/create-archive", json={"Resources": [study], "Transcode": "1.2.840.10008.1.2.4.100"}))
    assert len(z.namelist()) == 2
    assert {str(dcmread(io.BytesIO(z.read(n))).file_meta.TransferSyntaxUID) for n in z.namelist()} \
        == {"1.2.840.10008.1.2.1"}


def test_asynchronous_archive_and_media_archive_size(donjon: Server) -> None:
    a = upload_study(donjon, "ASYNC1", 205, 1)
    b = upload_study(donjon, "ASYNC2", 206, 1)
    first = donjon.post(f"/studies/{a}/archive", json={"Asynchronous": True}).json()
    info = wait_job(donjon, first["ID"])
    assert info["Type"] == "Archive" and info["State"] == "Success" and info["Progress"] == 100
    content = info["Content"]
    assert set(content) == {"Description", "InstancesCount", "UncompressedSize", "UncompressedSizeMB",
                            "ArchiveSize", "ArchiveSizeMB"}
    assert content["InstancesCount"] == 1 and int(content["ArchiveSize"]) > 0
    r = donjon.get(f"/jobs/{first['ID']}/archive")
    assert r.headers["content-disposition"] == 'filename="archive.zip"'
    assert int(r.headers["content-length"]) == len(r.content) == int(content["ArchiveSize"])
    assert len(zip_of(r).namelist()) == 1
    second = donjon.post("/tools/create-media", json={"Resources": [b], "Asynchronous": True}).json()
    assert wait_job(donjon, second["ID"])["Type"] == "Media"
    assert donjon.get(f"/jobs/{second['ID']}/archive").status_code == 200
    assert donjon.get(f"/jobs/{first['ID']}/archive").status_code == 404  # MediaArchiveSize 1
    r = donjon.delete(f"/jobs/{second['ID']}/archive")
    assert r.status_code == 200 and r.content == b""
    assert donjon.get(f"/jobs/{second['ID']}/archive").status_code == 404
    assert donjon.delete(f"/jobs/{second['ID']}/archive").json()["OrthancStatus"] == 7


def test_create_archive(donjon: Server) -> None:
    a = upload_study(donjon, "TOOLS1", 207, 1)
    b = upload_study(donjon, "TOOLS2", 208, 2)
    for body in ([a, b], {"Resources": [a, b]}):
        r = donjon.post("/tools/create-archive", json=body)
        assert r.headers["content-disposition"] == 'filename="Archive.zip"'
        assert len(zip_of(r).namelist()) == 3
    r = donjon.post("/tools/create-archive", json={"Resources": ["nope"]})
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    r = donjon.get(f"/tools/create-archive?resources={a},{b}")
    assert len(zip_of(r).namelist()) == 3


@pytest.fixture(scope="module")
def one_worker() -> Any:
    server = start_donjon({"ConcurrentJobs": 1})
    yield server
    server.stop()


def test_archive_cannot_be_resubmitted(one_worker: Server) -> None:
    server = one_worker
    big = upload_study(server, "ARCHBLOCK", 209, 40)
    small = upload_study(server, "ARCHCANCEL", 210, 1)
    server.post(f"/studies/{big}/modify", json={"Asynchronous": True})
    job = server.post(f"/studies/{small}/archive", json={"Asynchronous": True}).json()["ID"]
    server.post(f"/jobs/{job}/cancel")
    assert wait_job(server, job)["ErrorCode"] == 37
    r = server.post(f"/jobs/{job}/resubmit")
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 6
    assert r.json()["Details"] == "Cannot resubmit the creation of an archive"


def test_cancel_mid_stream(one_worker: Server) -> None:
    server = one_worker
    study = upload_study(server, "ARCHSTREAM", 211, 40, size=1_000_000)
    with httpx.Client(base_url=server.url, timeout=30) as client, \
            client.stream("GET", f"/studies/{study}/archive") as r:
        assert r.status_code == 200
        next(r.iter_bytes())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        last = max((j for j in server.get("/jobs?expand").json() if j["Type"] == "Archive"),
                   key=lambda j: j["CreationTime"])
        if last["State"] == "Failure":
            break
        time.sleep(0.05)
    assert last["State"] == "Failure" and last["ErrorCode"] == 37 and last["Progress"] < 100


def test_synchronous_zip_without_stream() -> None:
    server = start_donjon({"SynchronousZipStream": False})
    try:
        study = upload_study(server, "NOSTREAM", 212, 2)
        r = server.get(f"/studies/{study}/archive")
        assert int(r.headers["content-length"]) == len(r.content)
        assert len(zip_of(r).namelist()) == 2
    finally:
        server.stop()
