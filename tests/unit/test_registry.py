"""The central registry: names and numbers, start-up refusals and warnings, the registry listing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from donjon.errors import OrthancError
from donjon.index.sqlite import SQLiteIndex
from donjon.registry import (
    CONTENT_TYPE_NAMES,
    METADATA_NAMES,
    RESERVED_KEYS,
    ConfigurationError,
    build_content_type_names,
    build_metadata_names,
    is_orthanc_integer,
    is_user_key,
    registry_entries,
    reservation_of,
)
from tests.support.servers import start_donjon


def test_core_names_and_numbers_are_orthancs() -> None:
    assert METADATA_NAMES == {
        1: "IndexInSeries", 2: "ReceptionDate", 3: "RemoteAET", 4: "ExpectedNumberOfInstances",
        5: "ModifiedFrom", 6: "AnonymizedFrom", 7: "LastUpdate", 8: "Origin", 9: "TransferSyntax",
        10: "SopClassUid", 11: "RemoteIP", 12: "CalledAET", 13: "HttpUsername", 14: "PixelDataOffset",
        15: "MainDicomTagsSignature", 16: "MainDicomSequences", 17: "PixelDataVR"}
    assert CONTENT_TYPE_NAMES == {1: "dicom", 2: "dicom-as-json", 3: "dicom-until-pixel-data"}


def test_seed_reservations_are_declared() -> None:
    seed = {("attachment", n) for n in (9997, 9998, 9999, 10000, 12345, 13999)} | \
        {("global-property", 5467), ("global-property", 5468), ("metadata", 4200), ("metadata", 4201)}
    for kind, number in seed:
        assert reservation_of(kind, number) is not None, (kind, number)
    assert reservation_of("attachment", 14000) is None
    assert reservation_of("metadata", 9997) is None
    assert all(1024 <= r.first <= r.last <= 65535 for r in RESERVED_KEYS)


def test_user_keys() -> None:
    assert not is_user_key(1023) and is_user_key(1024) and is_user_key(65535) and not is_user_key(65536)
    assert not is_user_key(-1)


@pytest.mark.parametrize(("text", "expected"), [
    ("12", True), ("-3", True), (" 7 ", True), ("007", True), ("+1", False), ("", False), ("-", False),
    ("1x", False), ("\u0661", False), ("\t", False),
])
def test_orthanc_integers(text: str, expected: bool) -> None:
    assert is_orthanc_integer(text) is expected


def test_lookup_rules() -> None:
    names = build_metadata_names({"Sample": 1024})
    assert names.lookup("Sample") == 1024
    assert names.lookup("RemoteAET") == 3
    assert names.lookup("1030") == 1030 and names.lookup("70000") == 70000 and names.lookup("-1") == -1
    assert names.lookup("0007") == 7
    with pytest.raises(OrthancError) as e:
        names.lookup("RemoteAet")
    assert e.value.code == 7
    for bad in (" 1", "1 ", "99999999999"):
        with pytest.raises(OrthancError) as e:
            names.lookup(bad)
        assert e.value.code == 5 and e.value.details == "Syntax error in some user-supplied data"
    assert names.name_of(1024) == "Sample" and names.name_of(1030) == "1030"


def test_mime_types() -> None:
    names = build_content_type_names({"pdf": [1025, "application/pdf"], "raw": 1026})
    assert names.mime_of(1) == "application/dicom"
    assert names.mime_of(2) == "application/json; charset=utf-8"
    assert names.mime_of(3) == "application/octet-stream"
    assert names.mime_of(1025) == "application/pdf"
    assert names.mime_of(1026) == names.mime_of(4000) == "application/octet-stream"


@pytest.mark.parametrize(("builder", "value", "message"), [
    (build_metadata_names, {"Sample": 1023}, '"Sample" = 1023 is outside 1024..65535'),
    (build_metadata_names, {"Sample": 65536}, '"Sample" = 65536 is outside'),
    (build_metadata_names, {"Sample": True}, 'the value of "Sample" is not a number'),
    (build_metadata_names, {"A": 2000, "B": 2000}, 'the number 2000 of "B" is already used by "A"'),
    (build_metadata_names, {"-12": 2000}, 'the name "-12" must not be an integer'),
    (build_metadata_names, {"Origin": 2000}, 'the name "Origin" is already in use by the core metadata 8'),
    (build_content_type_names, {"dicom": 2000}, 'the name "dicom" is already in use by the core attachment 1'),
    (build_content_type_names, {"x": [2000, 1]}, 'must be a number or [number, "mime/type"]'),
])
def test_refusals_name_the_key(builder, value, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError) as e:
        builder(value)
    assert message in str(e.value)


def test_reserved_keys_only_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="donjon.registry"):
        names = build_content_type_names({"thumbs": 10500, "mine": 20000})
        build_metadata_names({"Wsi": 4201, "Same number, other kind": 9997})
    assert names.lookup("thumbs") == 10500
    text = caplog.text
    assert "thumbs" in text and "10500" in text and "Osimis Web Viewer (reduced-quality images)" in text
    assert "Wsi" in text and "Whole-slide imaging plugin >= 1.0" in text
    assert "mine" not in text and "Same number" not in text


def test_registry_entries() -> None:
    md = build_metadata_names({"Sample": 4200})
    ct = build_content_type_names({"pdf": [1025, "application/pdf"]})
    entries = registry_entries(md, ct)
    kinds = [e["Kind"] for e in entries]
    assert kinds == sorted(kinds, key=["Metadata", "Attachment", "GlobalProperty"].index)
    at_4200 = [e for e in entries if e["Kind"] == "Metadata" and e["Number"] == 4200]
    assert {e["Owner"] for e in at_4200} == {"Configuration (UserMetadata)", "Whole-slide imaging plugin <= 0.7"}
    pdf = next(e for e in entries if e["Name"] == "pdf")
    assert pdf == {"Kind": "Attachment", "Number": 1025, "LastNumber": 1025, "Name": "pdf",
                   "Owner": "Configuration (UserContentType)", "ReadOnly": False, "MimeType": "application/pdf"}
    assert next(e for e in entries if e["Name"] == "DatabaseSchemaVersion")["ReadOnly"] is True


def test_global_properties_survive_a_restart(tmp_path: Path) -> None:
    index = SQLiteIndex(str(tmp_path / "index"), synchronous=False)
    index.write(lambda tx: tx.set_global_property(5468, "servers"))
    index.close()
    index = SQLiteIndex(str(tmp_path / "index"), synchronous=False)
    try:
        assert index.read(lambda tx: tx.global_property(5468)) == "servers"
    finally:
        index.close()


def test_server_refuses_and_warns_at_start_up() -> None:
    with pytest.raises(RuntimeError) as e:
        start_donjon({"UserMetadata": {"Origin": 1024}})
    assert '"Origin"' in str(e.value)
    with pytest.raises(RuntimeError) as e:
        start_donjon({"UserContentType": {"a": 1500, "b": 1500}})
    assert "1500" in str(e.value)
    server = start_donjon({"UserContentType": {"viewer": 9999}})
    try:
        assert server.get("/system").status_code == 200
        assert "Osimis Web Viewer (annotations)" in server.log()
    finally:
        server.stop()
