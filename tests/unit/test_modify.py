"""Modification and anonymization of single files, checked tag by tag."""

from __future__ import annotations

import io

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from donjon.dicom.anonymization_profiles import PROFILES
from donjon.dicom.modify import Modification, TagPath, parse_tag
from donjon.dicom.parse import parse_instance
from donjon.errors import ErrorCode, OrthancError
from donjon.registry import Level


def make_file(implicit: bool = False, sop: str = "1.2.3.4.1", **extra: str) -> bytes:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = "1.2.3.1"
    ds.SeriesInstanceUID = "1.2.3.2"
    ds.FrameOfReferenceUID = "1.2.3.9"
    ds.PatientID = "P1"
    ds.PatientName = "Doe^John"
    ds.PatientBirthDate = "19700101"
    ds.StudyDescription = "Head"
    ds.InstitutionName = "Hospital"
    ds.AccessionNumber = "A1"
    ds.StudyDate = "20200101"
    ds.Rows = 2
    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = "1.2.3.4.2"
    ref.InstitutionName = "Nested"
    ds.ReferencedImageSequence = Sequence([ref])
    ds.add_new(0x00090010, "LO", "CREATOR")
    ds.add_new(0x00091001, "LO", "secret")
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def read(data: bytes) -> Dataset:
    return dcmread(io.BytesIO(data))


def modify(body: dict, level: Level, data: bytes | None = None) -> Dataset:  # type: ignore[type-arg]
    m = Modification.from_modify_request(body)
    m.level = level
    return read(m.apply_to_bytes(data or make_file()))


@pytest.mark.parametrize("implicit", [False, True])
def test_study_modification(implicit: bool) -> None:
    data = make_file(implicit)
    ds = modify({"Replace": {"StudyDescription": "Crâne", "Rows": "4"}, "Remove": ["InstitutionName"]},
                Level.STUDY, data)
    assert ds.StudyDescription == "Crâne" and ds.Rows == 4 and "InstitutionName" not in ds
    assert ds.ReferencedImageSequence[0].InstitutionName == "Nested"  # modify is top-level only
    assert ds.PatientID == "P1" and ds.PatientName == "Doe^John"
    assert ds.StudyInstanceUID.startswith("1.2.276.0.7230010.3.1.2.")
    assert ds.SeriesInstanceUID.startswith("1.2.276.0.7230010.3.1.3.")
    assert ds.SOPInstanceUID.startswith("1.2.276.0.7230010.3.1.4.")
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == "1.2.3.4.2"  # references untouched
    assert 0x00091001 in ds  # private tags kept unless asked
    m = Modification.from_modify_request({})
    m.level = Level.SERIES
    parsed = parse_instance(m.apply_to_bytes(data))  # the result is a valid file for the store path
    assert parsed.study_uid == "1.2.3.1" and parsed.series_uid != "1.2.3.2"


def test_levels_regenerate_uids_below_only() -> None:
    series = modify({}, Level.SERIES)
    assert series.StudyInstanceUID == "1.2.3.1" and series.SeriesInstanceUID != "1.2.3.2"
    instance = modify({}, Level.INSTANCE)
    assert instance.SeriesInstanceUID == "1.2.3.2" and instance.SOPInstanceUID != "1.2.3.4.1"
    kept = modify({"Keep": ["SOPInstanceUID"], "Force": True}, Level.INSTANCE)
    assert kept.SOPInstanceUID == "1.2.3.4.1"
    patient = modify({"Replace": {"PatientID": "P2"}, "Force": True}, Level.PATIENT)
    assert patient.PatientID == "P2" and patient.StudyInstanceUID != "1.2.3.1"


def test_one_original_uid_maps_to_one_new_uid() -> None:
    m = Modification.from_modify_request({})
    m.level = Level.STUDY
    a = read(m.apply_to_bytes(make_file(sop="1.2.3.4.1")))
    b = read(m.apply_to_bytes(make_file(sop="1.2.3.4.7")))
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.SeriesInstanceUID == b.SeriesInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    again = Modification.from_json(m.to_json())  # a job reloaded after a restart gives the same UIDs
    assert read(again.apply_to_bytes(make_file(sop="1.2.3.4.1"))).SOPInstanceUID == a.SOPInstanceUID


@pytest.mark.parametrize("level, body, message", [
    (Level.PATIENT, {}, "When modifying a patient, her PatientID is required to be modified"),
    (Level.STUDY, {"Replace": {"PatientID": "x"}, "Force": True},
     "When modifying a study, the parent PatientID cannot be manually modified"),
    (Level.SERIES, {"Replace": {"StudyInstanceUID": "1.2"}, "Force": True},
     "When modifying a series, the parent StudyInstanceUID cannot be manually modified"),
    (Level.INSTANCE, {"Replace": {"SeriesInstanceUID": "1.2"}, "Force": True},
     "When modifying an instance, the parent SeriesInstanceUID cannot be manually modified"),
    (Level.STUDY, {"Remove": ["PatientID"], "Force": True}, None),
])
def test_hierarchy_rules(level: Level, body: dict, message: str | None) -> None:  # type: ignore[type-arg]
    with pytest.raises(OrthancError) as e:
        modify(body, level)
    assert e.value.code == ErrorCode.BAD_REQUEST and e.value.details == message


def test_request_errors() -> None:
    with pytest.raises(OrthancError) as e:
        Modification.from_modify_request({"Replace": {"PatientID": "x"}})
    assert e.value.code == ErrorCode.BAD_REQUEST
    assert e.value.details == 'Marking tag "PatientID" as to be replaced requires the "Force" option to be set to true'
    with pytest.raises(OrthancError) as e:
        Modification.from_modify_request({"Remove": ["SOPInstanceUID"]})
    assert e.value.details is not None and "as to be removed" in e.value.details
    for body, code in (({"Replace": "x"}, 8), ({"Remove": "x"}, 8), ({"Force": 1}, 15), ([], 15),
                       ({"Replace": {"NoSuchTag": "x"}}, 27)):
        with pytest.raises(OrthancError) as e:
            Modification.from_modify_request(body)
        assert e.value.code == code, body
    with pytest.raises(OrthancError) as e:
        modify({"Replace": {"StudyDescription": 5}}, Level.STUDY)
    assert e.value.code == ErrorCode.BAD_PARAMETER_TYPE and e.value.details == "Bad Parameter type for tag 0008,1030"


def test_paths_sequences_and_private_tags() -> None:
    ds = modify({"Replace": {"ReferencedImageSequence[0].InstitutionName": "X",
                             "ProcedureCodeSequence": [{"CodeValue": "A", "CodeMeaning": "B"}]},
                 "Remove": ["ReferencedImageSequence[*].ReferencedSOPClassUID"], "RemovePrivateTags": True},
                Level.INSTANCE)
    item = ds.ReferencedImageSequence[0]
    assert item.InstitutionName == "X" and "ReferencedSOPClassUID" not in item
    assert ds.ProcedureCodeSequence[0].CodeMeaning == "B"
    assert 0x00091001 not in ds and 0x00090010 not in ds
    assert parse_tag("0010,0010") == parse_tag("0010-0010") == parse_tag("00100010") == parse_tag("PatientName")
    assert TagPath.parse("ReferencedImageSequence[*].PatientName").prefix == ((0x00081140, None),)


def anonymize(body: dict, data: bytes | None = None) -> Dataset:  # type: ignore[type-arg]
    m, _ = Modification.from_anonymization_request(body)
    return read(m.apply_to_bytes(data or make_file()))


def test_anonymization_2021b() -> None:
    ds = anonymize({})
    profile = PROFILES["2021b"]
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethod.endswith("PS 3.15-2021b Table E.1-1 Basic Profile")
    assert len(ds.PatientID) == 36 and ds.PatientName == ds.PatientID  # the REST layer sets Anonymized<N>
    assert ds.PatientBirthDate == "" and ds.AccessionNumber == "" and ds.StudyDate == ""  # Z
    assert "InstitutionName" not in ds and "StudyDescription" not in ds  # X
    assert 0x00091001 not in ds  # private tags
    assert ds.StudyInstanceUID.startswith("1.2.276.0.7230010.3.1.2.")
    assert ds.FrameOfReferenceUID.startswith("1.2.276.0.7230010.3.1.4.")  # U
    item = ds.ReferencedImageSequence[0]
    assert "InstitutionName" not in item  # the profile applies inside sequences
    assert item.ReferencedSOPInstanceUID.startswith("1.2.276.0.7230010.3.1.4.")
    assert 0x00080080 in profile.remove and 0x00100030 in profile.clear and 0x00200052 in profile.remap


def test_anonymization_options() -> None:
    ds = anonymize({"Keep": ["StudyDescription", "InstitutionName"], "KeepPrivateTags": True,
                    "Replace": {"PatientName": "Bob"}, "DicomVersion": "2017c"})
    assert ds.StudyDescription == "Head" and ds.InstitutionName == "Hospital" and ds.PatientName == "Bob"
    assert ds.ReferencedImageSequence[0].InstitutionName == "Nested"
    assert 0x00091001 in ds and "2017c" in ds.DeidentificationMethod
    same = anonymize({"Replace": {"StudyInstanceUID": "1.2.9"}, "Force": True})
    assert same.StudyInstanceUID == "1.2.9"
    _, decided = Modification.from_anonymization_request({"Remove": ["PatientName"]})
    assert decided
    _, decided = Modification.from_anonymization_request({})
    assert not decided
    with pytest.raises(OrthancError) as e:
        Modification.from_anonymization_request({"DicomVersion": "1999"})
    assert e.value.code == ErrorCode.PARAMETER_OUT_OF_RANGE
    with pytest.raises(OrthancError):
        anonymize({"Keep": ["PatientID"], "Force": True})  # a patient-level change needs a new PatientID


def test_same_uid_in_two_u_tags_maps_once() -> None:
    ds = anonymize({}, make_file(InstanceCreatorUID="1.2.3.9"))
    assert ds.InstanceCreatorUID == ds.FrameOfReferenceUID != "1.2.3.9"


def test_private_tags_inside_sequences() -> None:
    data = make_file()
    ds = read(data)
    ds.ReferencedImageSequence[0].add_new(0x00110010, "LO", "NESTED")
    ds.ReferencedImageSequence[0].add_new(0x00111001, "LO", "private")
    out = io.BytesIO()
    ds.save_as(out)
    anonymized = anonymize({"Keep": ["0011,1001"]}, out.getvalue())
    assert 0x00111001 not in anonymized.ReferencedImageSequence[0]  # anonymization: gone at every depth
    modified = modify({"RemovePrivateTags": True}, Level.INSTANCE, out.getvalue())
    assert 0x00111001 in modified.ReferencedImageSequence[0] and 0x00091001 not in modified  # modify: top level
