"""Never a 5xx for a client's mistake: every POST/PUT route with hostile bodies, bad arguments, tricks
in paths; every error answer carries Orthanc's JSON body, a JSON type and `nosniff`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from donjon.api import build_router
from tests.faults.support import MB, alive, assert_error, peak_rss, reset_peak_rss
from tests.support.servers import SAMPLES, Server, start_donjon

# routes whose side effects would end the test (they are exercised elsewhere)
_SKIPPED = {"/tools/shutdown", "/tools/reset"}
_DEEP = b"[" * 100_000 + b"]" * 100_000
_BODIES = [_DEEP, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"[]", b'"text"', b"123", b"null", b"true",
           b'{"Level": 5, "Query": [], "Replace": "x", "Tags": 1, "Resources": {}, "Expand": "x"}',
           b"\x00\xff garbage \x80", b"{broken"]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"StableAge": 1000})
    s.upload(SAMPLES / "DummyCT.dcm")
    yield s
    s.stop()


def _ids(server: Server) -> dict[str, str]:
    instance = server.get("/instances").json()[0]
    info = server.get(f"/instances/{instance}").json()
    series = server.get(f"/series/{info['ParentSeries']}").json()
    study = server.get(f"/studies/{series['ParentStudy']}").json()
    return {"instances": instance, "series": info["ParentSeries"], "studies": series["ParentStudy"],
            "patients": study["ParentPatient"]}


def _concrete(pattern: str, ids: dict[str, str]) -> str:
    parts = [p for p in pattern.split("/") if p]
    out: list[str] = []
    for i, part in enumerate(parts):
        if part.startswith("{"):
            previous = parts[i - 1] if i else ""
            out.append(ids.get(previous, "nope"))
        else:
            out.append(part)
    return "/" + "/".join(out)


def _routes(methods: set[str]) -> list[tuple[str, str]]:
    return sorted({(m, p) for m, p in build_router().patterns if m in methods and p not in _SKIPPED})


def test_every_route_with_hostile_bodies(server: Server) -> None:
    ids = _ids(server)
    routes = _routes({"POST", "PUT"})
    assert len(routes) > 40
    failures = []
    for method, pattern in routes:
        url = _concrete(pattern, ids)
        for body in _BODIES:
            r = server.client.request(method, url, content=body, timeout=30)
            if r.status_code >= 500:
                failures.append((method, pattern, body[:30], r.status_code, r.text[:200]))
            elif r.status_code >= 400:
                assert_error(r, r.status_code)
    assert not failures, failures
    assert alive(server)
    assert server.get(f"/instances/{ids['instances']}").status_code == 200


def test_every_route_with_unknown_ids_and_wrong_methods(server: Server) -> None:
    failures = []
    for method, pattern in sorted(set(build_router().patterns)):
        if "{" not in pattern or pattern in _SKIPPED:
            continue
        url = re.sub(r"\{[^}]+\}", "0123-nope", pattern)
        r = server.client.request(method, url, content=b"{}", timeout=30)
        if r.status_code >= 500:
            failures.append((method, pattern, r.status_code, r.text[:200]))
        elif r.status_code >= 400:
            assert_error(r, r.status_code)
    assert not failures, failures
    for method in ("PATCH", "OPTIONS", "PROPFIND"):
        assert_error(server.client.request(method, "/instances"), 405, 400)
    body = assert_error(server.put("/system", content=b"{}"), 405)
    assert body["HttpError"] == "Method Not Allowed"


@pytest.mark.parametrize("query", ["since=-1&limit=1", "since=x&limit=1", "since=0&limit=-5",
                                   "since=0&limit=99999999999999999999", "since=1e3&limit=1",
                                   "since=0&limit=" + "9" * 500, "since=%00&limit=1", "since=0"])
def test_bad_since_and_limit(server: Server, query: str) -> None:
    for route in ("/patients", "/studies", "/series", "/instances"):
        assert_error(server.get(f"{route}?{query}"), 400)
    if query != "since=0":
        assert_error(server.get(f"/changes?{query}"), 400)
        assert_error(server.get(f"/exports?{query}"), 400)


def test_tricks_in_paths(server: Server) -> None:
    ids = _ids(server)
    instance = ids["instances"]
    before = {p for p in server.workdir.rglob("*") if "storage" not in p.parts}
    # a NUL byte truncated the path in Orthanc 1.10.1: DELETE .../{id}%00.dcm deleted the instance
    assert_error(server.delete(f"/instances/{instance}%00.dcm"), 400)
    assert_error(server.delete(f"/instances/{instance}%2F"), 400)
    assert_error(server.get(f"/instances/{instance}%2Fstudy"), 400)
    assert_error(server.get(f"/instances/{instance}%5Cstudy"), 400)
    assert server.get(f"/instances/{instance}").status_code == 200
    for name in ("..%2F..%2Findex", "%2e%2e", "a%00b", "%2e%2e%2F%2e%2e%2Fconfig.json", "CON", "a" * 5000):
        for kind in ("metadata", "attachments"):
            r = server.put(f"/instances/{instance}/{kind}/{name}", content=b"x")
            assert r.status_code in (400, 403, 404, 405, 414), (kind, name, r.status_code)
            if r.status_code != 414:
                assert_error(r, r.status_code)
            r = server.get(f"/instances/{instance}/{kind}/{name}")
            assert r.status_code in (400, 404, 405, 414), (kind, name, r.status_code)
    for path in ("/app/../../../etc/passwd", "/app/..%2F..%2Fconfig.json", "/app/%2e%2e/%2e%2e/config.json",
                 "/app/js%00.js", "/app/explorer.html%00.png", "/app/..\\..\\config.json", "/app//etc/passwd"):
        r = server.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert_error(r, r.status_code)
        assert b"StorageDirectory" not in r.content and b"root:" not in r.content
    outside = {p for p in server.workdir.rglob("*") if "storage" not in p.parts}
    assert outside == before, outside ^ before  # nothing written outside the storage folder
    assert alive(server)


def test_unknown_tags_and_wrong_types(server: Server) -> None:
    instance = _ids(server)["instances"]
    assert_error(server.post(f"/instances/{instance}/modify", json={"Replace": {"NoSuchTag": "x"}}), 400)
    assert_error(server.post(f"/instances/{instance}/anonymize", json={"Keep": ["NoSuchTag"]}), 400)
    assert_error(server.post("/tools/find", json={"Level": "Study", "Query": {"NoSuchTag": "x"}}), 400)
    assert_error(server.post("/tools/find", json={"Level": "Study", "Query": {"PatientName": 5}}), 400)
    assert_error(server.post("/tools/find", json={"Level": "Nope", "Query": {}}), 400)
    assert_error(server.post("/tools/find", json={"Level": "Study", "Query": {}, "Limit": -1}), 400)
    assert_error(server.post("/tools/find", json={"Level": "Study", "Query": {}, "Since": "x"}), 400)


def test_wildcards_cannot_backtrack(server: Server) -> None:
    """`A*A*...B` against a long run of A took 90 s per resource with a regular expression."""
    from tests.faults.crafted import base_dataset, to_bytes

    ds = base_dataset(patient="REDOS")
    ds.PatientName = "A" * 60
    ds.StudyDescription = "A" * 60
    assert server.post("/instances", content=to_bytes(ds)).status_code == 200
    for level, tag in (("Patient", "PatientName"), ("Study", "StudyDescription")):
        start = time.monotonic()
        r = server.post("/tools/find", json={"Level": level, "Query": {tag: "A*" * 20 + "B"}})
        assert r.status_code == 200 and r.json() == []
        assert time.monotonic() - start < 5
    r = server.post("/tools/find", json={"Level": "Patient", "Query": {"PatientName": "A*" * 20 + "A"}})
    assert len(r.json()) == 1


def test_json_depth_limit(server: Server) -> None:
    before = reset_peak_rss(server)
    for depth in (300, 100_000):  # under orjson's own limit (1024) and far over it
        body = b'{"Level": "Study", "Query": {}, "x": ' + b"[" * depth + b"]" * depth + b"}"
        details = assert_error(server.post("/tools/find", content=body), 400)["Details"]
        assert "nested deeper than 256" in details, details
    for _ in range(10):  # the same, repeated, and as an object: no memory kept nor spent
        assert_error(server.post("/tools/find", content=b'{"a":' * 100_000 + b"1" + b"}" * 100_000), 400)
    assert peak_rss(server) - before < 16 * MB, (peak_rss(server) - before) // MB
    fine = b'{"Level": "Study", "Query": {}, "x": ' + b"[" * 200 + b"]" * 200 + b"}"
    assert server.post("/tools/find", content=fine).status_code == 200
