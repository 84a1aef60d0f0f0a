"""The enumerations of Orthanc's plugin SDK, and the maps from Donjon's own numbers to them.

In Orthanc's Python plugin an enumeration is a class whose attributes are plain integers (callbacks
receive `int`s, not enum members), with the SDK's numbering, which differs from the numbers of the
REST API and of the index (e.g. `ChangeType.STABLE_STUDY` is 9 in the SDK, 13 in `/changes`).
"""

from __future__ import annotations

from ..errors import ErrorCode as _CoreErrors
from ..registry import ChangeType as _Change
from ..registry import Level
from ..registry import Origin as _Origin


def _enum(name: str, **values: int) -> type:
    cls = type(name, (), {"__module__": "orthanc", "__doc__": f"Orthanc SDK enumeration {name}.", **values})
    return cls


ChangeType = _enum(
    "ChangeType", COMPLETED_SERIES=0, DELETED=1, NEW_CHILD_INSTANCE=2, NEW_INSTANCE=3, NEW_PATIENT=4,
    NEW_SERIES=5, NEW_STUDY=6, STABLE_PATIENT=7, STABLE_SERIES=8, STABLE_STUDY=9, ORTHANC_STARTED=10,
    ORTHANC_STOPPED=11, UPDATED_ATTACHMENT=12, UPDATED_METADATA=13, UPDATED_PEERS=14, UPDATED_MODALITIES=15,
    JOB_SUBMITTED=16, JOB_SUCCESS=17, JOB_FAILURE=18)
ResourceType = _enum("ResourceType", PATIENT=0, STUDY=1, SERIES=2, INSTANCE=3, NONE=4)
ContentType = _enum("ContentType", UNKNOWN=0, DICOM=1, DICOM_AS_JSON=2, DICOM_UNTIL_PIXEL_DATA=3)
CompressionType = _enum("CompressionType", ZLIB=0, ZLIB_WITH_SIZE=1, GZIP=2, GZIP_WITH_SIZE=3)
CreateDicomFlags = _enum("CreateDicomFlags", NONE=0, DECODE_DATA_URI_SCHEME=1, GENERATE_IDENTIFIERS=2)
DicomToJsonFlags = _enum(
    "DicomToJsonFlags", NONE=0, INCLUDE_BINARY=1, INCLUDE_PRIVATE_TAGS=2, INCLUDE_UNKNOWN_TAGS=4,
    INCLUDE_PIXEL_DATA=8, CONVERT_BINARY_TO_ASCII=16, CONVERT_BINARY_TO_NULL=32, STOP_AFTER_PIXEL_DATA=64,
    SKIP_GROUP_LENGTHS=128)
DicomToJsonFormat = _enum("DicomToJsonFormat", FULL=1, SHORT=2, HUMAN=3)
HttpMethod = _enum("HttpMethod", GET=1, POST=2, PUT=3, DELETE=4)
InstanceOrigin = _enum("InstanceOrigin", UNKNOWN=1, DICOM_PROTOCOL=2, REST_API=3, PLUGIN=4, LUA=5, WEB_DAV=6)
ReceivedInstanceAction = _enum("ReceivedInstanceAction", KEEP_AS_IS=1, MODIFY=2, DISCARD=3)
# The name of the same enumeration in release 4.0 of Orthanc's plugin
ReceivedInstanceCallbackResult = _enum("ReceivedInstanceCallbackResult", KEEP_AS_IS=1, MODIFIED=2, DISCARD=3)
ImageFormat = _enum("ImageFormat", PNG=0, JPEG=1, DICOM=2)
PixelFormat = _enum(
    "PixelFormat", GRAYSCALE8=1, GRAYSCALE16=2, SIGNED_GRAYSCALE16=3, RGB24=4, RGBA32=5, UNKNOWN=6, RGB48=7,
    GRAYSCALE32=8, FLOAT32=9, BGRA32=10, GRAYSCALE64=11)
MetricsType = _enum("MetricsType", DEFAULT=0, TIMER=1)
JobStepStatus = _enum("JobStepStatus", SUCCESS=1, FAILURE=2, CONTINUE=3)
JobStopReason = _enum("JobStopReason", SUCCESS=1, PAUSED=2, FAILURE=3, CANCELED=4)
IdentifierConstraint = _enum("IdentifierConstraint", EQUAL=1, SMALLER_OR_EQUAL=2, GREATER_OR_EQUAL=3, WILDCARD=4)
ConstraintType = _enum("ConstraintType", EQUAL=1, SMALLER_OR_EQUAL=2, GREATER_OR_EQUAL=3, WILDCARD=4, LIST=5)
DicomWebBinaryMode = _enum("DicomWebBinaryMode", IGNORE=0, INLINE_BINARY=1, BULK_DATA_URI=2)
StorageCommitmentFailureReason = _enum(
    "StorageCommitmentFailureReason", SUCCESS=0, PROCESSING_FAILURE=1, NO_SUCH_OBJECT_INSTANCE=2,
    RESOURCE_LIMITATION=3, REFERENCED_SOPCLASS_NOT_SUPPORTED=4, CLASS_INSTANCE_CONFLICT=5,
    DUPLICATE_TRANSACTION_UID=6)
ValueRepresentation = _enum("ValueRepresentation", **{vr: i + 1 for i, vr in enumerate((
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OF", "OW", "PN", "SH", "SL",
    "SQ", "SS", "ST", "TM", "UI", "UL", "UN", "US", "UT"))})
# Orthanc's error codes have the same numbers in the SDK as in the REST API
ErrorCode = _enum("ErrorCode", **{e.name: int(e) for e in _CoreErrors}, NO_CGET_HANDLER=2044)

ENUMERATIONS: tuple[type, ...] = (
    ChangeType, ResourceType, ContentType, CompressionType, CreateDicomFlags, DicomToJsonFlags,
    DicomToJsonFormat, HttpMethod, InstanceOrigin, ReceivedInstanceAction, ReceivedInstanceCallbackResult,
    ImageFormat, PixelFormat, MetricsType, JobStepStatus, JobStopReason, IdentifierConstraint, ConstraintType,
    DicomWebBinaryMode, StorageCommitmentFailureReason, ValueRepresentation, ErrorCode)

# Changes of the index -> SDK change types; the others (Modified*, Anonymized*) are not given to
# plugins, as in Orthanc, whose SDK has no number for them.
CHANGE_TO_SDK: dict[int, int] = {
    _Change.COMPLETED_SERIES: 0, _Change.DELETED: 1, _Change.NEW_CHILD_INSTANCE: 2, _Change.NEW_INSTANCE: 3,
    _Change.NEW_PATIENT: 4, _Change.NEW_SERIES: 5, _Change.NEW_STUDY: 6, _Change.STABLE_PATIENT: 7,
    _Change.STABLE_SERIES: 8, _Change.STABLE_STUDY: 9, _Change.UPDATED_ATTACHMENT: 12,
    _Change.UPDATED_METADATA: 13,
}
LEVEL_TO_SDK: dict[int, int] = {Level.PATIENT: 0, Level.STUDY: 1, Level.SERIES: 2, Level.INSTANCE: 3}
SDK_TO_LEVEL: dict[int, Level] = {v: Level(k) for k, v in LEVEL_TO_SDK.items()}
NO_RESOURCE = 4
JOB_EVENTS: dict[str, int] = {"submitted": 16, "success": 17, "failure": 18}
ORIGIN_TO_SDK: dict[str, int] = {
    _Origin.UNKNOWN: 1, _Origin.DICOM_PROTOCOL: 2, _Origin.REST_API: 3, _Origin.PLUGINS: 4, _Origin.LUA: 5,
    _Origin.WEBDAV: 6,
}
METHOD_TO_SDK: dict[str, int] = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4}
