"""Labels (Orthanc 1.12): per-resource sets, validation, `/tools/labels`, `/tools/find`, deletion."""

from __future__ import annotations

import pytest

from tests.support.servers import Server

KNEE1 = "Knee/T1/IM-0001-0001.dcm"
DUMMY = "DummyCT.dcm"
IDS = {
    "patients": "ca29faea-b6a0e17f-067743a1-8b778011-a48b2a17",
    "studies": "0a9b3153-2512774b-2d9580de-1fc3dcf6-3bd83918",
    "series": "6de73705-c4e65c1b-9d9ea1b5-cabcd8e7-f15e4285",
    "instances": "c8df6478-d7794217-0f11c293-a41237c9-31d98357",
}
MESSAGE = ("A label must be a non-empty, alphanumeric string, possibly with '_' or '-' characters, with maximum "
           "64 characters, but got: ")


@pytest.fixture
def fresh(donjon: Server, samples) -> Server:
    donjon.wipe()
    donjon.delete("/changes")
    assert donjon.upload(samples / KNEE1).status_code == 200
    return donjon


@pytest.mark.parametrize("level", list(IDS))
def test_label_life_cycle(fresh: Server, level: str) -> None:
    base = f"/{level}/{IDS[level]}/labels"
    assert fresh.get(base).json() == []
    for label in ("zeta", "Alpha_1", "b-2", "zeta"):
        r = fresh.put(f"{base}/{label}", content=b"ignored")
        assert (r.status_code, r.content, r.headers["content-type"]) == (200, b"", "text/plain")
    assert fresh.get(base).json() == ["Alpha_1", "b-2", "zeta"]
    r = fresh.get(f"{base}/zeta")
    assert (r.status_code, r.content) == (200, b"")
    r = fresh.get(f"{base}/nothere")
    assert (r.status_code, r.json()["HttpStatus"]) == (404, 404)
    assert fresh.get(f"/{level}/{IDS[level]}").json()["Labels"] == ["Alpha_1", "b-2", "zeta"]
    assert fresh.delete(f"{base}/zeta").status_code == 200
    assert fresh.delete(f"{base}/zeta").status_code == 200  # absent: still 200
    assert fresh.get(base).json() == ["Alpha_1", "b-2"]
    kinds = {c["ChangeType"] for c in fresh.get("/changes?limit=1000").json()["Changes"]}
    assert kinds <= {"NewInstance", "NewSeries", "NewStudy", "NewPatient", "StableSeries", "StableStudy",
                     "StablePatient"}  # labels never log a change


@pytest.mark.parametrize("level", list(IDS))
def test_wrong_level_or_unknown_id(fresh: Server, level: str) -> None:
    other = IDS["patients"] if level != "patients" else IDS["instances"]
    for rid in (other, "nope"):
        for r in (fresh.get(f"/{level}/{rid}/labels"), fresh.get(f"/{level}/{rid}/labels/x"),
                  fresh.put(f"/{level}/{rid}/labels/x"), fresh.delete(f"/{level}/{rid}/labels/x")):
            assert r.status_code == 404 and r.json()["OrthancStatus"] == 17


def test_validation(fresh: Server) -> None:
    base = f"/studies/{IDS['studies']}/labels"
    assert fresh.put(f"{base}/{'a' * 64}").status_code == 200
    for bad in ("a" * 65, "with space", "dot.ted", "é", "a%2Fb"):
        for r in (fresh.put(f"{base}/{bad}"), fresh.delete(f"{base}/{bad}")):
            assert r.status_code in (400, 404), bad
            if r.status_code == 400 and bad != "a%2Fb":  # an encoded slash is refused by the router (12)
                assert r.json()["OrthancStatus"] == 3 and r.json()["Details"].startswith(MESSAGE), bad
    r = fresh.put(f"{base}/with%20space")
    assert r.json()["Details"] == MESSAGE + "with space"
    assert fresh.put(f"{base}/%00").status_code == 400  # a NUL never reaches the index
    r = fresh.put("/studies/nope/labels/bad.label")  # the label is checked before the resource
    assert r.status_code == 400
    assert fresh.get(f"{base}/with%20space").status_code == 404
    assert fresh.get(base).json() == ["a" * 64]


def test_all_labels_and_find(fresh: Server, samples) -> None:
    dummy = fresh.upload(samples / DUMMY).json()
    fresh.put(f"/studies/{IDS['studies']}/labels/knee")
    fresh.put(f"/studies/{IDS['studies']}/labels/shared")
    fresh.put(f"/studies/{dummy['ParentStudy']}/labels/shared")
    fresh.put(f"/instances/{IDS['instances']}/labels/inst")
    assert fresh.get("/tools/labels").json() == ["inst", "knee", "shared"]

    def find(labels: list[str], constraint: str = "All") -> list[str]:
        body = {"Level": "Study", "Query": {}, "Labels": labels, "LabelsConstraint": constraint}
        return sorted(fresh.post("/tools/find", json=body).json())

    both = sorted([IDS["studies"], dummy["ParentStudy"]])
    assert find(["shared"]) == both
    assert find(["shared", "knee"]) == [IDS["studies"]]
    assert find(["knee", "inst"], "Any") == [IDS["studies"]]
    assert find(["knee"], "None") == [dummy["ParentStudy"]]
    fresh.delete(f"/patients/{IDS['patients']}")
    assert fresh.get("/tools/labels").json() == ["shared"]
