"""DICOMweb over HTTP: QIDO-RS, WADO-RS (instances, metadata, frames, bulk, rendered), STOW-RS, WADO-URI,
the configurable roots and the DICOMweb client (servers, stow/retrieve jobs) between two Donjons.

Expected behaviours come from PS3.18 and from Orthanc's DICOMweb plugin (its integration tests and what
Orthanc 1.10.1 with the plugin answers); `tests/diff/test_dicomweb_interop.py` compares side by side.
"""

from __future__ import annotations

import hashlib
import io
import time
import uuid
import xml.dom.minidom
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import pixel_array

from donjon.dicomweb.multipart import Part, boundary_of, split
from tests.support.servers import SAMPLES, Server, free_port, start_donjon

FLAIR = ["Brainix/Flair/IM-0001-0001.dcm", "Brainix/Flair/IM-0001-0002.dcm"]
KNEE = "Knee/T1/IM-0001-0001.dcm"
JPEG = "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm"
LOSSLESS = "TransferSyntaxes/1.2.840.10008.1.2.4.70.dcm"
BIG_ENDIAN = "TransferSyntaxes/1.2.840.10008.1.2.2.dcm"
UPLOADED = [*FLAIR, KNEE, "DummyCT.dcm", "PrivateTags.dcm", JPEG, LOSSLESS, BIG_ENDIAN, "LenaTwiceWithFragments.dcm"]


def uids(name: str) -> tuple[str, str, str]:
    ds = pydicom.dcmread(SAMPLES / name, stop_before_pixels=True, force=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def wado_path(name: str) -> str:
    st, se, so = uids(name)
    return f"/dicom-web/studies/{st}/series/{se}/instances/{so}"


def parts(r: httpx.Response) -> list[Part]:
    assert r.status_code == 200, (r.status_code, r.text[:300])
    boundary = boundary_of(r.headers["content-type"])
    assert boundary is not None, r.headers["content-type"]
    return split(r.content, boundary)


def stow_body(files: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + f + b"\r\n" for f in files)
    return body + f"--{boundary}--\r\n".encode(), f'multipart/related; type="application/dicom"; boundary={boundary}'


def value(item: dict[str, Any], tag: str) -> Any:
    return item[tag]["Value"][0]


@pytest.fixture(scope="module")
def dw() -> Iterator[Server]:
    server = start_donjon({})
    for name in UPLOADED:
        assert server.upload(SAMPLES / name).status_code == 200
    yield server
    server.stop()


# -- QIDO-RS ---------------------------------------------------------------------------------------

def test_qido_studies_default_attributes_and_counts(dw: Server) -> None:
    study = uids(FLAIR[0])[0]
    r = dw.get("/dicom-web/studies", params={"StudyInstanceUID": study})
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom+json"
    [a] = r.json()
    assert value(a, "00100010") == {"Alphabetic": "BRAINIX"}
    assert a["00080061"] == {"vr": "CS", "Value": ["MR"]}  # ModalitiesInStudy
    assert a["00201206"] == {"vr": "IS", "Value": [1]} and a["00201208"] == {"vr": "IS", "Value": [2]}
    assert value(a, "00081190") == f"http://127.0.0.1:{dw.http_port}/dicom-web/studies/{study}"
    assert value(a, "00080005") == "ISO_IR 192"
    assert "0020000E" not in a and "00080018" not in a and "00280010" not in a


def test_qido_parent_attributes_follow_the_standard(dw: Server) -> None:
    study, series, _ = uids(FLAIR[0])
    [s] = dw.get(f"/dicom-web/studies/{study}/series").json()
    assert value(s, "00100010") == {"Alphabetic": "BRAINIX"} and value(s, "00080060") == "MR"
    assert s["00201209"]["Value"] == [2] and value(s, "00200011") == 401
    [s] = dw.get("/dicom-web/series", params={"0020000D": study}).json()
    assert "00100010" not in s and value(s, "0020000D") == study  # the study is named: its attributes left out
    [s] = dw.get("/dicom-web/series", params=[("0020000D", study), ("includefield", "00100010"),
                                                ("includefield", "StudyDate")]).json()
    assert "00100010" in s and "00080020" in s
    inst = dw.get("/dicom-web/instances", params={"0020000E": series}).json()
    assert len(inst) == 2 and "00080060" not in inst[0] and "00100010" in inst[0]
    assert {value(i, "00280010") for i in inst} == {288} and value(inst[0], "00080016") == "1.2.840.10008.5.1.4.1.1.4"
    assert len(dw.get(f"/dicom-web/studies/{study}/series/{series}/instances").json()) == 2
    assert dw.get("/dicom-web/studies/1.2.3.4/series").json() == []


def test_qido_matching(dw: Server) -> None:
    def count(path: str, **params: str) -> int:
        r = dw.get(path, params=params)
        assert r.status_code == 200, r.text
        return len(r.json())
    assert count("/dicom-web/studies", PatientName="knee") == 1  # PN: always case insensitive
    assert count("/dicom-web/studies", PatientName="BRAIN*") == 1
    assert count("/dicom-web/studies", PatientName="BRAIN") == 0
    assert count("/dicom-web/studies", PatientName="BRAIN", fuzzymatching="true") == 1
    assert count("/dicom-web/studies", StudyDate="20061201-20061202") == 1
    assert count("/dicom-web/studies", ModalitiesInStudy="MR") >= 2
    assert count("/dicom-web/studies", Modality="MR") == 0  # a series attribute: Orthanc matches nothing
    assert count("/dicom-web/studies", StudyInstanceUID=f"{uids(FLAIR[0])[0]},{uids(KNEE)[0]}") == 2
    assert count("/dicom-web/instances", Rows="288") == 2  # not a main tag: read from the files
    everything = count("/dicom-web/studies")
    assert count("/dicom-web/studies", limit="2") == 2
    assert count("/dicom-web/studies", limit="100", offset=str(everything - 1)) == 1
    [a] = dw.get("/dicom-web/studies", params={"PatientName": "KNEE", "includefield": "Rows,00200032"}).json()
    assert value(a, "00280010") == 512 and len(a["00200032"]["Value"]) == 3


def test_qido_includefield_all_and_sequences(dw: Server) -> None:
    st, se, _ = uids("DummyCT.dcm")
    [i] = dw.get(f"/dicom-web/studies/{st}/series/{se}/instances", params={"includefield": "00081140"}).json()
    assert len(i["00081140"]["Value"]) == 2
    [a] = dw.get("/dicom-web/studies", params={"StudyInstanceUID": st, "includefield": "all"}).json()
    assert value(a, "00180091") == 10 and "00080018" not in a  # EchoTrainLength; no instance attributes


@pytest.mark.parametrize("query", ["includefield=Nope", "Nope=1", "limit=abc", "offset=-1", "fuzzymatching=maybe",
                                   "StudyDate=2006*", "00081140.00081155=1"])
def test_qido_bad_queries_are_400(dw: Server, query: str) -> None:
    r = dw.get(f"/dicom-web/studies?{query}")
    assert r.status_code == 400, (query, r.text)


def test_qido_accept_negotiation(dw: Server) -> None:
    assert len(dw.get("/dicom-web/studies", headers={"Accept": "application/json"}).json()) >= 3
    assert dw.get("/dicom-web/studies", headers={"Accept": "text/html, */*;q=0.8"}).status_code == 200
    assert dw.get("/dicom-web/studies", headers={"Accept": "image/png"}).status_code == 406
    r = dw.get("/dicom-web/studies", params={"PatientName": "KNEE"}, headers={"Accept": "application/dicom+xml"})
    [p] = parts(r)
    assert p.content_type == "application/dicom+xml"
    doc = xml.dom.minidom.parseString(p.body)
    names = [e.getElementsByTagName("Alphabetic")[0].getElementsByTagName("FamilyName")[0].firstChild.data
             for e in doc.getElementsByTagName("PersonName")]
    assert "KNEE" in names


def test_qido_server_limit_adds_a_warning() -> None:
    server = start_donjon({"LimitFindResults": 1})
    try:
        for name in (FLAIR[0], KNEE):
            server.upload(SAMPLES / name)
        r = server.get("/dicom-web/studies")
        assert len(r.json()) == 1 and r.headers["warning"].startswith("299 ")
        assert "warning" not in server.get("/dicom-web/studies", params={"PatientName": "KNEE"}).headers
    finally:
        server.stop()


# -- WADO-RS: instances -----------------------------------------------------------------------------

def test_retrieve_study_series_instance(dw: Server) -> None:
    st, se, _so = uids(FLAIR[0])
    for path, count in ((f"/dicom-web/studies/{st}", 2), (f"/dicom-web/studies/{st}/series/{se}", 2),
                        (wado_path(FLAIR[0]), 1)):
        got = parts(dw.get(path, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}))
        assert len(got) == count
        assert got[0].content_type == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
        assert {p.body for p in got} <= {(SAMPLES / f).read_bytes() for f in FLAIR}
    assert dw.get(f"/dicom-web/studies/{st}/series/1.2.3").status_code == 404
    assert dw.get("/dicom-web/studies/1.2.3").status_code == 404
    assert dw.get(f"/dicom-web/studies/{st}", headers={"Accept": "multipart/related; type=application/nope"}
                  ).status_code == 406


def test_retrieve_transcodes_by_default_and_keeps_stored_bytes_on_request(dw: Server) -> None:
    [p] = parts(dw.get(wado_path(JPEG)))
    ds = pydicom.dcmread(io.BytesIO(p.body))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and ds.pixel_array.shape == (480, 640, 3)
    assert p.content_type.endswith("transfer-syntax=1.2.840.10008.1.2.1")
    [p] = parts(dw.get(wado_path(JPEG), headers={"Accept": "multipart/related; type=application/dicom; transfer-syntax=*"}))
    assert p.body == (SAMPLES / JPEG).read_bytes()
    [p] = parts(dw.get(wado_path(BIG_ENDIAN)))  # big endian to little endian
    ds = pydicom.dcmread(io.BytesIO(p.body))
    reference = pydicom.dcmread(SAMPLES / BIG_ENDIAN)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(ds.pixel_array, reference.pixel_array)
    rle = "multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.5"
    [p] = parts(dw.get(wado_path(FLAIR[0]), headers={"Accept": rle}))
    ds = pydicom.dcmread(io.BytesIO(p.body))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(SAMPLES / FLAIR[0]).pixel_array)


def mpeg2() -> bytes:
    """A FLAIR image relabelled as MPEG-2 video: a syntax nothing here decodes."""
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(SAMPLES / FLAIR[0])
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID("1.2.840.10008.1.2.4.100")
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    ds["PixelData"].VR = "OB"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (pydicom.uid.generate_uid() for _ in "abc")
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_retrieve_of_what_cannot_be_decoded(dw: Server) -> None:
    """No decoder for MPEG-2: 406 when the client insists, the stored file by default. JPEG lossless
    (pylibjpeg) is decoded."""
    explicit = "multipart/related; type=application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    data = mpeg2()
    stored = dw.post("/instances", content=data).json()["ID"]
    try:
        path = "/dicom-web/studies/{}/series/{}/instances/{}".format(
            *(str(pydicom.dcmread(io.BytesIO(data)).get(k)) for k in
              ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")))
        assert dw.get(path, headers={"Accept": explicit}).status_code == 406
        [p] = parts(dw.get(path))
        assert p.body == data
        assert p.content_type.endswith("transfer-syntax=1.2.840.10008.1.2.4.100")
        assert dw.get(f"{path}/frames/1").status_code == 406
    finally:
        assert dw.delete(f"/instances/{stored}").status_code == 200
    [p] = parts(dw.get(wado_path(LOSSLESS), headers={"Accept": explicit}))
    ds = pydicom.dcmread(io.BytesIO(p.body))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(SAMPLES / LOSSLESS).pixel_array)


# -- WADO-RS: metadata ----------------------------------------------------------------------------

def test_metadata_values_and_bulk_uris(dw: Server) -> None:
    st, se, so = uids("DummyCT.dcm")
    [m] = dw.get(f"/dicom-web/studies/{st}/metadata").json()
    assert m["00180091"] == {"vr": "IS", "Value": [10]}  # numbers are numbers
    assert m["00181310"] == {"vr": "US", "Value": [0, 384, 224, 0]}
    assert value(m, "00080005") == "ISO_IR 100" and "00020010" not in m  # the file's charset, no meta header
    assert len(m["00081140"]["Value"]) == 2
    st, se, so = uids("PrivateTags.dcm")
    [m] = dw.get(f"/dicom-web/studies/{st}/series/{se}/instances/{so}/metadata",
                 headers={"Host": "viewer.example:81", "Accept": "application/dicom+json"}).json()
    base = f"http://viewer.example:81/dicom-web/studies/{st}/series/{se}/instances/{so}/bulk"
    assert m["7FE00010"] == {"vr": "OB", "BulkDataURI": f"{base}/7fe00010"}
    assert m["60031010"]["Value"][0]["60031011"]["BulkDataURI"] == f"{base}/60031010/1/60031011"
    [m] = dw.get(f"/dicom-web/studies/{st}/metadata", headers={"Forwarded": "host=proxy.example;proto=https"}).json()
    assert m["7FE00010"]["BulkDataURI"].startswith("https://proxy.example/dicom-web/studies/")
    assert dw.get(f"/dicom-web/studies/{st}/series/{se}/instances/1.2.3/metadata").status_code == 404
    assert dw.get(f"/dicom-web/studies/{st}/metadata", headers={"Accept": "multipart/related"}).status_code == 406
    [x] = parts(dw.get(f"/dicom-web/studies/{st}/metadata",
                       headers={"Accept": "multipart/related; type=application/dicom+xml"}))
    assert b'<BulkData uri="http://' in x.body and b"NativeDicomModel" in x.body


def test_metadata_cache_in_attachment_4301_and_never_stale() -> None:
    server = start_donjon({})
    try:
        ids = [server.upload(SAMPLES / f).json() for f in FLAIR]
        st, se, _ = uids(FLAIR[0])
        first = server.get(f"/dicom-web/studies/{st}/series/{se}/metadata").json()
        assert len(first) == 2
        series_id = ids[0]["ParentSeries"]
        assert "4301" in [str(x) for x in server.get(f"/series/{series_id}/attachments").json()]
        assert server.get(f"/dicom-web/studies/{st}/metadata").json() == first
        server.delete(f"/instances/{ids[1]['ID']}")
        again = server.get(f"/dicom-web/studies/{st}/metadata").json()
        assert [value(x, "00080018") for x in again] == [uids(FLAIR[0])[2]]
        assert server.post(f"/studies/{ids[0]['ParentStudy']}/update-dicomweb-cache").status_code == 200
    finally:
        server.stop()


def test_metadata_from_main_dicom_tags() -> None:
    server = start_donjon({"DicomWeb": {"StudiesMetadata": "MainDicomTags", "SeriesMetadata": "Extrapolate",
                                        "SeriesMetadataExtrapolatedTags": ["Rows", "PixelSpacing"]}})
    try:
        for name in FLAIR:
            server.upload(SAMPLES / name)
        st, se, _ = uids(FLAIR[0])
        study = server.get(f"/dicom-web/studies/{st}/metadata").json()
        assert len(study) == 2 and "00280010" not in study[0] and value(study[0], "00100010") == {"Alphabetic": "BRAINIX"}
        assert value(study[0], "00080016") == "1.2.840.10008.5.1.4.1.1.4"
        series = server.get(f"/dicom-web/studies/{st}/series/{se}/metadata").json()
        assert value(series[0], "00280010") == 288 and "00280030" in series[0] and "00180050" not in series[0]
    finally:
        server.stop()


# -- WADO-RS: frames, bulk data, rendered -----------------------------------------------------------

def test_frames_native(dw: Server) -> None:
    truth = pydicom.dcmread(SAMPLES / FLAIR[0]).PixelData
    for accept in (None, "multipart/related; type=application/octet-stream",
                   'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1'):
        [p] = parts(dw.get(f"{wado_path(FLAIR[0])}/frames/1", headers={"Accept": accept} if accept else {}))
        assert p.body == truth and p.content_type == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    for bad in ("0", "2", "x"):
        assert dw.get(f"{wado_path(FLAIR[0])}/frames/{bad}").status_code in (400, 404)
    assert dw.get(f"{wado_path(FLAIR[0])}/frames/1", headers={"Accept": "multipart/related; type=nope"}
                  ).status_code == 406
    [p] = parts(dw.get(f"{wado_path(BIG_ENDIAN)}/frames/1"))  # swapped to little endian
    arr = pydicom.dcmread(SAMPLES / BIG_ENDIAN).pixel_array
    assert len(p.body) == arr.size * arr.itemsize


def test_frames_compressed(dw: Server) -> None:
    jpeg = "multipart/related; type=image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    r = dw.get(f"{wado_path(JPEG)}/frames/1", headers={"Accept": jpeg})
    [p] = parts(r)
    assert hashlib.md5(p.body).hexdigest() == "142fdb8a1dc2aa7e6b8952aa294a6e22"  # the stored fragment
    assert p.headers["content-location"].endswith("/frames/1")
    assert 'type="image/jpeg"' in r.headers["content-type"]
    [p] = parts(dw.get(f"{wado_path(JPEG)}/frames/1"))  # default: decoded
    assert len(p.body) == 480 * 640 * 3
    reference = pixel_array(pydicom.dcmread(SAMPLES / JPEG), decoding_plugin="pillow")  # Donjon's first choice
    assert np.abs(np.frombuffer(p.body, np.uint8).astype(int) - reference.reshape(-1).astype(int)).max() <= 2
    lena = wado_path("LenaTwiceWithFragments.dcm")
    both = parts(dw.get(f"{lena}/frames/1,2", headers={"Accept": jpeg}))
    assert len(both) == 2 and both[0].body == both[1].body and len(both[0].body) == 69214
    [p] = parts(dw.get(f"{lena}/frames/2", headers={"Accept": 'multipart/related; type="*/*"'}))
    assert p.body == both[0].body
    [p] = parts(dw.get(f"{wado_path(LOSSLESS)}/frames/1"))  # decoded by pylibjpeg-libjpeg
    assert p.body == pydicom.dcmread(SAMPLES / LOSSLESS).pixel_array.astype("<i2").tobytes()


def test_bulk(dw: Server) -> None:
    _st, _se, so = uids("PrivateTags.dcm")
    orthanc_id = dw.post("/tools/lookup", content=so).json()
    instance = next(x["ID"] for x in orthanc_id if x["Type"] == "Instance")
    truth = dw.get(f"/instances/{instance}/content/6003-1010/0/6003-1011").content
    [p] = parts(dw.get(f"{wado_path('PrivateTags.dcm')}/bulk/60031010/1/60031011"))
    assert p.body == truth and len(truth) == 12288 and p.content_type == "application/octet-stream"
    fragments = parts(dw.get(f"{wado_path('LenaTwiceWithFragments.dcm')}/bulk/7fe00010"))
    assert len(fragments) > 2  # the offset table, then each fragment
    assert parts(dw.get(f"{wado_path('PrivateTags.dcm')}/bulk/00100010"))[0].body.startswith(b"s.")
    url = f"{wado_path('PrivateTags.dcm')}/bulk/7fe00010"
    assert dw.get(url, headers={"Accept": "multipart/related;type=application/nope"}).status_code == 406
    assert dw.get(url, headers={"Accept": "multipart/related;range="}).status_code == 400
    assert dw.get(f"{wado_path('PrivateTags.dcm')}/bulk/00991234").status_code == 404


def test_rendered_and_thumbnail(dw: Server) -> None:
    st, se, _ = uids(FLAIR[0])
    r = dw.get(f"{wado_path(FLAIR[0])}/rendered")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(r.content))
    assert image.format == "JPEG" and image.mode == "L" and image.size == (288, 288)
    png = dw.get(f"{wado_path(FLAIR[0])}/frames/1/rendered", headers={"Accept": "image/png"})
    assert Image.open(io.BytesIO(png.content)).format == "PNG"
    assert dw.get(f"/dicom-web/studies/{st}/series/{se}/rendered", headers={"Accept": "image/png"}).content == png.content
    small = Image.open(io.BytesIO(dw.get(f"{wado_path(JPEG)}/thumbnail").content))
    assert max(small.size) == 128 and small.mode == "RGB"
    view = Image.open(io.BytesIO(dw.get(f"{wado_path(FLAIR[0])}/rendered",
                                        params={"viewport": "100,50", "window": "500,1000,sigmoid"}).content))
    assert view.size == (50, 50)
    assert dw.get(f"{wado_path(FLAIR[0])}/frames/2/rendered").status_code == 400
    assert dw.get(f"{wado_path(FLAIR[0])}/rendered", params={"window": "1,2"}).status_code == 400
    assert dw.get(f"{wado_path(FLAIR[0])}/rendered", headers={"Accept": "video/mp4"}).status_code == 406


def test_rendered_window_functions() -> None:
    from donjon.dicomweb.render import apply_window
    x = np.array([10.0, -1000.0, 5096.0, 333.0, 150.0])
    assert np.allclose(apply_window(x[:1], 0, 100, "linear"), [155], atol=1)
    assert list(apply_window(x[1:3], 2048, 4096, "linear")) == [0, 255]
    assert abs(int(apply_window(x[3:4], 2048, 4096, "linear")[0]) - 20.74) <= 1
    assert abs(int(apply_window(x[4:5], 127, 256, "linear-exact")[0]) - (23 / 256 * 255 + 127.5)) <= 1
    assert abs(int(apply_window(x[4:5], 127, 256, "sigmoid")[0]) - 150.17) <= 1


# -- WADO-URI ---------------------------------------------------------------------------------------

def test_wado_uri(dw: Server) -> None:
    st, se, so = uids(FLAIR[0])
    size = (SAMPLES / FLAIR[0]).stat().st_size
    for query in (f"objectUID={so}", f"objectUID={so}&seriesUID={se}", f"objectUID={so}&seriesUID={se}&studyUID={st}"):
        r = dw.get(f"/wado?requestType=WADO&contentType=application/dicom&{query}")
        assert r.status_code == 200 and len(r.content) == size
    for bad in ("", "?requestType=WADO", f"?objectUID={so}"):
        assert dw.get(f"/wado{bad}").status_code == 400
    for bad in ("seriesUID=nope", "studyUID=nope"):
        assert dw.get(f"/wado?requestType=WADO&objectUID={so}&{bad}").status_code == 404
    image = Image.open(io.BytesIO(dw.get(f"/wado?requestType=WADO&objectUID={so}").content))
    assert image.format == "JPEG" and image.size == (288, 288)
    for kind, fmt in (("image/jpg", "JPEG"), ("image/png", "PNG")):
        r = dw.get(f"/wado?requestType=WADO&objectUID={so}&contentType={kind}&rows=100")
        image = Image.open(io.BytesIO(r.content))
        assert image.format == fmt and image.size == (100, 100)


# -- STOW-RS ---------------------------------------------------------------------------------------

def test_stow(dw: Server) -> None:
    phenix = (SAMPLES / "Phenix/IM-0001-0001.dcm").read_bytes()
    study, series, sop = uids("Phenix/IM-0001-0001.dcm")
    body, content_type = stow_body([phenix])
    for _ in range(2):  # an instance already stored counts as stored
        r = dw.post("/dicom-web/studies", content=body, headers={"Content-Type": content_type})
        assert r.status_code == 200 and r.headers["content-type"] == "application/dicom+json"
        a = r.json()
        assert a["00081198"] == {"vr": "SQ"} and len(a["00081199"]["Value"]) == 1
        item = a["00081199"]["Value"][0]
        assert value(item, "00081150") == "1.2.840.10008.5.1.4.1.1.2" and value(item, "00081155") == sop
        assert value(item, "00081190").endswith(f"/dicom-web/studies/{study}/series/{series}/instances/{sop}")
        assert value(a, "00081190").endswith(f"/dicom-web/studies/{study}")
    got = parts(dw.get(value(a, "00081190").split(str(dw.http_port))[1],
                       headers={"Accept": "multipart/related; type=application/dicom; transfer-syntax=*"}))
    assert [p.body for p in got] == [phenix]


def test_stow_partial_failures(dw: Server) -> None:
    good = (SAMPLES / "Comunix/Pet/IM-0001-0001.dcm").read_bytes()
    study, _, sop = uids("Comunix/Pet/IM-0001-0001.dcm")
    body, content_type = stow_body([good, b"not DICOM at all", (SAMPLES / FLAIR[0]).read_bytes()[:1000]])
    r = dw.post("/dicom-web/studies", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 202
    a = r.json()
    assert [value(i, "00081155") for i in a["00081199"]["Value"]] == [sop]
    reasons = [value(i, "00081197") for i in a["00081198"]["Value"]]
    assert reasons == [0xC000, 0xC000]
    body, content_type = stow_body([good])
    r = dw.post("/dicom-web/studies/1.2.3", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 409
    assert value(r.json()["00081198"]["Value"][0], "00081197") == 0x0110
    r = dw.post(f"/dicom-web/studies/{study}", content=body, headers={"Content-Type": content_type})
    assert r.status_code == 200
    body, content_type = stow_body([b"garbage"])
    assert dw.post("/dicom-web/studies", content=body, headers={"Content-Type": content_type}).status_code == 400


@pytest.mark.parametrize(("content_type", "status"), [
    ("application/dicom", 415), ('multipart/related; type="application/dicom+json"; boundary=x', 415),
    ("multipart/related; type=application/dicom", 400), ("multipart/related; boundary=abc", 400)])
def test_stow_bad_requests(dw: Server, content_type: str, status: int) -> None:
    r = dw.post("/dicom-web/studies", content=b"--abc\r\nContent-Type: application/dicom\r\n\r\nxx",
                headers={"Content-Type": content_type})
    assert r.status_code == status, r.text


def test_methods_and_unknown_routes(dw: Server) -> None:
    r = dw.put("/dicom-web/studies")
    assert r.status_code == 405 and r.headers["allow"] == "GET,POST"
    assert dw.get("/dicom-web/nothing").status_code == 404
    assert dw.get("/nothing/at/all").status_code == 404


# -- configuration --------------------------------------------------------------------------------------

def test_other_roots_and_disabling() -> None:
    server = start_donjon({"DicomWeb": {"Root": "/pacs/dicomweb", "WadoRoot": "/wado-uri"}})
    try:
        server.upload(SAMPLES / FLAIR[0])
        assert server.get("/dicom-web/studies").status_code == 404
        [a] = server.get("/pacs/dicomweb/studies").json()
        assert "/pacs/dicomweb/studies/" in value(a, "00081190")
        st, _se, so = uids(FLAIR[0])
        assert len(parts(server.get(f"/pacs/dicomweb/studies/{st}"))) == 1
        assert server.put("/pacs/dicomweb/studies").status_code == 405
        assert server.get("/wado", params={"requestType": "WADO", "objectUID": so}).status_code == 404
        assert server.get("/wado-uri", params={"requestType": "WADO", "objectUID": so}).status_code == 200
    finally:
        server.stop()
    server = start_donjon({"DicomWeb": {"Enable": False}})
    try:
        assert server.get("/dicom-web/studies").status_code == 404
        assert server.get("/wado?requestType=WADO&objectUID=1").status_code == 404
    finally:
        server.stop()


def test_bad_configuration_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        start_donjon({"DicomWeb": {"StudiesMetadata": "Sometimes"}}, workdir=tmp_path)


# -- the DICOMweb client --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Server, Server]]:
    """`a` knows `b` as DICOMweb server "b" (with credentials: b requires them)."""
    b = start_donjon({"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "secret"}},
                     auth=("alice", "secret"))
    a = start_donjon({"DicomWeb": {"Servers": {"b": [f"http://127.0.0.1:{b.http_port}/dicom-web/", "alice", "secret"]}}})
    yield a, b
    a.stop()
    b.stop()


def test_servers_crud_and_persistence(tmp_path: Path) -> None:
    config = {"DicomWeb": {"ServersInDatabase": True, "Servers": {"b": ["http://127.0.0.1:1/dicom-web/", "alice", "x"]}}}
    a = start_donjon(config, workdir=tmp_path)
    try:
        assert a.get("/dicom-web/servers").json() == ["b"]
        expanded = a.get("/dicom-web/servers?expand").json()["b"]
        assert expanded["Username"] == "alice" and expanded["Password"] is None
        assert a.get("/dicom-web/servers/b").json() == ["get", "retrieve", "stow", "wado", "qido"]
        definition = {"Url": "http://localhost:8042/dicom-web", "HttpHeaders": {"Hello": "World"}, "Username": "bob",
                      "Password": "password", "UserProperty": "Test", "HasDelete": True, "Timeout": 66}
        assert a.put("/dicom-web/servers/hello", json=definition).status_code == 200
        hello = a.get("/dicom-web/servers?expand").json()["hello"]
        assert hello == {"Url": "http://localhost:8042/dicom-web/", "Username": "bob", "Password": None,
                         "Pkcs11": False, "HttpHeaders": ["Hello"], "UserProperty": "Test", "HasDelete": "1",
                         "Timeout": 66}
        assert "delete" in a.get("/dicom-web/servers/hello").json()
        assert a.put("/dicom-web/servers/bad", json={"Url": "ftp://x"}).status_code == 400
        assert a.put("/dicom-web/servers/bad", json=["http://x/", "only-user"]).status_code == 400
    finally:
        a.stop()
    a = start_donjon(config, workdir=tmp_path)  # kept in global property 5468 (ServersInDatabase)
    try:
        assert a.get("/dicom-web/servers").json() == ["b", "hello"]
        assert a.delete("/dicom-web/servers/hello").status_code == 200
        assert a.delete("/dicom-web/servers/hello").status_code == 404
        assert a.get("/dicom-web/servers/hello").status_code == 404
    finally:
        a.stop()


def test_stow_and_retrieve_jobs_between_two_donjons(pair: tuple[Server, Server]) -> None:
    a, b = pair
    ids = [a.upload(SAMPLES / f).json() for f in FLAIR]
    study_id = ids[0]["ParentStudy"]
    content = a.post("/dicom-web/servers/b/stow", json={"Resources": [study_id]}).json()
    assert content["InstancesCount"] == "2" and content["Resources"]["Studies"] == [study_id]
    assert content["Server"] == "b"
    assert sorted(b.get("/instances").json()) == sorted(i["ID"] for i in ids)
    assert a.post("/dicom-web/servers/b/stow", json={"Resources": ["nope"]}).status_code == 404
    assert a.post("/dicom-web/servers/nope/stow", json={"Resources": [study_id]}).status_code == 404

    a.delete(f"/studies/{study_id}")
    st, se, so = uids(FLAIR[0])
    job = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Study": st, "Series": se, "Instance": so}],
                                                        "Synchronous": False}).json()
    for _ in range(100):
        info = a.get(f"/jobs/{job['ID']}").json()
        if info["State"] in ("Success", "Failure"):
            break
        time.sleep(0.1)
    assert info["State"] == "Success" and info["Type"] == "DicomWebWadoRetrieveClient"
    assert info["Content"]["ReceivedInstancesCount"] == "1" and info["Content"]["Instances"] == [ids[0]["ID"]]
    content = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Study": st}]}).json()
    assert content["ReceivedInstancesCount"] == "2" and len(a.get("/instances").json()) == 2
    failed = a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Study": "1.2.3.4"}]})
    assert failed.status_code == 500 and failed.json()["OrthancStatus"] == 9
    assert a.post("/dicom-web/servers/b/retrieve", json={"Resources": [{"Series": se}]}).status_code == 400


def test_get_and_qido_through_a_server(pair: tuple[Server, Server]) -> None:
    a, b = pair
    b.upload(SAMPLES / KNEE)
    r = a.post("/dicom-web/servers/b/get", json={"Uri": "/studies", "Arguments": {"PatientName": "KNEE"}})
    assert r.status_code == 200 and r.headers["content-type"] == "application/dicom+json" and len(r.json()) == 1
    r = a.post("/dicom-web/servers/b/get", json={"Uri": "/studies", "HttpHeaders": {"Accept": "application/dicom+xml"}})
    assert r.headers["content-type"].startswith("multipart/related")
    [match] = a.post("/dicom-web/servers/b/qido", json={"Uri": "/studies", "Arguments": {"PatientName": "KNEE"}}).json()
    assert match["00100010"] == {"Group": 16, "Element": 16, "Name": "PatientName", "vr": "PN", "Value": "KNEE"}
    job = a.post("/dicom-web/servers/b/wado", json={"Uri": f"/studies/{uids(KNEE)[0]}"}).json()
    assert set(job) == {"ID", "Path"}  # asynchronous by default, as in Orthanc
    unreachable = {"Url": f"http://127.0.0.1:{free_port()}/dicom-web/"}
    assert a.put("/dicom-web/servers/down", json=unreachable).status_code == 200
    r = a.post("/dicom-web/servers/down/get", json={"Uri": "/studies"})
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 9
    a.delete("/dicom-web/servers/down")


# -- building blocks (no server) ---------------------------------------------------------------------

def test_fast_json_walker_equals_the_pydicom_path() -> None:
    from donjon.dicom.json_tags import read_dicom
    from donjon.dicomweb import fastjson, json_model
    from tests.support.servers import sample_files

    compared = 0
    for path in sample_files():
        data = path.read_bytes()
        try:
            reference = json_model.instance_json(read_dicom(data, whole=True), "latin_1", "x")
        except Exception:
            continue  # not DICOM
        try:
            fast = fastjson.instance_json(data, "latin_1", "x")
        except fastjson.Unsupported:
            continue  # deflated, no meta header: the pydicom path is used
        assert json_model.dumps(fast) == json_model.dumps(reference), path
        compared += 1
    assert compared > 150


def test_multipart_reader_is_incremental_and_strict() -> None:
    from donjon.dicomweb.multipart import MultipartReader, build, parse_accept
    from donjon.errors import OrthancError

    body = build("b0", [("application/dicom", b"one\r\n--b"), ("application/dicom", b"")])
    reader = MultipartReader("b0")
    got = [p for i in range(len(body)) for p in reader.feed(body[i:i + 1])]
    reader.close()
    assert [p.body for p in got] == [b"one\r\n--b", b""]
    assert [p.body for p in split(b"preamble\r\n--b0\r\n\r\nX\r\n--b0--\r\nepilogue", "b0")] == [b"X"]
    for bad in (b"no delimiter at all", b"--b0\r\nContent-Type: x\r\n\r\nunterminated"):
        with pytest.raises(OrthancError):
            split(bad, "b0")
    ranges = parse_accept('application/json;q=0.5, multipart/related; type="application/dicom"; transfer-syntax=*')
    assert ranges[0].type_param == "application/dicom" and ranges[0].transfer_syntax == "*"


def test_metadata_of_every_sample_equals_a_full_parse() -> None:
    """The cache reads only what precedes the pixel data when it ends the file: same answer as parsing it all."""
    import orjson

    from donjon.dicomweb.json_model import absolute, dumps
    from donjon.dicomweb.metadata import file_json
    from tests.support.servers import sample_files

    server = start_donjon({})
    try:
        compared = 0
        for path in sample_files():
            data = path.read_bytes()
            r = server.post("/instances", content=data)
            if r.status_code != 200 or server.get(f"/instances/{r.json()['ID']}/file").content != data:
                continue  # not DICOM, or the UIDs of an earlier file
            tags = server.get(f"/instances/{r.json()['ID']}/tags?short").json()
            wado = f"studies/{tags['0020,000d']}/series/{tags['0020,000e']}/instances/{tags['0008,0018']}"
            expected = orjson.loads(absolute(dumps(file_json(data, "latin_1", wado)), f"{server.url}/dicom-web/"))
            assert server.get(f"/dicom-web/{wado}/metadata").json() == [expected], path
            compared += 1
        assert compared > 150
    finally:
        server.stop()
