"""Differential test of the changes log: fresh Orthanc 1.10.1 and fresh Donjon, same operations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.servers import ORTHANC, Server, start_donjon, start_orthanc

pytestmark = pytest.mark.orthanc

FILES = ["Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm", "Knee/T2/IM-0001-0001.dcm",
         "Brainix/Flair/IM-0001-0001.dcm", "DummyCT.dcm", "Knee/T1/IM-0001-0001.dcm"]


@pytest.fixture(scope="module")
def pair(samples: Any) -> Iterator[tuple[Server, Server]]:
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed (apt-get install orthanc)")
    orthanc = start_orthanc({"StableAge": 2})
    donjon = start_donjon({"StableAge": 2})
    yield orthanc, donjon
    orthanc.stop()
    donjon.stop()


def _changes(server: Server, query: str = "") -> dict[str, Any]:
    answer = server.get(f"/changes{query}").json()
    for c in answer["Changes"]:
        c.pop("Date")
    return answer


def test_changes_follow_the_same_sequence(pair: tuple[Server, Server], samples: Any) -> None:
    orthanc, donjon = pair
    for name in FILES:
        a = orthanc.upload(samples / name).json()
        b = donjon.upload(samples / name).json()
        assert a == b
    assert _changes(orthanc) == _changes(donjon)
    for query in ("?since=2&limit=3", "?since=1000", "?since=2&limit=0", "?last", "?limit=1"):
        assert _changes(orthanc, query) == _changes(donjon, query), query
    exports_a, exports_b = orthanc.get("/exports").json(), donjon.get("/exports").json()
    assert exports_a == exports_b

    # a deletion removes the change rows of what it deleted
    instance = orthanc.get("/instances").json()[0]
    assert orthanc.delete(f"/instances/{instance}").json() == donjon.delete(f"/instances/{instance}").json()
    assert _changes(orthanc) == _changes(donjon)

    # stable events after StableAge (2 s); both servers log them in the same order
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        kinds_a = [c["ChangeType"] for c in _changes(orthanc, "?limit=1000")["Changes"]]
        kinds_b = [c["ChangeType"] for c in _changes(donjon, "?limit=1000")["Changes"]]
        if kinds_a.count("StablePatient") == 3 and kinds_b.count("StablePatient") == 3:
            break
        time.sleep(0.3)
    a, b = _changes(orthanc, "?limit=1000"), _changes(donjon, "?limit=1000")
    stable_a = [(c["ChangeType"], c["ID"]) for c in a["Changes"] if c["ChangeType"].startswith("Stable")]
    stable_b = [(c["ChangeType"], c["ID"]) for c in b["Changes"] if c["ChangeType"].startswith("Stable")]
    assert sorted(stable_a) == sorted(stable_b)
    assert len(stable_a) == 3 * 3 + 1  # 4 series, 3 studies, 3 patients

    assert orthanc.delete("/changes").status_code == donjon.delete("/changes").status_code == 200
    assert _changes(orthanc) == _changes(donjon)
