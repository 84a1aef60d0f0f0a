"""Deletion cascade, RemainingAncestor, the changes log and stable events."""

from __future__ import annotations

import time

import pytest

from tests.support.servers import Server
from tests.support.stored import stored_files

T1 = ["Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm"]
T2 = ["Knee/T2/IM-0001-0001.dcm"]


@pytest.fixture
def fresh(donjon: Server) -> Server:
    donjon.wipe()
    donjon.delete("/changes")
    return donjon


def _load(server: Server, samples, names: list[str]) -> list[dict]:
    return [server.upload(samples / n).json() for n in names]


def test_remaining_ancestor(fresh: Server, samples) -> None:
    a, b = _load(fresh, samples, T1)
    (c,) = _load(fresh, samples, T2)
    r = fresh.delete(f"/instances/{a['ID']}")
    assert r.json() == {"RemainingAncestor": {"ID": a["ParentSeries"], "Path": f"/series/{a['ParentSeries']}",
                                              "Type": "Series"}}
    r = fresh.delete(f"/instances/{b['ID']}")
    assert r.json()["RemainingAncestor"]["Type"] == "Study"
    assert fresh.get(f"/series/{a['ParentSeries']}").status_code == 404
    r = fresh.delete(f"/series/{c['ParentSeries']}")
    assert r.json()["RemainingAncestor"] is None
    assert fresh.get("/statistics").json()["CountPatients"] == 0
    assert fresh.delete(f"/patients/{a['ParentPatient']}").status_code == 404


def test_delete_removes_files(fresh: Server, samples) -> None:
    ids = _load(fresh, samples, T1 + T2)
    count = lambda: len(stored_files(fresh))  # noqa: E731
    assert count() == 3
    fresh.delete(f"/patients/{ids[0]['ParentPatient']}")
    assert count() == 0
    stats = fresh.get("/statistics").json()
    assert stats["TotalDiskSize"] == "0" and stats["CountInstances"] == 0


def test_changes_log(fresh: Server, samples) -> None:
    last_before = fresh.get("/changes").json()["Last"]
    a, b = _load(fresh, samples, T1)
    changes = fresh.get(f"/changes?since={last_before}").json()
    kinds = [(c["ChangeType"], c["ResourceType"]) for c in changes["Changes"]]
    assert kinds == [("NewInstance", "Instance"), ("NewSeries", "Series"), ("NewStudy", "Study"),
                     ("NewPatient", "Patient"), ("NewInstance", "Instance")]
    assert changes["Done"] is True
    assert changes["Last"] == changes["Changes"][-1]["Seq"]
    first = changes["Changes"][0]
    assert first["ID"] == a["ID"] and first["Path"] == f"/instances/{a['ID']}"
    page = fresh.get(f"/changes?since={last_before}&limit=2").json()
    assert len(page["Changes"]) == 2 and page["Done"] is False
    assert fresh.get(f"/changes?since={last_before}&limit=0").json()["Done"] is False
    assert fresh.get("/changes?last").json()["Changes"][0]["ID"] == b["ID"]
    # deleting removes the rows of the deleted resources
    fresh.delete(f"/instances/{b['ID']}")
    ids = [c["ID"] for c in fresh.get(f"/changes?since={last_before}").json()["Changes"]]
    assert b["ID"] not in ids and a["ID"] in ids
    # the counter survives deletions and DELETE /changes: Last is then the highest Seq ever allocated
    assert fresh.delete("/changes").status_code == 200
    empty = fresh.get("/changes").json()
    assert empty["Changes"] == [] and empty["Last"] == last_before + 5 and empty["Done"] is True


def test_stable_events(fresh: Server, samples) -> None:
    (a,) = _load(fresh, samples, T2)
    assert fresh.get(f"/series/{a['ParentSeries']}").json()["IsStable"] is False
    deadline = time.monotonic() + 10
    kinds: list[str] = []
    while time.monotonic() < deadline:
        kinds = [c["ChangeType"] for c in fresh.get("/changes?limit=1000").json()["Changes"]]
        if "StablePatient" in kinds:
            break
        time.sleep(0.2)
    assert kinds[-3:] == ["StableSeries", "StableStudy", "StablePatient"]
    assert fresh.get(f"/patients/{a['ParentPatient']}").json()["IsStable"] is True
