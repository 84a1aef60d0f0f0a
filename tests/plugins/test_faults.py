"""A plugin that raises, answers nothing, answers badly or hangs: logged, never fatal, never blocking."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.support import SCRIPTS, variant, wait_for
from tests.support.servers import Server, start_donjon


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"Python": {"Path": str(SCRIPTS / "faulty.py"), "CallbackTimeout": 1}, "StableAge": 1})
    yield s
    s.stop()


def test_a_script_failing_at_import_is_logged_and_what_it_registered_works(server: Server) -> None:
    log = server.log()
    assert "Error in the Python script, during its installation, traceback:" in log
    assert "failure at the end of the import" in log
    assert server.get("/plugins").json() == ["explorer.js", "python"]
    assert server.get("/faulty/changes").status_code == 200


def test_rest_callback_that_raises_is_a_plugin_error(server: Server) -> None:
    r = server.get("/faulty/raise")
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 1  # ErrorCode_Plugin
    assert "Error in the Python REST callback, traceback:" in server.log()
    assert "ValueError: boom from the plugin" in server.log()
    silent = server.get("/faulty/silent")
    assert silent.status_code == 500 and "did not answer" in silent.json()["Details"]
    assert server.get("/system").status_code == 200


def test_bad_http_filter_answer_is_a_plugin_error(server: Server) -> None:
    r = server.get("/faulty/bad-filter")
    assert r.status_code == 500 and r.json()["OrthancStatus"] == 1
    assert "has not returned a Boolean" in server.log()


def test_slow_received_callback_cannot_hold_ingest(server: Server) -> None:
    started = time.monotonic()
    answer = server.post("/instances", content=variant("SLOW")).json()
    elapsed = time.monotonic() - started
    assert answer["Status"] == "Success"  # the callback's late DISCARD is ignored: kept as is
    assert elapsed < 10, elapsed  # Python.CallbackTimeout is 1 s; the callback sleeps 30 s
    assert "did not answer within 1 seconds (Python.CallbackTimeout)" in server.log()


def test_failing_ingest_callbacks_keep_the_instance(server: Server) -> None:
    for patient_id in ("RAISE", "BAD-ANSWER", "PLAIN"):
        answer = server.post("/instances", content=variant(patient_id)).json()
        assert answer["Status"] == "Success", patient_id
        assert answer["ID"] in server.get("/instances").json()
    log = server.log()
    assert "RuntimeError: received-instance failure" in log
    assert "has not returned a tuple" in log
    assert "RuntimeError: on-stored failure" in log


def test_failing_change_callback_does_not_stop_the_changes(server: Server, tmp_path: Path) -> None:
    stored = server.post("/instances", content=variant("CHANGES")).json()
    wait_for(lambda: [9, stored["ParentStudy"]] in server.get("/faulty/changes").json(), what="StableStudy")
    assert "RuntimeError: on-change failure" in server.log()


def test_a_missing_script_stops_the_start_up(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="Inexistent Python script"):
        start_donjon({"PythonScript": str(tmp_path / "missing.py")}, workdir=tmp_path)
