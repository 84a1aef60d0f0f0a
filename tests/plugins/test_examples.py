"""The sample plugins of examples/plugins, each run unchanged as the `PythonScript` of a real Donjon."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.support import BRAINIX, EXAMPLES, dcmtk, variant, wait_for, write
from tests.support.servers import SAMPLES, Server, start_donjon

AET = "DONJON"


def start(example: str, **config: object) -> Server:
    return start_donjon({"PythonScript": str(EXAMPLES / example), "DicomAet": AET, **config})


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    s = start(*request.param[:1], **request.param[1])
    yield s
    s.stop()


@pytest.mark.parametrize("server", [("rest_statistics.py", {})], indirect=True)
def test_rest_callback_answering_computed_json(server: Server) -> None:
    for path in (BRAINIX, BRAINIX.with_name("IM-0001-0002.dcm"), SAMPLES / "SignedCT.dcm"):
        assert server.upload(path).json()["Status"] == "Success"
    r = server.get("/examples/statistics/modalities")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert r.json() == {"CT": {"Instances": 1, "Series": 1, "Studies": 1},
                        "MR": {"Instances": 2, "Series": 1, "Studies": 1}}
    assert server.get("/examples/statistics/modalities?modality=MR").json() == {
        "MR": {"Instances": 2, "Series": 1, "Studies": 1}}
    refused = server.post("/examples/statistics/modalities", content=b"")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"


@pytest.mark.parametrize("server", [("auto_anonymize.py", {"StableAge": 1})], indirect=True)
def test_on_change_callback_anonymizes_stable_studies(server: Server) -> None:
    original = server.upload(BRAINIX).json()["ParentStudy"]
    server.upload(BRAINIX.with_name("IM-0001-0002.dcm"))

    def anonymized_only() -> dict[str, object] | None:
        studies = server.get("/studies?expand").json()
        if len(studies) == 1 and studies[0].get("AnonymizedFrom") == original:
            return studies[0]
        return None
    study = wait_for(anonymized_only, timeout=60, what="the anonymized study replacing the original")
    assert study["ID"] != original
    assert study["MainDicomTags"]["StudyDescription"] == "IRM cérébrale, neuro-crâne"  # kept
    patient = server.get(f"/studies/{study['ID']}/patient").json()["MainDicomTags"]
    assert patient["PatientName"] != "BRAINIX" and patient["PatientID"] != "5Yp0E"
    assert len(server.get(f"/studies/{study['ID']}/instances").json()) == 2
    time.sleep(2.5)  # the anonymized study becomes stable in turn: it must be left alone
    assert [s["ID"] for s in server.get("/studies?expand").json()] == [study["ID"]]
    assert "Study " in server.log() and "anonymized into" in server.log()


@pytest.mark.parametrize("server", [("filter_by_aet.py", {"ExampleAcceptedAets": ["MODALITY"]})], indirect=True)
def test_incoming_filter_rejects_by_aet(server: Server, tmp_path: Path) -> None:
    path = write(tmp_path, "one.dcm", variant("FILTER-1"))
    refused = dcmtk("storescu", "-v", "-aet", "INTRUDER", "-aec", AET, "127.0.0.1", str(server.dicom_port), str(path))
    assert refused.returncode != 0 and "Status: 0x124)" in refused.stderr, refused.stderr  # Refused: not authorized
    assert server.get("/instances").json() == []
    assert "from INTRUDER refused" in server.log()
    accepted = dcmtk("storescu", "-aet", "MODALITY", "-aec", AET, "127.0.0.1", str(server.dicom_port), str(path))
    assert accepted.returncode == 0, accepted.stderr
    (instance,) = server.get("/instances").json()
    assert server.get(f"/instances/{instance}/metadata/RemoteAET").text == "MODALITY"
    assert server.upload(BRAINIX).json()["Status"] == "Success"  # the REST API is not filtered


@pytest.mark.parametrize("server", [("modify_received.py", {})], indirect=True)
def test_received_instance_callback_modifies_a_tag(server: Server, tmp_path: Path) -> None:
    modified = server.post("/instances", content=variant("MODIFY-1", PatientName="Doe^Jane")).json()
    tags = server.get(f"/instances/{modified['ID']}/simplified-tags").json()
    assert tags["InstitutionName"] == "DONJON EXAMPLE" and tags["PatientName"] == "DOE^JANE"
    kept = server.post("/instances", content=variant("KEEP-1", PatientName="Doe^John")).json()
    tags = server.get(f"/instances/{kept['ID']}/simplified-tags").json()
    assert tags["PatientName"] == "Doe^John" and tags["InstitutionName"] != "DONJON EXAMPLE"
    discarded = server.post("/instances", content=variant("DISCARD-1")).json()
    assert discarded["Status"] == "FilteredOut"
    assert sorted(server.get("/instances").json()) == sorted([modified["ID"], kept["ID"]])
    path = write(tmp_path, "cstore.dcm", variant("MODIFY-2", PatientName="Roe^Richard"))
    r = dcmtk("storescu", "-aec", AET, "127.0.0.1", str(server.dicom_port), str(path))
    assert r.returncode == 0, r.stderr
    (by_dicom,) = set(server.get("/instances").json()) - {modified["ID"], kept["ID"]}
    tags = server.get(f"/instances/{by_dicom}/simplified-tags").json()
    assert tags["PatientName"] == "ROE^RICHARD" and tags["InstitutionName"] == "DONJON EXAMPLE"
