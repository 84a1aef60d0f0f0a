"""The REST API called back in-process from every ingest callback, a store inside a store, and slow
callbacks held to `Python.CallbackTimeout`: no deadlock, and ingest never waits longer than the limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.support import SCRIPTS, dcmtk, variant, wait_for, write
from tests.support.servers import Server, start_donjon

AET = "DONJON"
TIMEOUT = 2


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"PythonScript": str(SCRIPTS / "reentrant.py"), "Python": {"CallbackTimeout": TIMEOUT},
                      "DicomAet": AET, "DicomAlwaysAllowStore": True})
    yield s
    s.stop()


def log(server: Server) -> list[list[Any]]:
    r = server.get("/reentrant/log")
    assert r.status_code == 200
    return r.json()


def test_a_store_inside_the_stored_callback(server: Server) -> None:
    start = time.monotonic()
    r = server.post("/instances", content=variant("NESTED"))
    assert r.status_code == 200 and r.json()["Status"] == "Success"
    assert time.monotonic() - start < TIMEOUT  # nothing waited for a timeout: no deadlock
    parent = r.json()["ID"]
    entries = wait_for(lambda: [e for e in log(server) if e[0] == "nested-metadata"] and log(server),
                       what="the nested calls")
    assert ["stored", "NESTED", True] in entries and ["stored", "NESTED-CHILD", True] in entries
    [nested] = [e for e in entries if e[0] == "nested-store"]
    assert nested[1] == "Success"
    child = nested[2]
    assert server.get(f"/instances/{child}/simplified-tags").json()["PatientID"] == "NESTED-CHILD"
    assert server.get(f"/instances/{child}/metadata/Origin").text == "Plugins"
    assert server.get(f"/instances/{parent}/metadata/Origin").text == "RestApi"
    assert server.get(f"/instances/{parent}/metadata/1024").text == "set from the stored callback"
    assert ["nested-metadata", "set from the stored callback"] in entries
    # the received callback read /statistics for both, the change callback the tags of both
    assert [e[1] for e in entries if e[0] == "received"][:2] == [3, 4]  # InstanceOrigin REST_API, PLUGIN
    wait_for(lambda: {"NESTED", "NESTED-CHILD"} <= {e[1] for e in log(server) if e[0] == "change"},
             what="the change callbacks")


def test_rest_calls_from_the_cstore_filter(server: Server, tmp_path: Path) -> None:
    before = len(server.get("/instances").json())
    path = write(tmp_path, "cstore.dcm", variant("CSTORE"))
    start = time.monotonic()
    done = dcmtk("storescu", "-aet", "REENTRANT", "-aec", AET, "127.0.0.1", str(server.dicom_port), str(path))
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < TIMEOUT + 5
    entries = log(server)
    assert ["cstore-filter", "REENTRANT", before] in entries
    assert ["received", 2, before] in entries  # InstanceOrigin.DICOM_PROTOCOL, the count before the store
    assert ["stored", "CSTORE", True] in entries


def test_a_slow_stored_callback_holds_ingest_for_the_limit_only(server: Server) -> None:
    start = time.monotonic()
    r = server.post("/instances", content=variant("SLOW"))
    elapsed = time.monotonic() - start
    assert r.status_code == 200 and r.json()["Status"] == "Success"
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + 3, elapsed
    assert "The Python on-stored-instance callback did not answer within 2 seconds" in server.log()
    assert server.get("/system").status_code == 200


def test_a_slow_http_filter_is_cut_at_the_limit(server: Server) -> None:
    start = time.monotonic()
    r = server.get("/reentrant/slow")
    elapsed = time.monotonic() - start
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 1, r.text  # Orthanc's Plugin error
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + 3, elapsed
    start = time.monotonic()
    assert server.get("/system").status_code == 200 and time.monotonic() - start < 1
