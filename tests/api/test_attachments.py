"""Attachments over REST: listing, every read route, writes, revisions, compression, ranges, recycling."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator

import pytest

from tests.support.servers import Server, start_donjon
from tests.support.stored import is_stored, read_stored, stored_file_removed, stored_files, write_stored

KNEE1 = "Knee/T1/IM-0001-0001.dcm"
DUMMY = "DummyCT.dcm"
IDS = {
    "patients": "ca29faea-b6a0e17f-067743a1-8b778011-a48b2a17",
    "studies": "0a9b3153-2512774b-2d9580de-1fc3dcf6-3bd83918",
    "series": "6de73705-c4e65c1b-9d9ea1b5-cabcd8e7-f15e4285",
    "instances": "c8df6478-d7794217-0f11c293-a41237c9-31d98357",
}
INSTANCE = IDS["instances"]
LEVELS = list(IDS)
# level 6 (Orthanc's) so that compressed files are byte-identical to the spec's test vector
CONFIG = {"UserContentType": {"samplePdf": [1024, "application/pdf"], "sampleRaw": 1026},
          "StorageCompressionLevel": 6}
OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info",
              "is-compressed", "md5", "size", "uncompress", "verify-md5"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def updated(server: Server) -> list[tuple[str, str]]:
    return [(c["ResourceType"], c["ID"]) for c in server.get("/changes?limit=1000").json()["Changes"]
            if c["ChangeType"] == "UpdatedAttachment"]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon(CONFIG)
    yield s
    s.stop()


@pytest.fixture
def fresh(server: Server, samples) -> Server:
    server.wipe()
    server.delete("/changes")
    assert server.upload(samples / KNEE1).status_code == 200
    return server


# -- listing and reading ---------------------------------------------------------------------------------

def test_dicom_attachment(fresh: Server, samples) -> None:
    data = (samples / KNEE1).read_bytes()
    base = f"/instances/{INSTANCE}/attachments"
    assert fresh.get(base).json() == ["dicom"]
    assert fresh.get(f"{base}?full").json() == {"dicom": 1}
    assert fresh.get(f"{base}?full=false").json() == {"dicom": 1}  # Orthanc: the presence counts
    etag = f'"0-{md5(data)}"'
    r = fresh.get(f"{base}/dicom")
    assert r.json() == OPERATIONS and r.headers["etag"] == etag
    info = fresh.get(f"{base}/dicom/info").json()
    assert info == {"CompressedMD5": md5(data), "CompressedSize": len(data), "ContentType": 1,
                    "UncompressedMD5": md5(data), "UncompressedSize": len(data),
                    "Uuid": fresh.get(f"/instances/{INSTANCE}").json()["FileUuid"]}
    r = fresh.get(f"{base}/dicom/data")
    assert r.content == data and r.headers["content-type"] == "application/dicom"
    assert r.headers["content-disposition"] == f'filename="{info["Uuid"]}.dcm"'
    assert r.headers["etag"] == etag
    r = fresh.get(f"{base}/1/compressed-data")
    assert r.content == data and r.headers["content-type"] == "application/octet-stream"
    assert "content-disposition" not in r.headers
    for route, value in (("size", str(len(data))), ("compressed-size", str(len(data))), ("md5", md5(data)),
                         ("compressed-md5", md5(data)), ("is-compressed", "0")):
        r = fresh.get(f"{base}/dicom/{route}")
        assert (r.text, r.headers["content-type"], r.headers["etag"]) == (value, "text/plain", etag), route
        r = fresh.get(f"{base}/dicom/{route}", headers={"If-None-Match": etag})
        assert (r.status_code, r.content) == (304, b""), route
    assert fresh.post(f"{base}/dicom/verify-md5").content == b"{}"


@pytest.mark.parametrize("level", LEVELS)
def test_listing_checks_the_level(fresh: Server, level: str) -> None:
    other = IDS["patients"] if level != "patients" else INSTANCE
    for rid in (other, "nope"):
        r = fresh.get(f"/{level}/{rid}/attachments")
        assert r.status_code == 404 and r.json()["OrthancStatus"] == 17


def test_lookup_errors(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments"
    for name, status in (("foo", 7), ("1500", 17), ("dicom-until-pixel-data", 17), ("dicom-as-json", 17)):
        for route in ("", "/info", "/data", "/size", "/md5"):
            r = fresh.get(f"{base}/{name}{route}")
            assert r.status_code == 404 and r.json()["OrthancStatus"] == status, (name, route)
    r = fresh.get("/instances/nope/attachments/dicom/size")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    r = fresh.get(f"{base}/%201/size")
    assert r.status_code == 400 and r.json()["OrthancStatus"] == 5
    # per-attachment routes only check that the id exists, at any level
    assert fresh.get(f"/patients/{INSTANCE}/attachments/dicom/size").status_code == 200


# -- user attachments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_user_attachment_life_cycle(fresh: Server, level: str) -> None:
    rid = IDS[level]
    base = f"/{level}/{rid}/attachments"
    before = stored_files(fresh)
    r = fresh.put(f"{base}/samplePdf", content=b"%PDF-1")
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"{}", "application/json")
    assert r.headers["etag"] == f'"0-{md5(b"%PDF-1")}"'
    first = fresh.get(f"{base}/samplePdf/info").json()
    assert stored_files(fresh) == before | {first["Uuid"]}
    r = fresh.put(f"{base}/1024", content=b"%PDF-2")
    assert r.headers["etag"] == f'"1-{md5(b"%PDF-2")}"'
    second = fresh.get(f"{base}/samplePdf/info").json()
    assert second["Uuid"] != first["Uuid"]
    assert stored_files(fresh) == before | {second["Uuid"]}  # the old file went after the commit
    r = fresh.get(f"{base}/samplePdf/data")
    assert r.content == b"%PDF-2" and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'filename="{second["Uuid"]}"'
    assert r.headers["etag"] == f'"1-{md5(b"%PDF-2")}"'
    fresh.put(f"{base}/1500", content=b"")
    r = fresh.get(f"{base}/1500/data")
    assert r.content == b"" and r.headers["content-type"] == "application/octet-stream"
    names = fresh.get(base).json()
    assert names[-2:] == ["samplePdf", "1500"]
    assert fresh.get(f"{base}?full").json()["1500"] == 1500
    expanded = fresh.get(f"{base}?expand").json()
    assert expanded["samplePdf"] == second
    r = fresh.delete(f"{base}/samplePdf")
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "text/plain")
    assert second["Uuid"] not in stored_files(fresh)
    r = fresh.delete(f"{base}/samplePdf")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    kind = {"patients": "Patient", "studies": "Study", "series": "Series", "instances": "Instance"}[level]
    assert updated(fresh) == [(kind, rid)] * 4


def test_core_attachments_are_read_only(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments"
    before = stored_files(fresh)
    for name in ("dicom", "1", "dicom-as-json", "dicom-until-pixel-data", "1023", "70000", "-1"):
        r = fresh.put(f"{base}/{name}", content=b"x")
        assert (r.status_code, r.json()["HttpStatus"]) == (403, 403), name
    for name in ("dicom", "dicom-until-pixel-data", "70000"):
        r = fresh.delete(f"{base}/{name}")
        assert (r.status_code, r.json()["HttpStatus"]) == (403, 403), name
    # the legacy DICOM-as-JSON cache may be deleted (here it is absent)
    r = fresh.delete(f"{base}/dicom-as-json")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    assert stored_files(fresh) == before
    assert updated(fresh) == []


def test_bad_targets_write_nothing(fresh: Server) -> None:
    before = stored_files(fresh)
    r = fresh.put("/instances/nope/attachments/sampleRaw", content=b"x")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 7
    r = fresh.put(f"/instances/{INSTANCE}/attachments/foo", content=b"x")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 7
    for name in ("..%2F..%2Fescape", "%2E%2E", "..%252F..%252Fescape", "a%5Cb"):
        r = fresh.put(f"/instances/{INSTANCE}/attachments/{name}", content=b"x")
        assert r.status_code in (400, 404), name  # an encoded (back)slash: 400 from the router
    assert stored_files(fresh) == before
    assert not list(fresh.workdir.glob("escape*"))
    assert updated(fresh) == []


def test_md5_routes(fresh: Server) -> None:
    base = f"/patients/{IDS['patients']}/attachments/sampleRaw"
    fresh.put(base, content=b"raw")
    assert fresh.post(f"{base}/verify-md5").json() == {}
    info = fresh.get(f"{base}/info").json()
    write_stored(fresh, info["Uuid"], b"rat")
    r = fresh.post(f"{base}/verify-md5")
    assert (r.status_code, r.json()["HttpStatus"]) == (400, 400)
    r = fresh.post(f"/patients/{IDS['patients']}/attachments/samplePdf/verify-md5")
    assert (r.status_code, r.json()["HttpStatus"]) == (400, 400)
    r = fresh.post("/patients/nope/attachments/samplePdf/verify-md5")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17


# -- compression ------------------------------------------------------------------------------------------

def test_compress_and_uncompress(fresh: Server) -> None:
    base = f"/patients/{IDS['patients']}/attachments/sampleRaw"
    payload = b"raw data " * 100
    fresh.put(base, content=payload)
    fresh.delete("/changes")
    first = fresh.get(f"{base}/info").json()
    assert fresh.post(f"{base}/compress").content == b"{}"
    info = fresh.get(f"{base}/info").json()
    disk = read_stored(fresh, info["Uuid"])
    assert disk == struct.pack("<Q", len(payload)) + zlib.compress(payload, 6)
    assert info["CompressedSize"] == len(disk) and info["CompressedMD5"] == md5(disk)
    assert info["UncompressedMD5"] == first["UncompressedMD5"] and info["Uuid"] != first["Uuid"]
    assert not is_stored(fresh, first["Uuid"])
    assert fresh.get(f"{base}/is-compressed").text == "1"
    assert fresh.get(f"{base}/compressed-data").content == disk
    assert fresh.get(f"{base}/data").content == payload
    assert fresh.get(f"{base}/info").headers["etag"] == f'"1-{md5(payload)}"'
    assert fresh.post(f"{base}/verify-md5").status_code == 200
    assert fresh.post(f"{base}/compress").status_code == 200  # no-op: no revision, no change
    assert fresh.post(f"{base}/uncompress").status_code == 200
    assert fresh.post(f"{base}/uncompress").status_code == 200
    assert fresh.get(f"{base}/is-compressed").text == "0"
    assert fresh.get(f"{base}/info").headers["etag"] == f'"2-{md5(payload)}"'
    assert len(updated(fresh)) == 2
    r = fresh.post(f"/patients/{IDS['patients']}/attachments/samplePdf/compress")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17


def test_compressing_the_dicom_file(fresh: Server, samples) -> None:
    data = (samples / KNEE1).read_bytes()
    old = fresh.get(f"/instances/{INSTANCE}").json()["FileUuid"]
    assert fresh.post(f"/instances/{INSTANCE}/attachments/dicom/compress").status_code == 200
    info = fresh.get(f"/instances/{INSTANCE}/attachments/dicom/info").json()
    assert info["CompressedSize"] == 75248 and info["CompressedMD5"] == "9e94a7a75e03b923ccfe8e4565daec61"
    assert fresh.get(f"/instances/{INSTANCE}").json()["FileUuid"] == info["Uuid"] != old
    assert fresh.get(f"/instances/{INSTANCE}/file").content == data
    assert fresh.get(f"/instances/{INSTANCE}/attachments/dicom/data").content == data
    assert updated(fresh) == []  # core types never log
    fresh.post(f"/instances/{INSTANCE}/attachments/dicom/uncompress")
    assert fresh.get(f"/instances/{INSTANCE}/attachments/dicom/is-compressed").text == "0"


@pytest.fixture(scope="module")
def compressing(samples) -> Iterator[Server]:
    s = start_donjon({**CONFIG, "StorageCompression": True})
    s.upload(samples / KNEE1)
    yield s
    s.stop()


def test_storage_compression_applies_to_uploads(compressing: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    payload = b"z" * 5000
    r = compressing.put(base, content=payload)
    assert r.headers["etag"] == f'"0-{md5(payload)}"'
    assert compressing.get(f"{base}/is-compressed").text == "1"
    assert compressing.get(f"{base}/data").content == payload
    assert int(compressing.get(f"{base}/compressed-size").text) < 100
    assert compressing.get(f"/instances/{INSTANCE}/attachments").json() == ["dicom", "dicom-until-pixel-data",
                                                                          "sampleRaw"]
    assert compressing.get(f"/instances/{INSTANCE}/attachments/dicom-until-pixel-data/size").text == "3192"


# -- ranges -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 10)), ("bytes=10-", (10, 1000)), ("bytes=-5", (995, 1000)),
    ("bytes=990-5000", (990, 1000)), ("bytes=-5000", (0, 1000)), ("bytes=3-3", (3, 4)),
])
def test_range_requests(fresh: Server, header: str, expected: tuple[int, int]) -> None:
    payload = bytes(i % 251 for i in range(1000))
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    fresh.put(base, content=payload)
    r = fresh.get(f"{base}/data", headers={"Range": header})
    start, end = expected
    assert r.status_code == 206
    assert r.content == payload[start:end]
    assert r.headers["content-range"] == f"bytes {start}-{end - 1}/1000"
    assert r.headers["accept-ranges"] == "bytes"
    fresh.post(f"{base}/compress")  # same answers from a compressed file
    r = fresh.get(f"{base}/data", headers={"Range": header})
    assert r.status_code == 206 and r.content == payload[start:end]


def test_bad_and_ignored_ranges(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    etag = fresh.put(base, content=b"0123456789").headers["etag"]
    for header in ("bytes=10-", "bytes=20-30", "bytes=5-2", "bytes=-0", "bytes=x-y", "bytes=-"):
        r = fresh.get(f"{base}/data", headers={"Range": header})
        assert r.status_code == 416, header
        assert r.json()["OrthancStatus"] == 41 and r.headers["content-range"] == "bytes */10"
    for header in ("items=0-1", "bytes=0-1,3-4"):
        r = fresh.get(f"{base}/data", headers={"Range": header})
        assert (r.status_code, r.content) == (200, b"0123456789"), header
    r = fresh.get(f"{base}/data", headers={"Range": "bytes=0-1", "If-Range": '"9-old"'})
    assert (r.status_code, r.content) == (200, b"0123456789")
    r = fresh.get(f"{base}/data", headers={"Range": "bytes=0-1", "If-Range": etag})
    assert (r.status_code, r.content) == (206, b"01")


def test_big_attachment_streams_with_ranges(fresh: Server) -> None:
    payload = bytes(i % 253 for i in range(9 * 1024 * 1024 + 17))
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    fresh.put(base, content=payload)
    assert fresh.get(f"{base}/data").content == payload
    r = fresh.get(f"{base}/data", headers={"Range": "bytes=1-"})
    assert r.status_code == 206 and r.content == payload[1:]
    r = fresh.get(f"{base}/data", headers={"Range": "bytes=-10"})
    assert r.content == payload[-10:]


# -- revisions ---------------------------------------------------------------------------------------------

def test_if_match_on_attachments(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    etag = fresh.put(base, content=b"a", headers={"If-Match": '"5-ignored"'}).headers["etag"]
    assert etag == f'"0-{md5(b"a")}"'
    r = fresh.put(base, content=b"b", headers={"If-Match": f'"1-{md5(b"a")}"'})
    assert r.status_code == 409 and r.json()["OrthancStatus"] == 43
    assert fresh.delete(base, headers={"If-Match": '"0-bad"'}).status_code == 409
    r = fresh.put(base, content=b"b", headers={"If-Match": "nonsense"})
    assert r.status_code == 400 and "if-match" in r.json()["Details"]
    r = fresh.get(f"{base}/info", headers={"If-None-Match": "nonsense"})
    assert r.status_code == 400 and r.headers["etag"] == etag
    assert fresh.get(f"{base}/data").content == b"a"
    etag = fresh.put(base, content=b"b", headers={"If-Match": etag}).headers["etag"]
    assert etag == f'"1-{md5(b"b")}"'
    assert fresh.delete(base, headers={"If-Match": etag}).status_code == 200


@pytest.fixture(scope="module")
def strict(samples) -> Iterator[Server]:
    s = start_donjon({**CONFIG, "CheckRevisions": True})
    s.upload(samples / KNEE1)
    yield s
    s.stop()


def test_check_revisions(strict: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    etag = strict.put(base, content=b"a").headers["etag"]
    r = strict.put(base, content=b"b")
    assert r.status_code == 409 and "Details" not in r.json()
    r = strict.delete(base)
    assert r.status_code == 409 and r.json()["Details"] == \
        'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'
    assert strict.delete(base, headers={"If-Match": etag}).status_code == 200


@pytest.fixture(scope="module")
def no_md5(samples) -> Iterator[Server]:
    s = start_donjon({**CONFIG, "StoreMD5ForAttachments": False})
    s.upload(samples / KNEE1)
    yield s
    s.stop()


def test_without_md5(no_md5: Server) -> None:
    base = f"/instances/{INSTANCE}/attachments/sampleRaw"
    r = no_md5.put(base, content=b"a")
    assert r.headers["etag"] == f'"0-{md5(b"a")}"'  # the ETag of a PUT is the MD5 of the body
    assert no_md5.get(base).json() == [op for op in OPERATIONS if op not in ("compressed-md5", "md5",
                                                                                "verify-md5")]
    for route in ("md5", "compressed-md5"):
        r = no_md5.get(f"{base}/{route}")
        assert (r.status_code, r.json()["HttpStatus"]) == (404, 404)
    assert no_md5.post(f"{base}/verify-md5").status_code == 400
    assert no_md5.get(f"{base}/info").headers["etag"] == '"0-"'


# -- with the resource, recycling ------------------------------------------------------------------------------

def test_attachments_go_with_the_resource(fresh: Server) -> None:
    fresh.put(f"/studies/{IDS['studies']}/attachments/sampleRaw", content=b"s")
    fresh.put(f"/instances/{INSTANCE}/attachments/samplePdf", content=b"i")
    assert len(stored_files(fresh)) == 3
    fresh.delete(f"/patients/{IDS['patients']}")
    assert stored_files(fresh) == set()


def test_info_does_not_need_the_dicom_file(fresh: Server) -> None:
    fresh.post("/tools/reset")  # empties the storage cache (MaximumStorageCacheSize), as Orthanc's restart does
    uuid = fresh.get(f"/instances/{INSTANCE}").json()["FileUuid"]
    with stored_file_removed(fresh, uuid) as data:
        assert fresh.get(f"/instances/{INSTANCE}/attachments/dicom/info").status_code == 200
        assert fresh.get(f"/instances/{INSTANCE}/attachments/dicom/size").text == str(len(data))
        r = fresh.get(f"/instances/{INSTANCE}/attachments/dicom/data")
        assert r.status_code == 404 and r.json()["OrthancStatus"] == 13


def test_put_runs_the_recycling_check(samples) -> None:
    s = start_donjon({**CONFIG, "MaximumStorageSize": 1})
    try:
        dummy = s.upload(samples / DUMMY).json()
        s.upload(samples / KNEE1)
        r = s.put(f"/patients/{IDS['patients']}/attachments/sampleRaw", content=b"x" * (2 * 1024 * 1024))
        assert r.status_code == 507
        assert s.get("/statistics").json()["CountPatients"] == 2
        r = s.put(f"/patients/{IDS['patients']}/attachments/sampleRaw", content=b"x" * 970_500)
        # 970,500 + Knee (76,660) fits in 1 MiB, + DummyCT (2,472) does not
        assert r.status_code == 200
        assert s.get("/patients").json() == [IDS["patients"]]  # the oldest patient was recycled
        assert s.get(f"/patients/{dummy['ParentPatient']}").status_code == 404
    finally:
        s.stop()


def test_filename_argument(fresh: Server) -> None:
    """Orthanc 1.12.5: `?filename=` names the download (quotes and control characters are dropped)."""
    base = f"/instances/{INSTANCE}/attachments"
    r = fresh.get(f"{base}/dicom/data?filename=knee.dcm")
    assert r.headers["content-disposition"] == 'filename="knee.dcm"'
    r = fresh.get(f"{base}/dicom/compressed-data", params={"filename": 'a"b\r\nX-Evil: 1.dcm'})
    assert r.headers["content-disposition"] == 'filename="abX-Evil: 1.dcm"'
    assert "x-evil" not in r.headers
