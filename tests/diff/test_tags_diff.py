"""Differential tests of the instance content routes: every sample file, Orthanc 1.10.1 against Donjon.

Compared for every stored instance: `/tags` (full, `?simplify`, `?short`), `/simplified-tags`,
`/header` (three formats), `/frames`, `/content` (the listing, a walk into sequences and leaves,
pixel data blocks, tag names, unknown and absent tags), and `/shared-tags` of every patient, study
and series, plus the 404s of unknown resources.

No normalisation is needed on these answers: they are compared as parsed JSON (or bytes), so only
JsonCpp's whitespace is ignored. Differences Donjon keeps on purpose are outside what is compared
here, and asserted in tests/unit/test_json_tags.py:
* Boolean arguments are parsed as mainline Orthanc does (`?simplify=false` is not simplified;
  1.10.1 only tests that the argument is present).
* `?whole` (1.12.4+) adds the tags after the pixel data; 1.10.1 ignores the argument.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.error_bodies import as_orthanc_1_10
from tests.support.servers import Server, sample_files, start_donjon

pytestmark = pytest.mark.orthanc

MAX_CONTENT_REQUESTS = 40  # per instance, walking /content breadth first
EXTRA_CONTENT_PATHS = (
    ["7fe0-0010"], ["7fe0-0010", "0"], ["7fe0-0010", "1"], ["7fe0-0010", "x"],
    ["PatientName"], ["0010,0010"], ["00100010"], ["RETIRED_OtherPatientIDs"], ["OtherPatientIDs"],
    ["NoSuchTagName"], ["ffff-ffff"], ["0010-0010", "0"], ["0008-1140", "-1"],
)


def answer(r: httpx.Response) -> tuple[int, str, Any]:
    """Status, kind and body; errors reduced to their Orthanc code (whitespace and layout differ)."""
    if not r.content:
        return r.status_code, "empty", None
    content_type = r.headers.get("content-type", "")
    if content_type.startswith("application/json") or r.status_code >= 400:
        body = r.json()
        if isinstance(body, dict) and "OrthancStatus" in body:
            return r.status_code, "error", (body["OrthancStatus"], body["HttpStatus"], body["Uri"])
        return r.status_code, "json", body
    return r.status_code, content_type, r.content


def both(pair: tuple[Server, Server], path: str) -> tuple[Any, Any]:
    orthanc, donjon = pair
    a = orthanc.get(path)
    return answer(a), answer(as_orthanc_1_10(a, donjon.get(path)))


@pytest.fixture(scope="module")
def pair(orthanc: Server, donjon: Server) -> tuple[Server, Server]:
    return orthanc, donjon


@pytest.fixture(scope="module")
def stored(pair: tuple[Server, Server], samples: Path) -> Iterator[dict[str, str]]:
    """Every sample uploaded to both servers, in the same order: sample path -> instance id."""
    orthanc, donjon = pair
    orthanc.wipe()
    donjon.wipe()
    ids: dict[str, str] = {}
    for path in sample_files():
        a, b = orthanc.upload(path), donjon.upload(path)
        assert a.status_code == b.status_code, path
        if a.status_code != 200:
            continue
        ja, jb = a.json(), b.json()
        assert ja["ID"] == jb["ID"] and ja["Status"] == jb["Status"], path
        if ja["Status"] == "Success":
            ids[str(path.relative_to(samples))] = ja["ID"]
    assert len(ids) > 100
    yield ids
    orthanc.wipe()
    donjon.wipe()


def _root() -> Path:
    from tests.support.servers import SAMPLES as root
    return root


SAMPLES = [str(p.relative_to(_root())) for p in sample_files()]


def _instance(stored: dict[str, str], sample: str) -> str:
    if sample not in stored:
        pytest.skip("not stored as a new instance (not DICOM, or the same SOPInstanceUID as another sample)")
    return stored[sample]


@pytest.mark.parametrize("sample", SAMPLES)
def test_tags_and_header(pair: tuple[Server, Server], stored: dict[str, str], sample: str) -> None:
    iid = _instance(stored, sample)
    for route in ("tags", "tags?simplify", "tags?short", "tags?full", "simplified-tags", "header",
                  "header?simplify", "header?short", "frames"):
        expected, got = both(pair, f"/instances/{iid}/{route}")
        assert got == expected, route


@pytest.mark.parametrize("sample", SAMPLES)
def test_content(pair: tuple[Server, Server], stored: dict[str, str], sample: str) -> None:
    iid = _instance(stored, sample)
    todo: list[list[str]] = [[], *EXTRA_CONTENT_PATHS]
    done = 0
    while todo and done < MAX_CONTENT_REQUESTS + len(EXTRA_CONTENT_PATHS):
        path = todo.pop(0)
        done += 1
        url = f"/instances/{iid}/content/" + "/".join(path)
        expected, got = both(pair, url)
        assert got == expected, url
        if expected[1] == "json" and not (path and path[0] == "7fe0-0010"):
            todo.extend([*path, str(x)] for x in expected[2])


def test_shared_tags(pair: tuple[Server, Server], stored: dict[str, str]) -> None:
    orthanc, _ = pair
    for level in ("patients", "studies", "series"):
        for rid in orthanc.get(f"/{level}").json():
            for args in ("", "?simplify", "?short"):
                expected, got = both(pair, f"/{level}/{rid}/shared-tags{args}")
                assert got == expected, f"/{level}/{rid}/shared-tags{args}"


def test_unknown_resources(pair: tuple[Server, Server], stored: dict[str, str]) -> None:
    for route in ("tags", "simplified-tags", "header", "content", "content/0010-0010", "frames"):
        expected, got = both(pair, f"/instances/nope/{route}")
        assert got == expected, route
    for level in ("patients", "studies", "series"):
        expected, got = both(pair, f"/{level}/nope/shared-tags")
        assert got == expected, level


COMPRESSED_SAMPLES = ("Knix/Loc/IM-0001-0001.dcm", "PrivateTags.dcm", "Implicit-vr-us-palette.dcm",
                      "TransferSyntaxes/1.2.840.10008.1.2.2.dcm", "Issue22-NoPixelData.dcm")


def test_compressed_storage(pair: tuple[Server, Server], stored: dict[str, str], samples: Path) -> None:
    """With StorageCompression, Donjon reads its DicomUntilPixelData attachment: same answers."""
    orthanc, _ = pair
    compressed = start_donjon({"StorageCompression": True})
    try:
        for sample in COMPRESSED_SAMPLES:
            iid = stored[sample]
            assert compressed.upload(samples / sample).json()["ID"] == iid
            for route in ("tags", "tags?short", "header", "frames", "content", "content/0010-0010",
                          "content/7fe0-0010"):
                url = f"/instances/{iid}/{route}"
                expected = orthanc.get(url)
                assert answer(as_orthanc_1_10(expected, compressed.get(url))) == answer(expected), url
    finally:
        compressed.stop()


def test_donjon_arguments(pair: tuple[Server, Server], stored: dict[str, str]) -> None:
    """Where Donjon follows mainline Orthanc rather than 1.10.1 (see the module's docstring)."""
    _, donjon = pair
    private = stored["PrivateTags.dcm"]
    tags = donjon.get(f"/instances/{private}/tags").json()
    assert donjon.get(f"/instances/{private}/tags?simplify=false").json() == tags
    assert donjon.get(f"/instances/{private}/tags?simplify=maybe").status_code == 400
    whole = donjon.get(f"/instances/{private}/tags?whole").json()
    assert set(whole) - set(tags) == {"7fe1,0010", "7fe1,1001"}
    assert donjon.get(f"/instances/{private}/simplified-tags?short").json() == \
        donjon.get(f"/instances/{private}/tags?simplify").json()
    palette = stored["Implicit-vr-us-palette.dcm"]
    assert donjon.get(f"/instances/{palette}/tags").json()["0018,1020"]["Type"] == "TooLong"
    long = donjon.get(f"/instances/{palette}/tags?ignore-length=SoftwareVersions").json()["0018,1020"]
    assert long["Type"] == "String" and len(long["Value"]) > 256
