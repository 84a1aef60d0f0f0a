"""Differential test of recycling and protection against Orthanc 1.10.1 (Recycle mode)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_recycling import make_instance, patient_ids
from tests.support.servers import ORTHANC, start_donjon, start_orthanc

pytestmark = pytest.mark.orthanc


def test_same_patients_survive(samples: Any) -> None:
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed (apt-get install orthanc)")
    servers = [start_orthanc({"MaximumPatientCount": 2}), start_donjon({"MaximumPatientCount": 2})]
    try:
        steps = [("store", "P1", 1), ("store", "A", 1), ("store", "P1", 2), ("store", "B", 1),
                 ("protect", "P1", 1), ("store", "C", 1), ("store", "D", 1), ("unprotect", "P1", 0),
                 ("store", "E", 1), ("store", "B", 3)]
        for action, patient, index in steps:
            answers = []
            for server in servers:
                if action == "store":
                    r = server.post("/instances", content=make_instance(samples, patient, index))
                    answers.append(r.status_code)
                else:
                    ids = {p["MainDicomTags"]["PatientID"]: p["ID"] for p in server.get("/patients?expand").json()}
                    r = server.put(f"/patients/{ids[patient]}/protected",
                                   content="1" if action == "protect" else "0")
                    answers.append(r.status_code)
            # 1.10.1 answers a full storage with 500, newer Orthanc and Donjon with 507
            assert answers[0] == answers[1] or (answers[0], answers[1]) == (500, 507), (action, patient)
            assert patient_ids(servers[0]) == patient_ids(servers[1]), (action, patient)
            s0, s1 = (s.get("/statistics").json() for s in servers)
            assert s0["CountInstances"] == s1["CountInstances"]
    finally:
        for server in servers:
            server.stop()
