"""The one-statement store of the PostgreSQL index (index/store_postgres.sql) against the general path.

Three real servers receive the same uploads: one on SQLite, one on PostgreSQL taking the
one-statement path, one on PostgreSQL forced onto the general path (a patient limit makes every
store go through recycling). Everything a client can see of what the stores recorded must be the
same, dates and file uuids aside.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from tests.support.json_shapes import without_keys
from tests.support.postgres import pg_bin_dir, shared_cluster
from tests.support.servers import Server, sample_files, start_donjon

pytestmark = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL server binaries are missing "
                                                             "(apt-get install postgresql)")

_DATES = {"LastUpdate", "ReceptionDate", "Date", "FileUuid"}


def _seen(server: Server) -> dict[str, Any]:
    instances = sorted(server.get("/instances").json())
    return without_keys({
        "statistics": server.get("/statistics").json(),
        "patients": server.get("/patients?expand").json(),
        "studies": server.get("/studies?expand").json(),
        "series": server.get("/series?expand").json(),
        "instances": server.get("/instances?expand").json(),
        "metadata": {i: server.get(f"/instances/{i}/metadata?expand").json() for i in instances},
        "series metadata": {s: server.get(f"/series/{s}/metadata?expand").json()
                            for s in sorted(server.get("/series").json())},
        "attachments": {i: server.get(f"/instances/{i}/attachments?full").json() for i in instances},
        "changes": [(c["ChangeType"], c["ResourceType"], c["ID"])
                    for c in server.get("/changes?limit=100000").json()["Changes"]],
        "find": [server.post("/tools/find", json={"Level": level, "Query": query}).json()
                 for level, query in (("Study", {"PatientName": "*"}), ("Series", {"Modality": "M*"}),
                                      ("Study", {"StudyDate": "19000101-20991231"}),
                                      ("Instance", {"SOPInstanceUID": "*"}))],
    }, _DATES)


@pytest.mark.parametrize("compression", [False, True], ids=["plain", "compressed"])
def test_one_statement_store_records_what_the_general_path_records(compression: bool) -> None:
    cluster = shared_cluster()
    suffix = f"{os.getpid()}_{time.monotonic_ns()}"
    # no Stable* change while the three servers are fed one after the other; with compression each
    # instance with pixel data has two attachments (the file and its header)
    quiet = {"StableAge": 3600, "StorageCompression": compression}
    servers = {
        "sqlite": start_donjon({**quiet, "PostgreSQL": {"EnableIndex": False}}),
        "one statement": start_donjon({**quiet, "PostgreSQL": cluster.section(cluster.create_database(f"fast_{suffix}"))}),
        "general": start_donjon({**quiet, "PostgreSQL": cluster.section(cluster.create_database(f"general_{suffix}")),
                                 "MaximumPatientCount": 100000}),
    }
    try:
        files = sample_files()
        answers: dict[str, list[Any]] = {name: [] for name in servers}
        for f in [*files, files[0], files[-1]]:  # the last two: AlreadyStored
            data = f.read_bytes()
            for name, server in servers.items():
                r = server.post("/instances", content=data)
                answers[name].append((r.status_code, r.json()))
        assert answers["one statement"] == answers["sqlite"] == answers["general"]
        stored = [a for code, a in answers["sqlite"] if code == 200 and isinstance(a, dict)]
        assert sum(a["Status"] == "Success" for a in stored) >= 10
        assert [a["Status"] for a in stored[-2:]] == ["AlreadyStored", "AlreadyStored"]
        seen = {name: _seen(server) for name, server in servers.items()}
        if compression:  # the one-statement path wrote two attachment records for some instances
            assert any("dicom-until-pixel-data" in a for a in seen["one statement"]["attachments"].values())
        for key, expected in seen["sqlite"].items():
            for name in ("one statement", "general"):
                got = seen[name][key]
                if got != expected and isinstance(got, list):
                    first = next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
                                 min(len(got), len(expected)))
                    pytest.fail(f"{name}, {key}[{first}]: {got[first:first + 3]} != {expected[first:first + 3]}")
                assert got == expected, (name, key)
    finally:
        for server in servers.values():
            server.stop()
