"""Unit tests of Orthanc's DICOM-as-JSON, raw content and frame count (donjon.dicom.json_tags).

Expected values were observed on Orthanc 1.10.1 (tests/diff/test_tags_diff.py compares every sample).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from donjon.core.views import TagFormat
from donjon.dicom import dcmtk_names, json_tags, tag_dictionary
from donjon.dicom.json_tags import Charset, detect_charset, format_numbers
from donjon.dicom.tag_dictionary import parse_tag, tag_name
from donjon.errors import ErrorCode, OrthancError

ROOT = Path(__file__).resolve().parents[2]
DICTIONARY = Path("/usr/share/libdcmtk17/dicom.dic")


@pytest.fixture(scope="module")
def dicom(samples: Path):  # type: ignore[no-untyped-def]
    """Bytes of a sample file, read from the shared folder."""
    def read(name: str) -> bytes:
        return (samples / name).read_bytes()
    return read


def full(data: bytes, whole: bool = False) -> dict:  # type: ignore[type-arg]
    return json_tags.convert(data, TagFormat.FULL, whole=whole)


# -- dictionary ---------------------------------------------------------------------------------------


def test_names_are_dcmtk_names() -> None:
    assert tag_name(0x00100010) == "PatientName"
    assert tag_name(0x00080040) == "RETIRED_DataSetType"  # pydicom: DataSetType
    assert tag_name(0x00101000) == "OtherPatientIDs"  # patched by Orthanc (DCMTK: RETIRED_...)
    assert tag_name(0x00080000) == "GenericGroupLength"
    assert tag_name(0x00090010) == "PrivateCreator"
    assert tag_name(0x60003000) == "OverlayData" and tag_name(0x60023000) == "OverlayData"
    assert tag_name(0x60013000) == json_tags.UNKNOWN_NAME  # DCMTK's plain ranges are even groups only
    assert tag_name(0x00091010) == json_tags.UNKNOWN_NAME  # private, no creator


def test_private_names_need_their_creator() -> None:
    assert tag_name(0x00091011, "GEMS_GENIE_1") == "StudyFlags"
    assert tag_name(0x00092011, "GEMS_GENIE_1") == "StudyFlags"  # any block of the group
    assert tag_name(0x00191014, "GEMS_ACQU_01") == "EndNumberForBaseline"  # white space stripped like DCMTK
    assert tag_name(0x00091011, "SOMEONE ELSE") == json_tags.UNKNOWN_NAME
    assert tag_dictionary.dictionary_entry(0x00091011, "GEMS_GENIE_1") == ("SL", "StudyFlags")


def test_parse_tag() -> None:
    assert parse_tag("0010-0010") == parse_tag("0010,0010") == parse_tag("00100010") == 0x00100010
    assert parse_tag("7FE0-0010") == 0x7FE00010
    assert parse_tag("PatientName") == 0x00100010
    assert parse_tag("RETIRED_OtherPatientIDs") == 0x00101000
    for bad in ("OtherPatientIDs", "patientname", "0010-001", "zzzz"):
        with pytest.raises(OrthancError) as e:
            parse_tag(bad)
        assert e.value.code == ErrorCode.UNKNOWN_DICOM_TAG


@pytest.mark.skipif(not DICTIONARY.exists(), reason="DCMTK's dictionary is not installed (apt-get install dcmtk)")
def test_generated_names_are_up_to_date(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_dcmtk_names", ROOT / "tools" / "gen_dcmtk_names.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.generate(DICTIONARY, DICTIONARY.parent / "private.dic")
    assert text == Path(dcmtk_names.__file__).read_text(encoding="utf-8")


# -- values -------------------------------------------------------------------------------------------


def test_numbers() -> None:
    assert format_numbers(struct.pack("<3H", 1, 2, 3), "US") == "1\\2\\3"
    assert format_numbers(struct.pack(">2h", -1, 7), "SS", little=False) == "-1\\7"
    assert format_numbers(b"", "UL") is None  # empty numbers are Null
    assert format_numbers(struct.pack("<I", 5) + b"\x01\x02", "UL") == "5"  # odd size: first value only
    assert format_numbers(struct.pack("<f", 0.679), "FL") == "0.67900002002716064"  # printed as a double
    assert format_numbers(struct.pack("<d", 1.0), "FD") == "1"
    assert format_numbers(struct.pack("<4H", 0x54, 0x10, 0x54, 0x20), "AT") == "0054,0010"  # first only


def test_charsets() -> None:
    assert detect_charset(None, "latin_1") == Charset("latin_1")
    assert detect_charset(b"ISO_IR 192", "latin_1") == Charset("utf_8")
    assert detect_charset(b"\\ISO 2022 IR 87", "latin_1") == Charset("iso2022_jp", True)
    assert detect_charset(b"ISO 2022 IR 13\\ISO 2022 IR 87", "latin_1") == Charset("shift_jis", True)
    assert detect_charset(b"WHATEVER", "latin_1") == Charset("ascii")
    assert Charset("ascii").decode(b"a\r\nb\xe9") == "ab"  # Orthanc's ASCII keeps printable characters
    assert Charset("shift_jis").decode(b"A\\B") == "A\u00a5B"  # iconv's Shift_JIS
    assert Charset("euc_kr", True).decode(b"Hong=\x1b$)C\xc8\xab") == "Hong=\ud64d"  # escapes dropped


# -- /tags --------------------------------------------------------------------------------------------


def test_private_tags_and_pixel_data(dicom) -> None:  # type: ignore[no-untyped-def]
    tags = full(dicom("PrivateTags.dcm"))
    assert tags["6003,0010"] == {"Name": "PrivateCreator", "Type": "String",
                                 "Value": "GEMS_Ultrasound_ImageGroup_001"}
    seq = tags["6003,1010"]
    assert seq["Name"] == json_tags.UNKNOWN_NAME and seq["Type"] == "Sequence" and len(seq["Value"]) == 2
    assert seq["Value"][0]["6003,1011"] == {"Name": json_tags.UNKNOWN_NAME,
                                            "PrivateCreator": "GEMS_Ultrasound_ImageGroup_001",
                                            "Type": "Null", "Value": None}
    assert tags["7fe0,0010"] == {"Name": "PixelData", "Type": "Null", "Value": None}
    assert max(tags) == "7fe0,0010"  # Orthanc stops at the pixel data
    whole = full(dicom("PrivateTags.dcm"), whole=True)
    assert "7fe1,1001" in whole and whole["7fe1,1001"]["Type"] == "Sequence"


def test_private_dictionary_values(dicom) -> None:  # type: ignore[no-untyped-def]
    tags = full(dicom("TransferSyntaxes/1.2.840.10008.1.2.4.80.dcm"))
    assert tags["0009,1011"] == {"Name": "StudyFlags", "PrivateCreator": "GEMS_GENIE_1", "Type": "String",
                                 "Value": "1"}
    assert tags["0013,1010"]["Value"] == "578.55999755859375\\2314.239990234375"
    assert tags["0010,1000"]["Name"] == "OtherPatientIDs"
    assert tags["0028,0009"]["Value"] == "0054,0010"


def test_implicit_vr_long_and_empty_values(dicom) -> None:  # type: ignore[no-untyped-def]
    tags = full(dicom("Implicit-vr-us-palette.dcm"))
    assert tags["0018,1020"] == {"Name": "SoftwareVersions", "Type": "TooLong", "Value": None}
    assert tags["0008,0050"] == {"Name": "AccessionNumber", "Type": "String", "Value": ""}
    assert tags["0028,1101"]["Type"] == "Null"  # DCMTK's "xs" VR in implicit VR: not converted
    assert tags["0028,0002"]["Value"] == "1"
    assert tags["0018,6011"]["Value"][0]["0018,602c"]["Value"] == "0.016509633818385324"


def test_character_sets(dicom) -> None:  # type: ignore[no-untyped-def]
    h31 = json_tags.convert(dicom("Encodings/DavidClunie/SCSH31"), TagFormat.HUMAN)
    assert h31["PatientName"] == "Yamada^Tarou=\u5c71\u7530^\u592a\u90ce=\u3084\u307e\u3060^\u305f\u308d\u3046"
    h32 = json_tags.convert(dicom("Encodings/DavidClunie/SCSH32"), TagFormat.HUMAN)
    assert h32["SpecificCharacterSet"] == "ISO 2022 IR 13\u00a5ISO 2022 IR 87"
    assert h32["PatientName"].startswith("\uff94\uff8f\uff80\uff9e^\uff80\uff9b\uff73=;3ED")
    greek = json_tags.convert(dicom("Encodings/Lena-greek.dcm"), TagFormat.SHORT)
    assert greek["0010,0010"] == "Test-\u0398"


def test_meta_header_is_split_by_its_group_length(dicom) -> None:  # type: ignore[no-untyped-def]
    data = dicom("TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm")
    parsed = json_tags.read_dicom(data)
    header = json_tags.header_to_json(parsed)
    assert header["0008,0000"] == {"Name": "GenericGroupLength", "Type": "String", "Value": "378"}
    assert "0002,0001" not in header  # binary: not in /header
    assert "0008,0000" not in json_tags.dicom_to_json(parsed)
    assert json_tags.simplify(header, TagFormat.SHORT)["0002,0010"] == "1.2.840.10008.1.2.4.50"


def test_header_cut_before_pixel_data(dicom) -> None:  # type: ignore[no-untyped-def]
    data = dicom("Knix/Loc/IM-0001-0001.dcm")
    offset = data.find(b"\xe0\x7f\x10\x00")
    cut = json_tags.dicom_to_json(json_tags.read_dicom(data[:offset], pixel_data_follows=True))
    assert cut == full(data)
    assert "7fe0,0010" not in json_tags.dicom_to_json(json_tags.read_dicom(dicom("Issue22-NoPixelData.dcm")))


def test_simplify_like_orthanc() -> None:
    tags = {
        "0009,1001": {"Name": json_tags.UNKNOWN_NAME, "Type": "String", "Value": "a"},
        "0009,1002": {"Name": json_tags.UNKNOWN_NAME, "Type": "String", "Value": "b"},
        "0010,0010": {"Name": "PatientName", "Type": "TooLong", "Value": None},
        "0011,0001": {"Name": "X", "Type": "Binary", "Value": "data:..."},
        "0040,0275": {"Name": "RequestAttributesSequence", "Type": "Sequence",
                      "Value": [{"0040,0007": {"Name": "ScheduledProcedureStepDescription", "Type": "String",
                                               "Value": "d"}}]},
    }
    assert json_tags.simplify(tags, TagFormat.HUMAN) == {
        json_tags.UNKNOWN_NAME: "b", "PatientName": None,
        "RequestAttributesSequence": [{"ScheduledProcedureStepDescription": "d"}]}
    assert json_tags.simplify(tags, TagFormat.SHORT)["0040,0275"] == [{"0040,0007": "d"}]


def test_shared_tags() -> None:
    a = {"0010,0010": {"Name": "PatientName", "Type": "String", "Value": "A"},
         "0020,0013": {"Name": "InstanceNumber", "Type": "String", "Value": "1"},
         "7fe0,0010": {"Name": "PixelData", "Type": "Null", "Value": None}}
    b = {**a, "0020,0013": {"Name": "InstanceNumber", "Type": "String", "Value": "2"}}
    shared = json_tags.SharedTags()
    assert shared.result() == {}
    shared.add(a)
    shared.add(b)
    assert shared.result() == {"0010,0010": a["0010,0010"]}


# -- /content and /frames -----------------------------------------------------------------------------


def test_content(dicom) -> None:  # type: ignore[no-untyped-def]
    parsed = json_tags.read_dicom(dicom("Knix/Loc/IM-0001-0001.dcm"), whole=True)
    listing = json_tags.content(parsed, [])
    assert isinstance(listing, list) and listing[0] == "0008-0005" and listing[-1] == "7fe0-0010"
    assert json_tags.content(parsed, ["0010-0010"]) == b"KNIX"
    assert json_tags.content(parsed, ["0020-0032"]) == b"-159.57\\-109.57\\-40\x00"  # NUL padding kept
    assert json_tags.content(parsed, ["0008-9215"]) == ["0"]
    assert json_tags.content(parsed, ["0008-9215", "-1"]) == json_tags.content(parsed, ["0008-9215", "0"])
    assert json_tags.content(parsed, ["0008-9215", "1"]) is None
    assert json_tags.content(parsed, ["0008-9215", "x"]) is None
    assert json_tags.content(parsed, ["0010-0010", "0"]) is None
    assert json_tags.content(parsed, ["0028-0010"]) == struct.pack("<H", 256)
    assert json_tags.content(parsed, ["7fe0-0010"]) == ["0", "1"]
    assert json_tags.content(parsed, ["7fe0-0010", "0"]) == b""  # empty offset table
    fragment = json_tags.content(parsed, ["7fe0-0010", "1"])
    assert isinstance(fragment, bytes) and fragment[:2] == b"\xff\xd8"
    with pytest.raises(OrthancError):
        json_tags.content(parsed, ["NoSuchTag"])


def test_content_strings_and_big_endian(dicom) -> None:  # type: ignore[no-untyped-def]
    implicit = json_tags.read_dicom(dicom("TransferSyntaxes/1.2.840.10008.1.2.dcm"), whole=True)
    assert json_tags.content(implicit, ["0008-0070"]) == b"SIEMENS "  # padding re-added to an even length
    assert json_tags.content(implicit, ["0008-1030"]) == b""  # only spaces: empty
    big = json_tags.read_dicom(dicom("TransferSyntaxes/1.2.840.10008.1.2.2.dcm"), whole=True)
    assert json_tags.content(big, ["0028-0010"]) == struct.pack("<H", 480)  # sent little endian
    assert json_tags.content(big, ["7fe0-0010"]) == ["0"]
    assert json_tags.content(big, ["7fe0-0010", "1"]) is None


def test_frames(dicom) -> None:  # type: ignore[no-untyped-def]
    def count(name: str) -> int:
        return json_tags.frames_count(json_tags.read_dicom(dicom(name)))
    assert count("Brainix/Epi/IM-0001-0001.dcm") == 1
    assert count("LenaTwiceWithFragments.dcm") == 2
    assert count("Issue22-NoPixelData.dcm") == 24
