import copy
import io

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from donjon.dicom.parse import parse_instance
from donjon.errors import OrthancError
from donjon.registry import Level


def _save(ds) -> bytes:
    b = io.BytesIO()
    ds.save_as(b)
    return b.getvalue()


def test_knee_file(samples):
    p = parse_instance((samples / "Knee/T1/IM-0001-0001.dcm").read_bytes())
    assert p.ids.instance == "c8df6478-d7794217-0f11c293-a41237c9-31d98357"
    assert p.ids.patient == "ca29faea-b6a0e17f-067743a1-8b778011-a48b2a17"
    assert p.pixel_data_offset == 3192
    assert p.transfer_syntax == "1.2.840.10008.1.2.4.91"
    assert p.index_in_series == "1"
    assert dict(p.main_tags[Level.PATIENT])[0x00100010] == "KNEE"


def test_raw_dataset_without_meta_is_accepted(samples):
    ds = pydicom.dcmread(samples / "DummyCT.dcm")
    b = DicomBytesIO()
    b.is_little_endian, b.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(b, ds)
    p = parse_instance(b.getvalue())
    assert p.ids.instance == "66a662ce-7430e543-bad44d47-0dc5a943-ec7a538d"
    assert p.transfer_syntax == "1.2.840.10008.1.2.1"


@pytest.mark.parametrize("cut", [10, 1000, 2000])
def test_truncated_files_are_refused(samples, cut):
    data = (samples / "DummyCT.dcm").read_bytes()
    with pytest.raises(OrthancError) as e:
        parse_instance(data[: len(data) - cut])
    assert e.value.code == 15


def test_garbage_and_empty(samples):
    with pytest.raises(OrthancError) as e:
        parse_instance(b"")
    assert e.value.details == "Received an empty DICOM file"
    with pytest.raises(OrthancError) as e:
        parse_instance(b"hello")
    assert e.value.code == 15
    with pytest.raises(OrthancError) as e:
        parse_instance((samples / "DummyCT.dcm").read_bytes()[:132])
    assert e.value.code == 15


def test_identifier_rules(samples):
    ds = pydicom.dcmread(samples / "DummyCT.dcm")
    d = copy.deepcopy(ds)
    del d.SOPInstanceUID
    with pytest.raises(OrthancError) as e:
        parse_instance(_save(d))
    assert e.value.code == 21
    d = copy.deepcopy(ds)
    d.SOPInstanceUID = ""
    with pytest.raises(OrthancError) as e:
        parse_instance(_save(d))
    assert e.value.code == 15
    assert "missing" in e.value.details
    d = copy.deepcopy(ds)
    d.PatientID = "X" * 300
    with pytest.raises(OrthancError) as e:
        parse_instance(_save(d))
    assert e.value.code == 5
    d = copy.deepcopy(ds)
    del d.PatientID
    assert parse_instance(_save(d)).ids.patient == "da39a3ee-5e6b4b0d-3255bfef-95601890-afd80709"


def test_padding_rules(samples):
    ds = pydicom.dcmread(samples / "DummyCT.dcm")
    ds.PatientID = "  AB  "
    ds.SOPInstanceUID = " 1.2.3. 4.7 "
    p = parse_instance(_save(ds))
    assert p.patient_id == "  AB"
    assert p.sop_uid == "1.2.3.4.7"
    # the same hashes as Orthanc 1.10.1 gave for this file
    assert p.ids.patient == "384a0d54-e8220841-8ee2cb21-b9cd1c88-7f36d660"
    assert p.ids.instance == "55f6e3d9-2548151f-02c50f4d-30432ab8-047a9413"


def test_character_sets(samples):
    p = parse_instance((samples / "Encodings/DavidClunie/SCSGERM").read_bytes())
    assert dict(p.main_tags[Level.PATIENT])[0x00100010] == "Äneas^Rüdiger"
    p = parse_instance((samples / "Encodings/DavidClunie/SCSH31").read_bytes())
    assert dict(p.main_tags[Level.PATIENT])[0x00100010] == "Yamada^Tarou=山田^太郎=やまだ^たろう"


def test_deeply_nested_sequences_are_refused_cleanly():
    # an item nested 200 levels deep, undefined lengths, explicit VR little endian
    body = b""
    for _ in range(200):
        body = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + body
    body += (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00") * 200
    meta = pydicom.dcmread  # keep the import used
    assert meta
    with pytest.raises(OrthancError):
        parse_instance(b"\x00" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00" + body)
