"""`/instances/{id}/frames/{n}/raw` and `raw.gz` against Orthanc 1.10.1: every transfer syntax of the
samples, a two-frame JPEG made of several fragments, a palette image, a file without pixel data, and
frame numbers past the end, negative, signed and not numbers.

Compared: the status, the content type and the bytes of a success (`raw.gz` decompressed: gzip's own
header is not part of the contract), the Orthanc error code of a failure.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.error_bodies import as_orthanc_1_10
from tests.support.servers import SAMPLES, Server, loaded_pair

pytestmark = pytest.mark.orthanc

FILES = [*sorted(f"TransferSyntaxes/{p.name}" for p in (SAMPLES / "TransferSyntaxes").glob("*.dcm")),
         "LenaTwiceWithFragments.dcm", "Issue22-NoPixelData.dcm", "Implicit-vr-us-palette.dcm",
         "ColorTestMalaterre.dcm", "SignedCT.dcm"]
FRAMES = ("0", "1", "2", "99", "-1", "+0", "x")


@pytest.fixture(scope="module")
def pair() -> Iterator[list[Server]]:
    yield from loaded_pair(FILES)


def outcome(r: httpx.Response, gzipped: bool) -> tuple[Any, ...]:
    if r.status_code != 200:
        return r.status_code, r.json().get("OrthancStatus") if r.content else None
    body = gzip.decompress(r.content) if gzipped else r.content
    return 200, r.headers["content-type"], len(body), hashlib.md5(body).hexdigest()


def test_raw_frames_match_orthanc(pair: list[Server]) -> None:
    orthanc, donjon = pair
    instances = orthanc.get("/instances").json()
    assert sorted(instances) == sorted(donjon.get("/instances").json()) and len(instances) == len(FILES)
    successes = 0
    for instance in instances:
        for frame in FRAMES:
            for suffix in ("raw", "raw.gz"):
                path = f"/instances/{instance}/frames/{frame}/{suffix}"
                theirs = orthanc.get(path)
                ours = as_orthanc_1_10(theirs, donjon.get(path))
                assert outcome(ours, suffix == "raw.gz") == outcome(theirs, suffix == "raw.gz"), path
                successes += theirs.status_code == 200
    assert successes >= 2 * (len(FILES) + 1)  # frame 0 and "+0" of each file with pixels, Lena's frame 1


def test_unknown_instance(pair: list[Server]) -> None:
    orthanc, donjon = pair
    for path in ("/instances/nope/frames/0/raw", "/instances/nope/frames/0/raw.gz"):
        theirs = orthanc.get(path)
        assert theirs.status_code == 404 == as_orthanc_1_10(theirs, donjon.get(path)).status_code
