"""DICOMweb interoperability: a real client library (dicomweb-client, PyPI) against Donjon; the same
requests to Orthanc 1.10.1 with its DICOMweb plugin (Debian's orthanc-dicomweb) and to Donjon; Donjon as
a DICOMweb client of Orthanc, Orthanc as a DICOMweb client of Donjon, and Donjon of a second Donjon.

Known, deliberate differences with Orthanc's plugin 1.7 are left out of the comparisons and listed in
docs/dicomweb.md (Unicode answers whatever DefaultEncoding says, PixelData present in metadata, empty
values of multi-valued attributes kept as null, sequences allowed in includefield...).

`DONJON_DICOMWEB_BENCH=1` also runs the metadata benchmark of a 500-instance study against Orthanc.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest

from donjon.dicomweb.multipart import boundary_of, split
from tests.support.servers import (
    ORTHANC,
    SAMPLES,
    Server,
    free_port,
    sample_files,
    start_donjon,
    start_orthanc,
)

PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
pytestmark = pytest.mark.orthanc

# attributes whose values differ on purpose (see the module docstring)
_ORTHANC_QUIRKS = {"00080005", "00100010", "00081140", "00080090", "00081070", "00081060"}


def uids(name: str) -> tuple[str, str, str]:
    ds = pydicom.dcmread(SAMPLES / name, stop_before_pixels=True, force=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def need_plugin() -> None:
    if ORTHANC is None or not os.path.exists(PLUGIN):
        pytest.skip("Orthanc's DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)")


# -- dicomweb-client against Donjon ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def donjon() -> Iterator[Server]:
    port = free_port()  # dicomweb-client sends `Host` without the port: the links must not depend on it
    server = start_donjon({"HttpPort": port, "DicomWeb": {"Host": f"127.0.0.1:{port}"}})
    yield server
    server.stop()


def test_dicomweb_client_library(donjon: Server) -> None:
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(url=f"{donjon.url}/dicom-web")
    files = [SAMPLES / f"Knee/T1/IM-0001-000{i}.dcm" for i in range(1, 4)] + [SAMPLES / "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm"]
    stored = client.store_instances([pydicom.dcmread(f) for f in files])
    assert len(stored.ReferencedSOPSequence) == 4 and not stored.get("FailedSOPSequence")

    [study] = client.search_for_studies(search_filters={"PatientName": "KNEE"}, fields=["StudyDescription"])
    study_uid = study["0020000D"]["Value"][0]
    assert study["00201208"]["Value"] == [3]
    [series] = client.search_for_series(study_uid)
    series_uid = series["0020000E"]["Value"][0]
    instances = client.search_for_instances(study_uid, series_uid, limit=2)
    assert len(instances) == 2 and all(i["00280010"]["Value"] == [512] for i in instances)

    metadata = client.retrieve_study_metadata(study_uid)
    assert len(metadata) == 3 and all(m["0020000D"]["Value"] == [study_uid] for m in metadata)
    sop = instances[0]["00080018"]["Value"][0]
    single = client.retrieve_instance_metadata(study_uid, series_uid, sop)
    assert single["00080018"]["Value"] == [sop]
    [fragments_url] = [v["BulkDataURI"] for k, v in single.items() if k == "7FE00010"]
    assert client.retrieve_bulkdata(fragments_url)

    reference = pydicom.dcmread(files[0])
    dataset = client.retrieve_instance(study_uid, series_uid, reference.SOPInstanceUID)
    assert dataset.SOPInstanceUID == reference.SOPInstanceUID
    assert np.array_equal(dataset.pixel_array, reference.pixel_array)
    assert len(client.retrieve_study(study_uid)) == 3
    [frame] = client.retrieve_instance_frames(study_uid, series_uid, reference.SOPInstanceUID, [1])
    assert len(frame) > 1000  # the stored JPEG 2000 codestream ("*/*")
    [raw] = client.retrieve_instance_frames(study_uid, series_uid, reference.SOPInstanceUID, [1],
                                            media_types=(("application/octet-stream", "1.2.840.10008.1.2.1"),))
    assert raw == reference.pixel_array.astype("<u2").tobytes()
    rendered = client.retrieve_instance_rendered(study_uid, series_uid, reference.SOPInstanceUID,
                                                 media_types=("image/png",))
    assert rendered[:4] == b"\x89PNG"

    jpeg = pydicom.dcmread(files[3])
    [frame] = client.retrieve_instance_frames(jpeg.StudyInstanceUID, jpeg.SeriesInstanceUID, jpeg.SOPInstanceUID, [1],
                                              media_types=(("image/jpeg", "1.2.840.10008.1.2.4.50"),))
    assert frame[:2] == b"\xff\xd8"


# -- side by side with Orthanc's plugin ---------------------------------------------------------------

@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Server, Server]]:
    need_plugin()
    donjon = start_donjon({})
    orthanc = start_orthanc({"Plugins": [PLUGIN], "DicomWeb": {
        "Enable": True, "Servers": {"donjon": [f"{donjon.url}/dicom-web/"]}}})
    for f in sample_files():
        data = f.read_bytes()
        orthanc.post("/instances", content=data)
        donjon.post("/instances", content=data)
    yield orthanc, donjon
    orthanc.stop()
    donjon.stop()


def _key(item: dict[str, Any]) -> tuple[str, ...]:
    return tuple(item.get(t, {}).get("Value", [""])[0] for t in ("0020000D", "0020000E", "00080018"))


def _comparable(node: Any, base: str) -> Any:
    text = json.dumps(node, sort_keys=True).replace(base, "BASE/")
    return json.loads(text)


QIDO = ["/studies", "/series", "/instances", "/studies?PatientName=KNEE", "/studies?PatientName=k*",
        "/studies?StudyDate=20061201-", "/studies?ModalitiesInStudy=MR", "/studies?includefield=Rows",
        "/series?0020000D=2.16.840.1.113669.632.20.1211.10000357775",
        "/instances?0020000E=1.3.46.670589.11.0.0.11.4.2.0.8743.5.5396.2006120114285654497",
        "/studies/2.16.840.1.113669.632.20.1211.10000357775/series",
        "/studies/2.16.840.1.113669.632.20.1211.10000357775/instances", "/studies?Modality=MR",
        "/studies/1.2.3.4/series"]


@pytest.mark.parametrize("query", QIDO)
def test_qido_like_orthanc(pair: tuple[Server, Server], query: str) -> None:
    orthanc, donjon = pair
    a, b = orthanc.get(f"/dicom-web{query}"), donjon.get(f"/dicom-web{query}")
    assert a.status_code == b.status_code == 200
    left = {_key(x): x for x in a.json()}
    right = {_key(x): x for x in b.json()}
    assert set(left) == set(right)
    for key, x in left.items():
        y = right[key]
        tags = (set(x) | set(y)) - _ORTHANC_QUIRKS - ({"00280010"} if "includefield=Rows" in query else set())
        for tag in sorted(tags):
            assert _comparable(x.get(tag), orthanc.url + "/dicom-web/") == _comparable(y.get(tag), donjon.url + "/dicom-web/"), \
                (query, key, tag)


def test_metadata_like_orthanc(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    differences = []
    for name in ("DummyCT.dcm", "PrivateTags.dcm", "Brainix/Flair/IM-0001-0001.dcm", "Knee/T1/IM-0001-0001.dcm",
                 "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm", "Issue22-NoPixelData.dcm", "SignedCT.dcm"):
        st, se, so = uids(name)
        path = f"/dicom-web/studies/{st}/series/{se}/instances/{so}/metadata"
        [x], [y] = orthanc.get(path).json(), donjon.get(path).json()
        for tag in sorted((set(x) | set(y)) - {"7FE00010"}):  # Orthanc 1.7 leaves PixelData out here
            if _comparable(x.get(tag), orthanc.url) != _comparable(y.get(tag), donjon.url):
                differences.append((name, tag))
    assert differences == []


def test_errors_like_orthanc(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    st, se, so = uids("Brainix/Flair/IM-0001-0001.dcm")
    for path in (f"/dicom-web/studies/{st}/series/{se}/instances/1.2.3/metadata", "/dicom-web/studies/1.2.3",
                 f"/wado?requestType=WADO&objectUID={so}&studyUID=nope"):  # no objectUID: 400, Orthanc says 404
        assert orthanc.get(path).status_code == donjon.get(path).status_code, path
    assert orthanc.put("/dicom-web/studies").headers["allow"] == donjon.put("/dicom-web/studies").headers["allow"]


def test_stow_like_orthanc(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    data = (SAMPLES / "Phenix/IM-0001-0001.dcm").read_bytes()
    body = b"--XyZ\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--XyZ--\r\n"
    headers = {"Content-Type": "multipart/related; type=application/dicom; boundary=XyZ", "Accept": "application/json"}
    for path in ("/dicom-web/studies", "/dicom-web/studies/1.2.3"):
        a, b = orthanc.post(path, content=body, headers=headers), donjon.post(path, content=body, headers=headers)
        assert a.status_code == b.status_code, path
        x, y = a.json(), b.json()
        assert set(x) == set(y)
        for tag in ("00081198", "00081199"):
            assert _comparable(x[tag], orthanc.url + "/dicom-web/") == _comparable(y[tag], donjon.url + "/dicom-web/")


def test_frames_like_orthanc(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    for name, accept in (("TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm",
                          "multipart/related; type=image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"),
                         ("TransferSyntaxes/1.2.840.10008.1.2.dcm", None),
                         ("TransferSyntaxes/1.2.840.10008.1.2.1.dcm", "multipart/related; type=application/octet-stream"),
                         ("LenaTwiceWithFragments.dcm", "multipart/related; type=image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50")):
        st, se, so = uids(name)
        path = f"/dicom-web/studies/{st}/series/{se}/instances/{so}/frames/1"
        answers = []
        for server in (orthanc, donjon):
            r = server.get(path, headers={"Accept": accept} if accept else {})
            assert r.status_code == 200, (name, server.name)
            answers.append([p.body for p in split(r.content, boundary_of(r.headers["content-type"]) or "")])
        assert answers[0] == answers[1], name


# -- Donjon and Orthanc as clients of each other ---------------------------------------------------------

@pytest.fixture()
def two_ways() -> Iterator[tuple[Server, Server]]:
    need_plugin()
    donjon = start_donjon({})
    orthanc = start_orthanc({"Plugins": [PLUGIN], "DicomWeb": {
        "Enable": True, "Servers": {"donjon": [f"{donjon.url}/dicom-web/"]}}})
    assert donjon.put("/dicom-web/servers/orthanc", json={"Url": f"{orthanc.url}/dicom-web/"}).status_code == 200
    yield orthanc, donjon
    orthanc.stop()
    donjon.stop()


def test_donjon_client_of_orthanc(two_ways: tuple[Server, Server]) -> None:
    orthanc, donjon = two_ways
    ids = [donjon.upload(SAMPLES / f"Brainix/Flair/IM-0001-000{i}.dcm").json() for i in (1, 2)]
    content = donjon.post("/dicom-web/servers/orthanc/stow", json={"Resources": [ids[0]["ParentStudy"]]}).json()
    assert content["InstancesCount"] == "2"
    assert sorted(orthanc.get("/instances").json()) == sorted(i["ID"] for i in ids)
    orthanc.upload(SAMPLES / "Knee/T1/IM-0001-0001.dcm")
    [match] = donjon.post("/dicom-web/servers/orthanc/qido",
                          json={"Uri": "/studies", "Arguments": {"PatientName": "KNEE"}}).json()
    knee = match["0020000D"]["Value"]
    content = donjon.post("/dicom-web/servers/orthanc/retrieve", json={"Resources": [{"Study": knee}]}).json()
    assert content["ReceivedInstancesCount"] == "1"
    local = donjon.get("/dicom-web/studies", params={"PatientName": "KNEE"}).json()
    assert local[0]["0020000D"]["Value"] == [knee]


def test_orthanc_client_of_donjon(two_ways: tuple[Server, Server]) -> None:
    orthanc, donjon = two_ways
    study = orthanc.upload(SAMPLES / "Phenix/IM-0001-0001.dcm").json()["ParentStudy"]
    r = orthanc.post("/dicom-web/servers/donjon/stow", json={"Resources": [study]})
    assert r.status_code == 200 and r.json()["InstancesCount"] == "1"
    [found] = donjon.get("/instances").json()
    assert found == orthanc.get("/instances").json()[0]
    donjon.upload(SAMPLES / "Knee/T1/IM-0001-0001.dcm")
    r = orthanc.post("/dicom-web/servers/donjon/retrieve", json={"Resources": [{"Study": uids("Knee/T1/IM-0001-0001.dcm")[0]}]})
    assert r.status_code == 200 and r.json()["ReceivedInstancesCount"] == "1"
    assert len(orthanc.get("/instances").json()) == 2
    r = orthanc.post("/dicom-web/servers/donjon/get", json={"Uri": "/studies"})
    assert r.status_code == 200 and len(r.json()) == 2


def test_donjon_client_of_donjon() -> None:
    target = start_donjon({})
    try:
        source = start_donjon({"DicomWeb": {"Servers": {"target": [f"{target.url}/dicom-web/"]}}})
    except BaseException:
        target.stop()  # not left running when the second server cannot start
        raise
    try:
        study = source.upload(SAMPLES / "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm").json()["ParentStudy"]
        assert source.post("/dicom-web/servers/target/stow", json={"Resources": [study]}).json()["InstancesCount"] == "1"
        instance = target.get("/instances").json()[0]
        original = (SAMPLES / "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm").read_bytes()
        assert target.get(f"/instances/{instance}/file").content == original  # sent as stored
        source.delete(f"/studies/{study}")
        st = uids("TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm")[0]
        assert source.post("/dicom-web/servers/target/retrieve", json={"Resources": [{"Study": st}]}
                           ).json()["ReceivedInstancesCount"] == "1"
        assert source.get(f"/instances/{instance}/file").content == original  # retrieved with transfer-syntax=*
    finally:
        source.stop()
        target.stop()


# -- performance: metadata of a 500-instance study --------------------------------------------------------

def _synthetic_study(folder: Path, count: int) -> list[Path]:
    """`count` CT slices of 512x512 (16 bits) in one series, 66 attributes each."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    pixels = (np.arange(512 * 512, dtype=np.uint16) % 4096).tobytes()
    out = []
    for i in range(count):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.Modality, ds.StudyDate, ds.InstanceNumber = "BENCH^500", "B500", "CT", "20240101", i + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, i * 1.25], [1, 0, 0, 0, 1, 0]
        ds.SliceThickness, ds.PixelSpacing, ds.KVP = 1.25, [0.7, 0.7], 120
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth, ds.RescaleIntercept, ds.RescaleSlope = 40, 400, -1024, 1
        ds.PixelData = pixels
        path = folder / f"{i:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


@pytest.mark.skipif(not os.environ.get("DONJON_DICOMWEB_BENCH"), reason="set DONJON_DICOMWEB_BENCH=1 to run")
def test_metadata_benchmark_500_instances(tmp_path: Path) -> None:
    """Study metadata of 500 instances: Orthanc parses every file on every call, Donjon once."""
    need_plugin()
    files = _synthetic_study(tmp_path, 500)
    study = pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID
    results: dict[str, list[float]] = {}
    servers = [("Orthanc 1.10.1 + DICOMweb 1.7", lambda: start_orthanc({"Plugins": [PLUGIN]})),
               ("Donjon", lambda: start_donjon({}))]
    for label, start in servers:
        server = start()
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                for f in files:
                    client.post("/instances", content=f.read_bytes())
                times = []
                for _ in range(6):
                    t = time.perf_counter()
                    r = client.get(f"/dicom-web/studies/{study}/metadata")
                    times.append(time.perf_counter() - t)
                    assert r.status_code == 200 and len(r.json()) == 500
                results[label] = times
        finally:
            server.stop()
    for label, times in results.items():
        print(f"{label}: first call {times[0] * 1000:.0f} ms, next calls median {statistics.median(times[1:]) * 1000:.0f} ms")
    assert statistics.median(results["Donjon"][1:]) < statistics.median(results["Orthanc 1.10.1 + DICOMweb 1.7"][1:])
    shutil.rmtree(tmp_path, ignore_errors=True)
