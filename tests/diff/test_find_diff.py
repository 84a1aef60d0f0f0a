"""Differential tests of /tools/find: the same queries to Orthanc 1.10.1 and Donjon, sorted answers compared."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.diff.test_resources_diff import charset_resource_ids, error_shape, normalise
from tests.faults.crafted import base_dataset, to_bytes
from tests.support.servers import Server, sample_files, start_donjon

pytestmark = pytest.mark.orthanc


@pytest.fixture(scope="module")
def pair(orthanc: Server, samples: Any) -> Iterator[tuple[Server, Server]]:
    donjon = start_donjon()
    for f in sample_files():
        data = f.read_bytes()
        orthanc.post("/instances", content=data)
        donjon.post("/instances", content=data)
    named = [_named(i, n) for i, n in enumerate(TRICKY_NAMES)]  # made once: random UIDs, the same for both
    tricky = [orthanc.post("/instances", content=data).json()["ParentPatient"] for data in named]
    for data in named:
        donjon.post("/instances", content=data)
    yield orthanc, donjon
    donjon.stop()
    for patient in tricky:  # the session's Orthanc goes back to the samples alone, as other modules expect
        orthanc.delete(f"/patients/{patient}")


# Patient names holding what SQL patterns treat specially (LIKE's % _ \\, GLOB's [ ]): the index
# settles case-insensitive constraints alone (core/find.py), so its patterns must match exactly these.
TRICKY_NAMES = ["100%^PURE", "A_B^C", "AXB^C", "[X]^Y", "X^Y", "smith^john", "Ab?c", "ABZC", "O'BRIEN",
                "Café^Crème", "CAFE^CREME"]


def _named(index: int, name: str) -> bytes:
    ds = base_dataset(f"TRICKY{index}")
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = name
    ds.StudyDate = f"2011010{index % 10}"
    return to_bytes(ds)


TRICKY_QUERIES: list[dict[str, Any]] = [
    {"Level": level, "Query": {"PatientName": pattern}}
    for level in ("Patient", "Study")
    for pattern in ("100%*", "100*", "*%*", "A_B*", "A?B*", "*_*", "[X]*", "[X]^Y", "X^Y", "*]*", "SMITH*",
                    "smith^J*", "AB?C", "Ab?c", "*?C", "O'*", "café*", "CAFÉ*", "CAFE*", "*\\*")
] + [{"Level": "Study", "Query": {"PatientName": "*", "StudyDate": "20110102-20110105"}},
     {"Level": "Study", "Query": {"PatientName": "a*", "StudyDate": "-20110103"}},
     {"Level": "Study", "Query": {"PatientName": "ab?c", "StudyDate": "20110106"}, "CaseSensitive": True},
     {"Level": "Study", "Query": {"PatientName": "Ab?c"}, "CaseSensitive": True},
     {"Level": "Study", "Query": {"PatientName": "A_B^C\\X^Y"}},
     {"Level": "Study", "Query": {"PatientID": "TRICKY1\\TRICKY2", "PatientName": "A*"}}]


QUERIES: list[dict[str, Any]] = [
    {"Level": "Patient", "Query": {}},
    {"Level": "Patient", "Query": {"PatientName": "KNEE"}},
    {"Level": "Patient", "Query": {"PatientName": "knee"}},
    {"Level": "Patient", "Query": {"PatientName": "knee"}, "CaseSensitive": True},
    {"Level": "Patient", "Query": {"PatientName": "K*"}},
    {"Level": "Patient", "Query": {"PatientName": "*NI*"}},
    {"Level": "Patient", "Query": {"PatientName": "?NEE"}},
    {"Level": "Patient", "Query": {"PatientName": "Test-*"}},
    {"Level": "Patient", "Query": {"PatientName": "test-e*"}},
    {"Level": "Patient", "Query": {"PatientID": "887\\COMMON"}},
    {"Level": "Patient", "Query": {"PatientSex": "M"}},
    {"Level": "Patient", "Query": {"PatientBirthDate": "19000101-19500101"}},
    {"Level": "Patient", "Query": {"PatientBirthDate": "-19450101"}},
    {"Level": "Patient", "Query": {"PatientBirthDate": "19800101-"}},
    {"Level": "Study", "Query": {}},
    {"Level": "Study", "Query": {"PatientName": "B*"}},
    {"Level": "Study", "Query": {"StudyDate": "20000101-20100101"}},
    {"Level": "Study", "Query": {"StudyDate": "20080822"}},
    {"Level": "Study", "Query": {"StudyDescription": "*knee*"}},
    {"Level": "Study", "Query": {"AccessionNumber": "*"}},
    {"Level": "Study", "Query": {"ModalitiesInStudy": "MR"}},
    {"Level": "Study", "Query": {"ModalitiesInStudy": "CT\\PT"}},
    {"Level": "Study", "Query": {"PatientID": "887", "StudyDate": "2008*"}},
    {"Level": "Study", "Query": {"InstitutionName": "*"}},
    {"Level": "Study", "Query": {"StudyInstanceUID": "1.2.840.113619.2.176.2025.1499492.7391.1171285944.390"}},
    {"Level": "Series", "Query": {"Modality": "MR"}},
    {"Level": "Series", "Query": {"Modality": "mr"}},
    {"Level": "Series", "Query": {"Modality": "CT\\MR", "PatientName": "K*"}},
    {"Level": "Series", "Query": {"SeriesDescription": "*T1*"}},
    {"Level": "Series", "Query": {"BodyPartExamined": "KNEE"}},
    {"Level": "Series", "Query": {"SeriesDate": "20080101-"}},
    {"Level": "Instance", "Query": {"InstanceNumber": "1"}},
    {"Level": "Instance", "Query": {"PatientName": "KNEE", "InstanceNumber": "5"}},
    {"Level": "Instance", "Query": {"SOPInstanceUID": "*"}},
    {"Level": "Instance", "Query": {"ImageComments": "*"}},
    {"Level": "Instance", "Query": {"Modality": "CT"}},
    {"Level": "Instance", "Query": {"StudyDate": "20080822"}},
    {"Level": "Instance", "Query": {"Rows": "512"}},
    {"Level": "Series", "Query": {"Rows": "512"}},
    {"Level": "Study", "Query": {"Modality": "MR"}},
    {"Level": "Instances", "Query": {"PatientName": "KNIX"}},
    {"Level": "studies", "Query": {"PatientName": "KNIX"}},
    {"Level": "Patient", "Query": {"0010,0010": "KNEE"}},
    {"Level": "Patient", "Query": {"00100010": "KNEE"}},
]


@pytest.mark.parametrize("query", QUERIES + TRICKY_QUERIES,
                         ids=lambda q: f"{q['Level']}-{sorted(q['Query'].items())}-{q.get('CaseSensitive', False)}")
def test_find_ids_match(pair: tuple[Server, Server], query: dict[str, Any]) -> None:
    orthanc, donjon = pair
    a = orthanc.post("/tools/find", json=query)
    b = donjon.post("/tools/find", json=query)
    assert a.status_code == b.status_code, (a.text, b.text)
    assert sorted(a.json()) == sorted(b.json())


@pytest.mark.parametrize("query", QUERIES[:20], ids=lambda q: f"{q['Level']}-{sorted(q['Query'].items())}")
def test_find_expand_matches(pair: tuple[Server, Server], query: dict[str, Any]) -> None:
    orthanc, donjon = pair
    q = {**query, "Expand": True}
    a = sorted(normalise(orthanc.post("/tools/find", json=q).json()), key=lambda r: r["ID"])
    b = sorted(normalise(donjon.post("/tools/find", json=q).json()), key=lambda r: r["ID"])
    assert [r["ID"] for r in a] == [r["ID"] for r in b]
    skip = charset_resource_ids()
    for ra, rb in zip(a, b, strict=True):
        if ra["ID"] not in skip:
            assert ra == rb


def test_find_since_limit_counts_match(pair: tuple[Server, Server]) -> None:
    orthanc, donjon = pair
    for since, limit in ((0, 5), (3, 4), (100, 10), (0, 0), (180, 50)):
        q = {"Level": "Instance", "Query": {}, "Since": since, "Limit": limit}
        assert len(orthanc.post("/tools/find", json=q).json()) == len(donjon.post("/tools/find", json=q).json())


@pytest.mark.parametrize("body", [
    "not json",
    "[]",
    '{"Level": "Instance", "Query": {"SOPInstanceUID": "*"}}',
    '{"Level": "Series", "Query": {"SeriesNumber": "1*"}}',
    '{"Query": {}}',
    '{"Level": 3, "Query": {}}',
    '{"Level": "Nope", "Query": {}}',
    '{"Level": "Study"}',
    '{"Level": "Study", "Query": {"PatientName": 3}}',
    '{"Level": "Study", "Query": {"StudyDate": "2006*"}}',
    '{"Level": "Study", "Query": {}, "Limit": -1}',
    '{"Level": "Study", "Query": {}, "Limit": "3"}',
])
def test_find_errors_match(pair: tuple[Server, Server], body: str) -> None:
    orthanc, donjon = pair
    a = orthanc.post("/tools/find", content=body)
    b = donjon.post("/tools/find", content=body)
    assert error_shape(a) == error_shape(b)


@pytest.mark.parametrize("body", ['{"Level": "Study", "Query": []}', '{"Level": "Study", "Query": {}, "Expand": "yes"}'])
def test_find_client_errors_are_400_where_orthanc_answers_500(pair: tuple[Server, Server], body: str) -> None:
    """A deliberate improvement: Orthanc 1.10.1 answers these client mistakes with 500."""
    orthanc, donjon = pair
    assert orthanc.post("/tools/find", content=body).status_code == 500
    b = donjon.post("/tools/find", content=body)
    assert b.status_code == 400
    assert b.json()["OrthancStatus"] == 8
