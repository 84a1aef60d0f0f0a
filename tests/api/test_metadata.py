"""Metadata over REST: listing, names and numbers, read-only core keys, revisions, change log, limits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from tests.support.servers import Server, start_donjon

KNEE1 = "Knee/T1/IM-0001-0001.dcm"
IDS = {
    "patients": "ca29faea-b6a0e17f-067743a1-8b778011-a48b2a17",
    "studies": "0a9b3153-2512774b-2d9580de-1fc3dcf6-3bd83918",
    "series": "6de73705-c4e65c1b-9d9ea1b5-cabcd8e7-f15e4285",
    "instances": "c8df6478-d7794217-0f11c293-a41237c9-31d98357",
}
INSTANCE = IDS["instances"]
CONFIG = {"UserMetadata": {"Sample": 1024, "Other": 1025}}
LEVELS = list(IDS)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


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


def changes(server: Server) -> list[tuple[str, str, str]]:
    return [(c["ChangeType"], c["ResourceType"], c["ID"]) for c in server.get("/changes?limit=1000").json()["Changes"]
            if c["ChangeType"] == "UpdatedMetadata"]


# -- listing -----------------------------------------------------------------------------------------

def test_core_metadata_of_each_level(fresh: Server) -> None:
    md = fresh.get(f"/instances/{INSTANCE}/metadata?expand").json()
    assert md["Origin"] == "RestApi" and md["PixelDataOffset"] == "3192" and md["IndexInSeries"] == "1"
    assert md["MainDicomTagsSignature"].startswith("0008,0012;")
    series = fresh.get(f"/series/{IDS['series']}/metadata?expand").json()
    assert set(series) >= {"LastUpdate", "RemoteAET", "MainDicomTagsSignature"}
    for level in ("patients", "studies"):
        assert set(fresh.get(f"/{level}/{IDS[level]}/metadata?expand").json()) == {"LastUpdate",
                                                                                   "MainDicomTagsSignature"}


def test_listing_forms(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata"
    fresh.put(f"{base}/Sample", content=b"v")
    fresh.put(f"{base}/1030", content=b"w")
    names = fresh.get(base).json()
    assert names[:3] == ["IndexInSeries", "ReceptionDate", "RemoteAET"]
    assert names[-2:] == ["Sample", "1030"]
    assert fresh.get(f"{base}?expand=false").json() == names  # 1.12.2+: expand=false is the array
    numbers = fresh.get(f"{base}?numeric").json()
    assert numbers == sorted(numbers) and numbers[-2:] == [1024, 1030] and numbers[0] == 1
    expanded = fresh.get(f"{base}?expand&numeric").json()
    assert expanded["1024"] == "v" and expanded["1030"] == "w" and expanded["8"] == "RestApi"
    assert fresh.get(f"{base}?expand").json()["1030"] == "w"
    r = fresh.get(f"{base}?expand=maybe")
    assert r.status_code == 400 and r.json()["OrthancStatus"] == 3


@pytest.mark.parametrize("level", LEVELS)
def test_listing_checks_the_level(fresh: Server, level: str) -> None:
    other = IDS["patients"] if level != "patients" else INSTANCE
    for rid in (other, "nope"):
        r = fresh.get(f"/{level}/{rid}/metadata")
        assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
        r = fresh.get(f"/{level}/{rid}/metadata/LastUpdate")
        assert r.status_code == 404 and r.json()["OrthancStatus"] == 17


# -- names and numbers ---------------------------------------------------------------------------------

def test_names_and_numbers(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata"
    assert fresh.get(f"{base}/RemoteAET").status_code == 200
    assert fresh.get(f"{base}/3").text == fresh.get(f"{base}/RemoteAET").text
    assert fresh.get(f"{base}/08").text == "RestApi"
    r = fresh.get(f"{base}/RemoteAet")  # case-sensitive
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 7 and r.json()["Message"] == \
        "Accessing an inexistent item"
    for absent in ("1030", "Sample", "70000", "-1", "4"):
        r = fresh.get(f"{base}/{absent}")
        assert (r.status_code, r.json()["HttpStatus"]) == (404, 404), absent
    for syntax in ("%201", "1%20", "99999999999"):
        r = fresh.get(f"{base}/{syntax}")
        assert r.status_code == 400 and r.json()["OrthancStatus"] == 5, syntax
        assert r.json()["Details"] == "Syntax error in some user-supplied data"
    for name in ("+1", "1x", "0x10", "1.0"):
        assert fresh.get(f"{base}/{name}").json()["OrthancStatus"] == 7, name


@pytest.mark.parametrize("level", LEVELS)
def test_core_keys_are_read_only(fresh: Server, level: str) -> None:
    base = f"/{level}/{IDS[level]}/metadata"
    before = fresh.get(f"{base}?expand").json()
    for name in ("LastUpdate", "ReceptionDate", "Origin", "15", "1023", "70000", "-5", "0"):
        for r in (fresh.put(f"{base}/{name}", content=b"x"), fresh.delete(f"{base}/{name}")):
            assert (r.status_code, r.json()["HttpStatus"]) == (403, 403), name
    assert fresh.put(f"/{level}/nope/metadata/Origin", content=b"x").status_code == 403
    assert fresh.get(f"{base}?expand").json() == before
    assert changes(fresh) == []


# -- write, read, delete ---------------------------------------------------------------------------------

@pytest.mark.parametrize("level", LEVELS)
def test_user_metadata_life_cycle(fresh: Server, level: str) -> None:
    rid = IDS[level]
    base = f"/{level}/{rid}/metadata"
    r = fresh.put(f"{base}/Sample", content=b"hello")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-type"] == "text/plain"
    assert r.headers["etag"] == f'"0-{md5("hello")}"'
    r = fresh.get(f"{base}/Sample")
    assert r.text == "hello" and r.headers["content-type"] == "text/plain"
    assert r.headers["etag"] == f'"0-{md5("hello")}"'
    r = fresh.put(f"{base}/1024", content=b"world")  # by number, replaces: revision 1
    assert r.headers["etag"] == f'"1-{md5("world")}"'
    assert fresh.get(f"{base}/Sample").headers["etag"] == f'"1-{md5("world")}"'
    assert "Sample" in fresh.get(base).json()
    r = fresh.delete(f"{base}/Sample")
    assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "text/plain")
    assert fresh.get(f"{base}/Sample").status_code == 404
    r = fresh.delete(f"{base}/Sample")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    kind = {"patients": "Patient", "studies": "Study", "series": "Series", "instances": "Instance"}[level]
    assert changes(fresh) == [("UpdatedMetadata", kind, rid)] * 3


def test_values_are_stored_verbatim(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata"
    for value in ("", "  spaced \n", "é ünïcode ✓", "a\x00b", "x" * 100_000):
        assert fresh.put(f"{base}/Other", content=value.encode()).status_code == 200
        r = fresh.get(f"{base}/Other")
        assert r.content == value.encode()
        assert r.headers["etag"].endswith(f'-{md5(value)}"')


def test_only_the_existence_of_the_id_is_checked_on_writes(fresh: Server) -> None:
    """Orthanc: PUT/DELETE through a URL of another level work; the change names the real level."""
    r = fresh.put(f"/patients/{INSTANCE}/metadata/Sample", content=b"x")
    assert r.status_code == 200
    assert fresh.get(f"/instances/{INSTANCE}/metadata/Sample").text == "x"
    assert fresh.get(f"/patients/{INSTANCE}/metadata/Sample").status_code == 404
    assert fresh.delete(f"/studies/{INSTANCE}/metadata/Sample").status_code == 200
    assert changes(fresh) == [("UpdatedMetadata", "Instance", INSTANCE)] * 2


def test_unknown_resource_and_name(fresh: Server) -> None:
    for r in (fresh.put("/instances/nope/metadata/Sample", content=b"x"),
              fresh.delete("/instances/nope/metadata/Sample")):
        assert r.status_code == 404 and r.json()["OrthancStatus"] == 17
    r = fresh.put(f"/instances/{INSTANCE}/metadata/Foo", content=b"x")
    assert r.status_code == 404 and r.json()["OrthancStatus"] == 7
    assert changes(fresh) == []


def test_bad_bodies_change_nothing(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata"
    fresh.put(f"{base}/Sample", content=b"keep")
    r = fresh.put(f"{base}/Sample", content=b"\xff\xfe")
    assert r.status_code == 400 and r.json()["OrthancStatus"] == 15
    r = fresh.put(f"{base}/Sample", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413
    assert fresh.put(f"{base}/Other", content=b"x" * (1024 * 1024)).status_code == 200
    r = fresh.get(f"{base}/Sample")
    assert r.text == "keep" and r.headers["etag"].startswith('"0-')


# -- revisions ---------------------------------------------------------------------------------------------

def test_if_none_match(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata/Sample"
    etag = fresh.put(base, content=b"v").headers["etag"]
    r = fresh.get(base, headers={"If-None-Match": etag})
    assert (r.status_code, r.content, r.headers["etag"]) == (304, b"", etag)
    assert fresh.get(base, headers={"If-None-Match": etag.strip('"')}).status_code == 304
    assert fresh.get(base, headers={"If-None-Match": f'"1-{md5("v")}"'}).status_code == 200
    r = fresh.get(base, headers={"If-None-Match": "garbage"})
    assert r.status_code == 400 and r.headers["etag"] == etag
    assert r.json()["Details"] == ('The "If-None-Match" HTTP header should contain the ETag (revision followed '
                                   "by MD5 hash), but found: garbage")


def test_if_match(fresh: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata/Sample"
    assert fresh.put(base, content=b"a", headers={"If-Match": '"7-whatever"'}).headers["etag"] == \
        f'"0-{md5("a")}"'  # ignored on creation
    for stale in (f'"1-{md5("a")}"', '"0-0000"'):
        r = fresh.put(base, content=b"b", headers={"If-Match": stale})
        assert r.status_code == 409 and r.json()["OrthancStatus"] == 43 and "Details" not in r.json()
        r = fresh.delete(base, headers={"If-Match": stale})
        assert r.status_code == 409
    r = fresh.put(base, content=b"b", headers={"If-Match": f'"0-{md5("a")}"'})
    assert r.headers["etag"] == f'"1-{md5("b")}"'
    for bad in ("garbage", "x-1", '"-1"', "1 -x"):
        r = fresh.put(base, content=b"c", headers={"If-Match": bad})
        assert r.status_code == 400 and r.json()["OrthancStatus"] == 3, bad
        assert r.json()["Details"].startswith('The "if-match" HTTP header should contain the ETag')
    assert fresh.delete(base, headers={"If-Match": f'"1-{md5("b")}"'}).status_code == 200
    assert fresh.get(base).status_code == 404


@pytest.fixture(scope="module")
def strict(samples) -> Iterator[Server]:
    s = start_donjon({**CONFIG, "CheckRevisions": True})
    s.upload(samples / KNEE1)
    yield s
    s.stop()


def test_check_revisions(strict: Server) -> None:
    base = f"/instances/{INSTANCE}/metadata/Sample"
    assert strict.get("/system").json()["CheckRevisions"] is True
    assert strict.put(base, content=b"a").status_code == 200  # creation needs no If-Match
    r = strict.put(base, content=b"b")
    assert r.status_code == 409 and "Details" not in r.json()
    r = strict.delete(base)
    assert r.status_code == 409
    assert r.json()["Details"] == 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'
    r = strict.delete(f"/instances/{INSTANCE}/metadata/Other")  # absent: the header is checked first
    assert r.status_code == 409
    etag = strict.put(base, content=b"b", headers={"If-Match": f'"0-{md5("a")}"'}).headers["etag"]
    assert strict.delete(base, headers={"If-Match": etag}).status_code == 200


# -- life of the resource, route listing ---------------------------------------------------------------------

def test_metadata_go_with_the_resource(fresh: Server, samples) -> None:
    fresh.put(f"/patients/{IDS['patients']}/metadata/Sample", content=b"p")
    fresh.delete(f"/patients/{IDS['patients']}")
    fresh.upload(samples / KNEE1)
    assert fresh.get(f"/patients/{IDS['patients']}/metadata/Sample").status_code == 404


def test_metadata_do_not_need_the_dicom_file(fresh: Server) -> None:
    """Metadata live in the index: reading and writing them never opens the DICOM file."""
    uuid = fresh.get(f"/instances/{INSTANCE}").json()["FileUuid"]
    path = fresh.workdir / "storage" / uuid[:2] / uuid[2:4] / uuid
    data = path.read_bytes()
    path.unlink()
    try:
        assert fresh.put(f"/instances/{INSTANCE}/metadata/Sample", content=b"x").status_code == 200
        assert fresh.get(f"/instances/{INSTANCE}/metadata/Sample").text == "x"
        assert fresh.get(f"/instances/{INSTANCE}/metadata?expand").status_code == 200
    finally:
        path.write_bytes(data)


def test_registry_route(server: Server) -> None:
    entries = server.get("/tools/registry").json()
    key = {(e["Kind"], e["Number"], e["Owner"]): e for e in entries}
    assert key[("Metadata", 2, "Orthanc core")]["Name"] == "ReceptionDate"
    assert key[("Metadata", 2, "Orthanc core")]["ReadOnly"] is True
    assert key[("Metadata", 1024, "Configuration (UserMetadata)")]["Name"] == "Sample"
    assert key[("Attachment", 1, "Orthanc core")]["MimeType"] == "application/dicom"
    osimis = [e for e in entries if e["Kind"] == "Attachment" and e["Number"] == 10000]
    assert osimis[0]["LastNumber"] == 13999 and "Osimis" in osimis[0]["Owner"]
    assert any(e["Kind"] == "GlobalProperty" and e["Number"] == 5468 for e in entries)
    assert set(entries[0]) == {"Kind", "Number", "LastNumber", "Name", "Owner", "ReadOnly", "MimeType"}
