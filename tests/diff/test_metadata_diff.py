"""Differential tests of metadata and attachments: the same requests to Orthanc 1.10.1 and to Donjon.

Normalised on purpose (each one is asserted separately, here or in tests/api):
* Revisions: Orthanc's SQLite index reads every revision back as 0, Donjon keeps real revisions, so
  the revision part of ETags is compared only where both must agree (creation, the answer of a PUT).
* Donjon records the newer core metadata `MainDicomTagsSignature` (1.11) and `PixelDataVR` (1.12.1).
* `?expand=false` on metadata gives the array (1.12.2); 1.10.1 still expands.
* The attachment operations list has no `uuid` (mainline: that route never existed in 1.10.1 either).
* `PUT` of an attachment on an unknown resource is 404 (mainline); 1.10.1 answers 200 and stores nothing.
* Labels do not exist in 1.10.1.
* Donjon compresses at zlib level 1 by default (`StorageCompressionLevel`); level 6 is set here so
  that compressed sizes and MD5s match Orthanc's.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.error_bodies import as_orthanc_1_10
from tests.support.servers import ORTHANC, Server, start_donjon, start_orthanc

pytestmark = pytest.mark.orthanc

CONFIG = {"UserMetadata": {"Sample": 1024, "Other": 1025},
          "UserContentType": {"samplePdf": [1024, "application/pdf"], "sampleRaw": 1026}}
FILES = ["Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm", "DummyCT.dcm", "Brainix/Epi/IM-0001-0001.dcm"]
NEWER_METADATA = {"MainDicomTagsSignature", "PixelDataVR", "15", "17"}
VOLATILE_METADATA = {"ReceptionDate", "LastUpdate"}
LEVELS = ("patients", "studies", "series", "instances")


def shape(r: httpx.Response) -> tuple[int, Any]:
    """Status and body, errors reduced to Orthanc's fields (whitespace differs)."""
    if not r.content:
        return r.status_code, None
    if r.headers.get("content-type", "").startswith("application/json") or r.content[:1] in (b"{", b"["):
        body = r.json()
        if isinstance(body, dict) and "OrthancStatus" in body:
            return r.status_code, {k: body.get(k) for k in ("HttpError", "HttpStatus", "Message", "Method",
                                                           "OrthancError", "OrthancStatus", "Uri", "Details")}
        return r.status_code, body
    return r.status_code, r.content


def etag_md5(r: httpx.Response) -> str | None:
    """The MD5 part of an ETag (the revision part is Orthanc's always-0 quirk)."""
    value = r.headers.get("etag")
    return None if value is None else value.strip('"').split("-", 1)[1]


@pytest.fixture(scope="module")
def pair(samples: Any) -> Iterator[tuple[Server, Server]]:
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed")
    orthanc = start_orthanc(CONFIG)
    # Donjon's default level is 1 (faster); its built-in DICOMweb caches the metadata of stable series in
    # attachment 4301 as Orthanc's DICOMweb plugin does, which this plugin-less Orthanc lacks
    donjon = start_donjon({**CONFIG, "StorageCompressionLevel": 6, "DicomWeb": {"EnableMetadataCache": False}})
    try:
        for name in FILES:
            data = (samples / name).read_bytes()
            assert orthanc.post("/instances", content=data).status_code == 200
            assert donjon.post("/instances", content=data).status_code == 200
        yield orthanc, donjon
    finally:
        orthanc.stop()
        donjon.stop()


def both(pair: tuple[Server, Server], method: str, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    orthanc, donjon = pair
    a = orthanc.client.request(method, path, **kw)
    return a, as_orthanc_1_10(a, donjon.client.request(method, path, **kw))


def same(pair: tuple[Server, Server], method: str, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    a, b = both(pair, method, path, **kw)
    assert shape(a) == shape(b), (method, path)
    return a, b


def updates(server: Server) -> list[tuple[str, str, str]]:
    return [(c["ChangeType"], c["ResourceType"], c["ID"]) for c in server.get("/changes?limit=10000").json()["Changes"]
            if c["ChangeType"] in ("UpdatedMetadata", "UpdatedAttachment")]


# -- metadata ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_core_metadata_match(pair: tuple[Server, Server], level: str) -> None:
    orthanc, donjon = pair
    for rid in orthanc.get(f"/{level}").json():
        a, b = both(pair, "GET", f"/{level}/{rid}/metadata")
        assert a.json() == [n for n in b.json() if n not in NEWER_METADATA], rid
        ea = orthanc.get(f"/{level}/{rid}/metadata?expand").json()
        eb = donjon.get(f"/{level}/{rid}/metadata?expand").json()
        assert set(ea) == set(eb) - NEWER_METADATA, rid
        for name, value in ea.items():
            if name not in VOLATILE_METADATA:
                assert eb[name] == value, (rid, name)
            ra, rb = both(pair, "GET", f"/{level}/{rid}/metadata/{name}")
            assert ra.headers["content-type"] == rb.headers["content-type"] == "text/plain"
            if name not in VOLATILE_METADATA:
                assert (ra.content, ra.headers["etag"]) == (rb.content, rb.headers["etag"]), (rid, name)


def test_metadata_names_and_errors_match(pair: tuple[Server, Server]) -> None:
    orthanc, _ = pair
    instance = orthanc.get("/instances").json()[0]
    patient = orthanc.get("/patients").json()[0]
    for name in ("RemoteAET", "3", "03", "RemoteAet", "1030", "Sample", "70000", "-1", "%201", "1%20",
                 "99999999999", "+1", "1x", "0x10", "1.0", "%09", "ExpectedNumberOfInstances"):
        same(pair, "GET", f"/instances/{instance}/metadata/{name}")
    for path in (f"/patients/{instance}/metadata", "/instances/nope/metadata",
                 f"/patients/{instance}/metadata/Origin", f"/series/{patient}/metadata/LastUpdate"):
        same(pair, "GET", path)


@pytest.mark.parametrize("level", LEVELS)
def test_core_metadata_are_read_only_alike(pair: tuple[Server, Server], level: str) -> None:
    orthanc, _ = pair
    rid = orthanc.get(f"/{level}").json()[0]
    for name in ("LastUpdate", "Origin", "1", "1023", "70000", "-5"):
        same(pair, "PUT", f"/{level}/{rid}/metadata/{name}", content=b"x")
        same(pair, "DELETE", f"/{level}/{rid}/metadata/{name}")
    same(pair, "PUT", f"/{level}/nope/metadata/Origin", content=b"x")
    same(pair, "DELETE", f"/{level}/nope/metadata/Origin")


@pytest.mark.parametrize("level", LEVELS)
def test_user_metadata_sequence_matches(pair: tuple[Server, Server], level: str) -> None:
    orthanc, donjon = pair
    rid = orthanc.get(f"/{level}").json()[-1]
    base = f"/{level}/{rid}/metadata"
    before = len(updates(orthanc)), len(updates(donjon))
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{base}/Sample", {}),
        ("DELETE", f"{base}/Other", {}),
        ("PUT", f"{base}/Sample", {"content": b"hello"}),
        ("GET", f"{base}/Sample", {}),
        ("GET", f"{base}/Sample", {"headers": {"If-None-Match": '"0-5d41402abc4b2a76b9719d911017c592"'}}),
        ("GET", f"{base}/Sample", {"headers": {"If-None-Match": "garbage"}}),
        ("PUT", f"{base}/Sample", {"content": b"x", "headers": {"If-Match": '"0-ffff"'}}),
        ("PUT", f"{base}/Sample", {"content": b"x", "headers": {"If-Match": "garbage"}}),
        ("PUT", f"{base}/Sample", {"content": b"world", "headers": {"If-Match": '"0-5d41402abc4b2a76b9719d911017c592"'}}),
        ("PUT", f"{base}/1025", {"content": b""}),
        ("PUT", f"{base}/1030", {"content": "é ✓".encode()}),
        ("GET", f"{base}?expand", {}),
        ("GET", base, {}),
        ("PUT", f"{base}/Foo", {"content": b"x"}),
        ("PUT", f"/{level}/nope/metadata/Sample", {"content": b"x"}),
        ("DELETE", f"{base}/Sample", {"headers": {"If-Match": '"7-0000"'}}),
        ("DELETE", f"{base}/Sample", {}),
        ("DELETE", f"{base}/Sample", {}),
        ("DELETE", f"{base}/1025", {}),
        ("DELETE", f"{base}/1030", {}),
        ("GET", base, {}),
    ]
    for method, path, kw in steps:
        a, b = both(pair, method, path, **kw)
        sa, sb = shape(a), shape(b)
        if path.endswith("?expand") or path == base:
            sa = (sa[0], _drop_newer(sa[1]))
            sb = (sb[0], _drop_newer(sb[1]))
        assert sa == sb, (method, path, kw)
        if method == "PUT":  # both answer the new revision
            assert a.headers.get("etag") == b.headers.get("etag"), (method, path)
        else:
            assert etag_md5(a) == etag_md5(b), (method, path)
    ua, ub = updates(orthanc)[before[0]:], updates(donjon)[before[1]:]
    assert ua == ub and len(ua) == 7


def _drop_newer(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in NEWER_METADATA | VOLATILE_METADATA}
    if isinstance(value, list):
        return [v for v in value if v not in NEWER_METADATA]
    return value


def test_metadata_through_an_other_level_url_match(pair: tuple[Server, Server]) -> None:
    orthanc, _ = pair
    instance = orthanc.get("/instances").json()[0]
    same(pair, "PUT", f"/patients/{instance}/metadata/Sample", content=b"v")
    same(pair, "GET", f"/patients/{instance}/metadata/Sample")
    same(pair, "GET", f"/instances/{instance}/metadata/Sample")
    same(pair, "DELETE", f"/studies/{instance}/metadata/Sample")


def test_deliberate_revision_difference(pair: tuple[Server, Server]) -> None:
    """After a replacement Orthanc's SQLite reads revision 0 back; Donjon shows the real revision 1."""
    orthanc, donjon = pair
    instance = orthanc.get("/instances").json()[0]
    base = f"/instances/{instance}/metadata/Other"
    for server in pair:
        server.put(base, content=b"a")
        assert server.put(base, content=b"b").headers["etag"].startswith('"1-')
    assert orthanc.get(base).headers["etag"].startswith('"0-')
    assert donjon.get(base).headers["etag"].startswith('"1-')
    for server in pair:
        server.delete(base)


# -- attachments -------------------------------------------------------------------------------------------

def _ops(r: httpx.Response) -> Any:
    body = shape(r)
    if isinstance(body[1], list):
        return body[0], [op for op in body[1] if op != "uuid"]
    return body


def _info(r: httpx.Response) -> Any:
    status, body = shape(r)
    if isinstance(body, dict) and "Uuid" in body:
        body = {k: v for k, v in body.items() if k != "Uuid"}
    return status, body


def test_dicom_attachments_match(pair: tuple[Server, Server]) -> None:
    orthanc, _ = pair
    for level in LEVELS:
        for rid in orthanc.get(f"/{level}").json():
            same(pair, "GET", f"/{level}/{rid}/attachments")
            same(pair, "GET", f"/{level}/{rid}/attachments?full")
    for rid in orthanc.get("/instances").json():
        base = f"/instances/{rid}/attachments"
        a, b = both(pair, "GET", f"{base}/dicom")
        assert _ops(a) == _ops(b) and a.headers["etag"] == b.headers["etag"]
        a, b = both(pair, "GET", f"{base}/dicom/info")
        assert _info(a) == _info(b)
        for route in ("size", "compressed-size", "md5", "compressed-md5", "is-compressed"):
            a, b = same(pair, "GET", f"{base}/dicom/{route}")
            assert a.headers["etag"] == b.headers["etag"]
            assert a.headers["content-type"] == b.headers["content-type"]
        for route in ("data", "compressed-data"):
            a, b = same(pair, "GET", f"{base}/{'1' if route == 'data' else 'dicom'}/{route}")
            assert a.headers["content-type"] == b.headers["content-type"], route
            assert a.headers["etag"] == b.headers["etag"]
            assert ("content-disposition" in a.headers) == ("content-disposition" in b.headers)
        same(pair, "POST", f"{base}/dicom/verify-md5")


def test_attachment_lookup_errors_match(pair: tuple[Server, Server]) -> None:
    orthanc, _ = pair
    instance = orthanc.get("/instances").json()[0]
    patient = orthanc.get("/patients").json()[0]
    for path in (f"/patients/{instance}/attachments", "/instances/nope/attachments",
                 f"/patients/{instance}/attachments/dicom/size", f"/patients/{patient}/attachments/dicom/size",
                 "/instances/nope/attachments/dicom/info", f"/instances/{instance}/attachments/foo/size",
                 f"/instances/{instance}/attachments/1500/size", f"/instances/{instance}/attachments/%201/size",
                 f"/instances/{instance}/attachments/dicom-until-pixel-data/data",
                 f"/instances/{instance}/attachments/dicom/nothing"):
        same(pair, "GET", path)
    for name in ("dicom", "1", "dicom-until-pixel-data", "1023", "70000", "-1"):
        same(pair, "PUT", f"/instances/{instance}/attachments/{name}", content=b"x")
    for name in ("dicom", "dicom-until-pixel-data", "dicom-as-json", "70000", "sampleRaw"):
        same(pair, "DELETE", f"/instances/{instance}/attachments/{name}")
    same(pair, "DELETE", "/instances/nope/attachments/sampleRaw")
    for op in ("compress", "uncompress", "verify-md5"):
        same(pair, "POST", f"/patients/{patient}/attachments/samplePdf/{op}")
        same(pair, "POST", f"/patients/nope/attachments/samplePdf/{op}")
        same(pair, "POST", f"/patients/{patient}/attachments/foo/{op}")


@pytest.mark.parametrize("level", LEVELS)
def test_user_attachment_sequence_matches(pair: tuple[Server, Server], level: str) -> None:
    orthanc, donjon = pair
    rid = orthanc.get(f"/{level}").json()[-1]
    base = f"/{level}/{rid}/attachments"
    before = len(updates(orthanc)), len(updates(donjon))
    pdf = b"%PDF-1.4 " + bytes(range(256)) * 40
    for name, body in (("samplePdf", pdf), ("sampleRaw", b"raw"), ("1500", b"")):
        a, b = same(pair, "PUT", f"{base}/{name}", content=body)
        assert a.headers["etag"] == b.headers["etag"] == f'"0-{hashlib.md5(body).hexdigest()}"'
    same(pair, "GET", base)
    same(pair, "GET", f"{base}?full")
    for name in ("samplePdf", "1026", "1500"):
        a, b = both(pair, "GET", f"{base}/{name}")
        assert _ops(a) == _ops(b)
        a, b = both(pair, "GET", f"{base}/{name}/info")
        assert _info(a) == _info(b)
        a, b = same(pair, "GET", f"{base}/{name}/data")
        assert a.headers["content-type"] == b.headers["content-type"]
        pattern = r'filename="[0-9a-f-]{36}"'
        assert re.fullmatch(pattern, a.headers["content-disposition"])
        assert re.fullmatch(pattern, b.headers["content-disposition"])
        for route in ("size", "md5", "compressed-size", "is-compressed"):
            same(pair, "GET", f"{base}/{name}/{route}")
    for op in ("compress", "compress", "verify-md5", "uncompress", "uncompress", "compress"):
        same(pair, "POST", f"{base}/samplePdf/{op}")
        a, b = both(pair, "GET", f"{base}/samplePdf/info")
        assert _info(a) == _info(b), op
    same(pair, "GET", f"{base}/samplePdf/data")
    a, b = same(pair, "PUT", f"{base}/samplePdf", content=b"second")
    # Donjon: revision 4 (three real re-encodings before); Orthanc's SQLite: 0 read back, + 1
    digest = hashlib.md5(b"second").hexdigest()
    assert (a.headers["etag"], b.headers["etag"]) == (f'"1-{digest}"', f'"4-{digest}"')
    same(pair, "PUT", f"{base}/samplePdf", content=b"x", headers={"If-Match": "garbage"})
    same(pair, "PUT", f"{base}/samplePdf", content=b"x", headers={"If-Match": '"5-ffff"'})
    same(pair, "GET", f"{base}/samplePdf/data", headers={"If-None-Match": "garbage"})
    same(pair, "DELETE", f"{base}/samplePdf", headers={"If-Match": '"5-ffff"'})
    for name in ("samplePdf", "sampleRaw", "1500", "1500"):
        same(pair, "DELETE", f"{base}/{name}")
    same(pair, "GET", base)
    ua, ub = updates(orthanc)[before[0]:], updates(donjon)[before[1]:]
    assert ua == ub and len(ua) == 10


def test_deliberate_unknown_resource_difference(pair: tuple[Server, Server]) -> None:
    a, b = both(pair, "PUT", "/instances/nope/attachments/sampleRaw", content=b"x")
    assert a.status_code == 200  # 1.10.1 answers success and stores nothing
    assert b.status_code == 404 and b.json()["OrthancStatus"] == 7  # mainline


def test_labels_are_newer_than_1_10_1(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    study = orthanc.get("/studies").json()[0]
    assert orthanc.get(f"/studies/{study}/labels").status_code == 404
    assert donjon.get(f"/studies/{study}/labels").json() == []
