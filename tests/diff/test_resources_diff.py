"""Differential tests: the same requests to Orthanc 1.10.1 and to Donjon, normalised answers compared.

Deliberate differences (each one is asserted separately in tests/api):
* Donjon follows newer Orthanc where it behaves better: `Labels` in resource JSON, `IsProtected` in
  patients' JSON, `expand=false`
  honoured, `/system` with the mainline fields.
* Character sets: Donjon decodes ISO 2022 escape sequences inside a value (sample SCSH32, whose kanji
  part Orthanc 1.10.1 leaves undecoded), and does not turn the backslash of ASCII-only VRs into a
  Yen sign under ISO_IR 13 (sample ISO_IR13.dcm), which would break multi-valued DS/IS values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from donjon.dicom.parse import parse_instance
from tests.support.error_bodies import as_orthanc_1_10
from tests.support.json_shapes import without_keys
from tests.support.servers import SAMPLES, Server, sample_files, start_donjon

pytestmark = pytest.mark.orthanc

NEWER_FIELDS = {"Labels", "IsProtected"}  # Orthanc 1.12+
VOLATILE = {"LastUpdate", "IsStable", "FileUuid", *NEWER_FIELDS}
# resources whose tag values differ on purpose (see the module docstring)
CHARSET_DIFFERENCES = {"H32EXAMPLE", "fa3f0738-9979-4df6-a6fb-f0ff170e599c"}
CHARSET_FILES = ("Encodings/DavidClunie/SCSH32", "Encodings/ISO_IR13.dcm")


def charset_resource_ids() -> set[str]:
    """Orthanc ids of every resource created by the files with deliberate charset differences."""
    out: set[str] = set()
    for name in CHARSET_FILES:
        ids = parse_instance((SAMPLES / name).read_bytes()).ids
        out.update(ids.as_tuple())
    return out


def normalise(value: Any) -> Any:
    return without_keys(value, VOLATILE)


def error_shape(r: Any) -> tuple[int, Any]:
    if not r.content:
        return r.status_code, None
    body = r.json()
    if isinstance(body, dict) and "OrthancStatus" in body:
        return r.status_code, {k: body[k] for k in ("HttpError", "HttpStatus", "Message", "Method",
                                                     "OrthancError", "OrthancStatus", "Uri")}
    return r.status_code, "ok"


@pytest.fixture(scope="module")
def pair(orthanc: Server, samples: Any) -> Iterator[tuple[Server, Server]]:
    donjon = start_donjon()
    files = sample_files()
    answers = []
    for f in files:
        data = f.read_bytes()
        answers.append((f.name, orthanc.post("/instances", content=data), donjon.post("/instances", content=data)))
    donjon.upload_answers = answers  # type: ignore[attr-defined]
    yield orthanc, donjon
    donjon.stop()


def _skip_charset(resource: dict[str, Any]) -> bool:
    return resource["ID"] in charset_resource_ids()


def test_upload_answers_match(pair: tuple[Server, Server]) -> None:
    _, donjon = pair
    for name, a, b in donjon.upload_answers:  # type: ignore[attr-defined]
        assert a.status_code == b.status_code, name
        if a.status_code == 200:
            ja, jb = a.json(), b.json()
            # a second upload of the same instance by the orthanc fixture (shared) is AlreadyStored
            ja.pop("Status"), jb.pop("Status")
            assert ja == jb, name
        else:
            assert error_shape(a) == error_shape(as_orthanc_1_10(a, b)), name


def test_statistics_match(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    assert orthanc.get("/statistics").json() == donjon.get("/statistics").json()


@pytest.mark.parametrize("level", ["patients", "studies", "series", "instances"])
def test_listing_and_resources_match(pair: tuple[Server, Server], level: str) -> None:
    orthanc, donjon = pair
    ids_o = orthanc.get(f"/{level}").json()
    ids_d = donjon.get(f"/{level}").json()
    assert sorted(ids_o) == sorted(ids_d)
    expanded_o = {r["ID"]: r for r in orthanc.get(f"/{level}?expand").json()}
    expanded_d = {r["ID"]: r for r in donjon.get(f"/{level}?expand").json()}
    assert expanded_o.keys() == expanded_d.keys()
    for rid in ids_o:
        a, b = expanded_o[rid], expanded_d[rid]
        assert set(b) - set(a) <= NEWER_FIELDS, rid
        assert set(a) - set(b) == set(), rid
        if _skip_charset(a):
            continue
        assert normalise(a) == normalise(b), rid
        one_o = orthanc.get(f"/{level}/{rid}").json()
        one_d = donjon.get(f"/{level}/{rid}").json()
        assert normalise(one_o) == normalise(one_d), rid


@pytest.mark.parametrize("fmt", ["short", "full"])
def test_tag_formats_match(pair: tuple[Server, Server], fmt: str) -> None:
    orthanc, donjon = pair
    for level in ("patients", "studies", "series", "instances"):
        a = {r["ID"]: r for r in orthanc.get(f"/{level}?expand&{fmt}").json()}
        b = {r["ID"]: r for r in donjon.get(f"/{level}?expand&{fmt}").json()}
        for rid, ra in a.items():
            if _skip_charset(ra):
                continue
            assert normalise(ra)["MainDicomTags"] == normalise(b[rid])["MainDicomTags"], rid


def test_child_and_parent_routes_match(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    routes = {"patients": ["studies", "series", "instances"], "studies": ["series", "instances", "patient"],
              "series": ["instances", "study", "patient"], "instances": ["series", "study", "patient"]}
    for level, subs in routes.items():
        for rid in orthanc.get(f"/{level}").json()[:6]:
            for sub in subs:
                a = orthanc.get(f"/{level}/{rid}/{sub}")
                b = donjon.get(f"/{level}/{rid}/{sub}")
                assert a.status_code == b.status_code == 200
                ja, jb = normalise(a.json()), normalise(b.json())
                if isinstance(ja, list):
                    ja = sorted(ja, key=lambda r: r["ID"])
                    jb = sorted(jb, key=lambda r: r["ID"])
                assert ja == jb, (level, sub, rid)


def test_statistics_of_resources_match(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    for level in ("patients", "studies", "series", "instances"):
        for rid in orthanc.get(f"/{level}").json()[:8]:
            a = orthanc.get(f"/{level}/{rid}/statistics")
            b = donjon.get(f"/{level}/{rid}/statistics")
            assert a.status_code == b.status_code
            if a.status_code == 200:
                assert a.json() == b.json(), (level, rid)


def test_listing_windows_match(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    for query in ("since=0&limit=3", "since=2&limit=5", "since=1000&limit=2", "since=0&limit=0"):
        a = orthanc.get(f"/instances?{query}")
        b = donjon.get(f"/instances?{query}")
        assert a.status_code == b.status_code == 200
        assert len(a.json()) == len(b.json()), query
    for query in ("since=1", "limit=3", "since=abc&limit=2", "since=0&limit=99999999999999999999"):
        a = orthanc.get(f"/patients?{query}")
        b = donjon.get(f"/patients?{query}")
        assert error_shape(a) == error_shape(as_orthanc_1_10(a, b)), query


UNKNOWN = "00000000-00000000-00000000-00000000-00000000"


@pytest.mark.parametrize("path", [
    f"/patients/{UNKNOWN}", f"/studies/{UNKNOWN}", f"/series/{UNKNOWN}", f"/instances/{UNKNOWN}",
    f"/instances/{UNKNOWN}/file", f"/patients/{UNKNOWN}/studies", f"/studies/{UNKNOWN}/patient",
    f"/series/{UNKNOWN}/statistics", "/nonexistent", "/patients/x/y/z", "/tools/generate-uid",
    "/tools/generate-uid?level=bad",
])
def test_unknown_resources_match(pair: tuple[Server, Server], path: str) -> None:
    orthanc, donjon = pair
    a = orthanc.get(path)
    assert error_shape(a) == error_shape(as_orthanc_1_10(a, donjon.get(path)))


def test_wrong_level_is_404_like_orthanc(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    patient = orthanc.get("/patients").json()[0]
    for path in (f"/studies/{patient}", f"/instances/{patient}", f"/series/{patient}/study"):
        a = orthanc.get(path)
    assert error_shape(a) == error_shape(as_orthanc_1_10(a, donjon.get(path))), path


def test_children_of_an_id_of_another_level_is_404(pair: tuple[Server, Server]) -> None:
    """Deliberate: Orthanc 1.10.1 answers 200 [] here, which hides the caller's mistake."""
    orthanc, donjon = pair
    patient = orthanc.get("/patients").json()[0]
    assert orthanc.get(f"/series/{patient}/instances").json() == []
    r = donjon.get(f"/series/{patient}/instances")
    assert r.status_code == 404
    assert r.json()["OrthancStatus"] == 17


@pytest.mark.parametrize("method,path", [
    ("PUT", "/patients"), ("DELETE", "/system"), ("POST", "/statistics"), ("PUT", "/tools/find"),
    ("GET", "/tools/find"), ("GET", "/tools/lookup"),
])
def test_method_not_allowed_match(pair: tuple[Server, Server], method: str, path: str) -> None:
    orthanc, donjon = pair
    a = orthanc.client.request(method, path)
    b = donjon.client.request(method, path)
    assert a.status_code == b.status_code == 405
    assert sorted(a.headers["allow"].split(",")) == sorted(b.headers["allow"].split(","))


def test_lookup_matches(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    for value in ("887", "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390", "COMMON", "nothing",
                  "1.3.46.670589.11.0.0.11.4.2.0.8743.5.5396.2006120114314079549", ""):
        a = orthanc.post("/tools/lookup", content=value)
        b = donjon.post("/tools/lookup", content=value)
        assert a.status_code == b.status_code
        assert sorted(a.json(), key=lambda x: x["ID"]) == sorted(b.json(), key=lambda x: x["ID"]), value
