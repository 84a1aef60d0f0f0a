"""The main DICOM tags that the index copies per level (Orthanc's default lists)."""

from __future__ import annotations

from ..registry import Level

# (tag as int, name) per level, in Orthanc's declaration order.
PATIENT_TAGS: tuple[tuple[int, str], ...] = (
    (0x00100010, "PatientName"),
    (0x00100030, "PatientBirthDate"),
    (0x00100040, "PatientSex"),
    (0x00101000, "OtherPatientIDs"),
    (0x00100020, "PatientID"),
)

STUDY_TAGS: tuple[tuple[int, str], ...] = (
    (0x00080020, "StudyDate"),
    (0x00080030, "StudyTime"),
    (0x00200010, "StudyID"),
    (0x00081030, "StudyDescription"),
    (0x00080050, "AccessionNumber"),
    (0x0020000D, "StudyInstanceUID"),
    (0x00321060, "RequestedProcedureDescription"),
    (0x00080080, "InstitutionName"),
    (0x00321032, "RequestingPhysician"),
    (0x00080090, "ReferringPhysicianName"),
)

SERIES_TAGS: tuple[tuple[int, str], ...] = (
    (0x00080021, "SeriesDate"),
    (0x00080031, "SeriesTime"),
    (0x00080060, "Modality"),
    (0x00080070, "Manufacturer"),
    (0x00081010, "StationName"),
    (0x0008103E, "SeriesDescription"),
    (0x00180015, "BodyPartExamined"),
    (0x00180024, "SequenceName"),
    (0x00181030, "ProtocolName"),
    (0x00200011, "SeriesNumber"),
    (0x00181090, "CardiacNumberOfImages"),
    (0x00201002, "ImagesInAcquisition"),
    (0x00200105, "NumberOfTemporalPositions"),
    (0x00540081, "NumberOfSlices"),
    (0x00540101, "NumberOfTimeSlices"),
    (0x0020000E, "SeriesInstanceUID"),
    (0x00200037, "ImageOrientationPatient"),
    (0x00541000, "SeriesType"),
    (0x00081070, "OperatorsName"),
    (0x00400254, "PerformedProcedureStepDescription"),
    (0x00181400, "AcquisitionDeviceProcessingDescription"),
    (0x00180010, "ContrastBolusAgent"),
)

INSTANCE_TAGS: tuple[tuple[int, str], ...] = (
    (0x00080012, "InstanceCreationDate"),
    (0x00080013, "InstanceCreationTime"),
    (0x00200012, "AcquisitionNumber"),
    (0x00541330, "ImageIndex"),
    (0x00200013, "InstanceNumber"),
    (0x00280008, "NumberOfFrames"),
    (0x00200100, "TemporalPositionIdentifier"),
    (0x00080018, "SOPInstanceUID"),
    (0x00200032, "ImagePositionPatient"),
    (0x00204000, "ImageComments"),
    (0x00200037, "ImageOrientationPatient"),
)

MAIN_TAGS: dict[Level, tuple[tuple[int, str], ...]] = {
    Level.PATIENT: PATIENT_TAGS,
    Level.STUDY: STUDY_TAGS,
    Level.SERIES: SERIES_TAGS,
    Level.INSTANCE: INSTANCE_TAGS,
}

# name <-> tag for every main tag (ImageOrientationPatient appears at two levels).
MAIN_TAG_NAMES: dict[int, str] = {t: n for tags in MAIN_TAGS.values() for t, n in tags}

# Identifier tag of each level.
IDENTIFIER_TAG: dict[Level, int] = {
    Level.PATIENT: 0x00100020,
    Level.STUDY: 0x0020000D,
    Level.SERIES: 0x0020000E,
    Level.INSTANCE: 0x00080018,
}


def format_tag(tag: int) -> str:
    """`gggg,eeee` in lower-case hex, Orthanc's key format."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def signature(level: Level) -> str:
    """Value of metadata MainDicomTagsSignature for the default main tags of a level."""
    return ";".join(sorted(format_tag(t) for t, _ in MAIN_TAGS[level]))
