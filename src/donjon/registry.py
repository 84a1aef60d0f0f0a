"""Every numbered thing of the system, declared once.

Resource levels, metadata types, content (attachment) types, change types, global properties and
the keys reserved by known applications live here; the rest of the code refers to these names.
User-defined names from the configuration are resolved and checked here too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from .errors import ErrorCode, OrthancError

log = logging.getLogger(__name__)


class Level(IntEnum):
    PATIENT = 1
    STUDY = 2
    SERIES = 3
    INSTANCE = 4

    @property
    def type_name(self) -> str:
        return _LEVEL_NAMES[self]

    @property
    def collection(self) -> str:
        return _LEVEL_COLLECTIONS[self]

    @property
    def parent(self) -> Level | None:
        return None if self is Level.PATIENT else Level(self - 1)

    @property
    def child(self) -> Level | None:
        return None if self is Level.INSTANCE else Level(self + 1)


_LEVEL_NAMES = {Level.PATIENT: "Patient", Level.STUDY: "Study", Level.SERIES: "Series", Level.INSTANCE: "Instance"}
_LEVEL_COLLECTIONS = {Level.PATIENT: "patients", Level.STUDY: "studies", Level.SERIES: "series",
                      Level.INSTANCE: "instances"}
LEVEL_BY_COLLECTION = {v: k for k, v in _LEVEL_COLLECTIONS.items()}
PARENT_FIELD = {Level.STUDY: "ParentPatient", Level.SERIES: "ParentStudy", Level.INSTANCE: "ParentSeries"}
CHILDREN_FIELD = {Level.PATIENT: "Studies", Level.STUDY: "Series", Level.SERIES: "Instances"}


def parse_level(text: str) -> Level:
    """Orthanc's lenient level parser (case-insensitive, plural forms and `Image` accepted)."""
    key = text.strip().lower()
    mapping = {
        "patient": Level.PATIENT, "patients": Level.PATIENT,
        "study": Level.STUDY, "studies": Level.STUDY,
        "series": Level.SERIES,
        "instance": Level.INSTANCE, "instances": Level.INSTANCE, "image": Level.INSTANCE,
        "images": Level.INSTANCE,
    }
    try:
        return mapping[key]
    except KeyError:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown resource type: {text}") from None


class Metadata(IntEnum):
    INDEX_IN_SERIES = 1
    RECEPTION_DATE = 2
    REMOTE_AET = 3
    EXPECTED_NUMBER_OF_INSTANCES = 4
    MODIFIED_FROM = 5
    ANONYMIZED_FROM = 6
    LAST_UPDATE = 7
    ORIGIN = 8
    TRANSFER_SYNTAX = 9
    SOP_CLASS_UID = 10
    REMOTE_IP = 11
    CALLED_AET = 12
    HTTP_USERNAME = 13
    PIXEL_DATA_OFFSET = 14
    MAIN_DICOM_TAGS_SIGNATURE = 15
    MAIN_DICOM_SEQUENCES = 16
    PIXEL_DATA_VR = 17


METADATA_NAMES: dict[int, str] = {
    1: "IndexInSeries", 2: "ReceptionDate", 3: "RemoteAET", 4: "ExpectedNumberOfInstances",
    5: "ModifiedFrom", 6: "AnonymizedFrom", 7: "LastUpdate", 8: "Origin", 9: "TransferSyntax",
    10: "SopClassUid", 11: "RemoteIP", 12: "CalledAET", 13: "HttpUsername", 14: "PixelDataOffset",
    15: "MainDicomTagsSignature", 16: "MainDicomSequences", 17: "PixelDataVR",
}

USER_KEY_MIN = 1024
USER_KEY_MAX = 65535


class ContentType(IntEnum):
    UNKNOWN = 0
    DICOM = 1
    DICOM_AS_JSON = 2
    DICOM_UNTIL_PIXEL_DATA = 3


CONTENT_TYPE_NAMES: dict[int, str] = {1: "dicom", 2: "dicom-as-json", 3: "dicom-until-pixel-data"}

# What `GET .../attachments/{name}/data` answers for the core types (user types: configured MIME, else
# octet-stream) and the extension of the `Content-Disposition` file name.
CONTENT_TYPE_MIME: dict[int, str] = {1: "application/dicom", 2: "application/json; charset=utf-8",
                                     3: "application/octet-stream"}
CONTENT_TYPE_EXTENSION: dict[int, str] = {1: ".dcm", 2: ".json", 3: ".dcm"}
DEFAULT_MIME = "application/octet-stream"


class CompressionType(IntEnum):
    NONE = 1
    ZLIB_WITH_SIZE = 2


class ChangeType(IntEnum):
    COMPLETED_SERIES = 1
    NEW_INSTANCE = 2
    NEW_PATIENT = 3
    NEW_SERIES = 4
    NEW_STUDY = 5
    ANONYMIZED_STUDY = 6
    ANONYMIZED_SERIES = 7
    MODIFIED_STUDY = 8
    MODIFIED_SERIES = 9
    ANONYMIZED_PATIENT = 10
    MODIFIED_PATIENT = 11
    STABLE_PATIENT = 12
    STABLE_STUDY = 13
    STABLE_SERIES = 14
    UPDATED_ATTACHMENT = 15
    UPDATED_METADATA = 16
    DELETED = 4096
    NEW_CHILD_INSTANCE = 4097


CHANGE_NAMES: dict[int, str] = {
    1: "CompletedSeries", 2: "NewInstance", 3: "NewPatient", 4: "NewSeries", 5: "NewStudy",
    6: "AnonymizedStudy", 7: "AnonymizedSeries", 8: "ModifiedStudy", 9: "ModifiedSeries",
    10: "AnonymizedPatient", 11: "ModifiedPatient", 12: "StablePatient", 13: "StableStudy",
    14: "StableSeries", 15: "UpdatedAttachment", 16: "UpdatedMetadata", 4096: "Deleted",
    4097: "NewChildInstance",
}

NEW_RESOURCE_CHANGE = {Level.PATIENT: ChangeType.NEW_PATIENT, Level.STUDY: ChangeType.NEW_STUDY,
                       Level.SERIES: ChangeType.NEW_SERIES, Level.INSTANCE: ChangeType.NEW_INSTANCE}
STABLE_CHANGE = {Level.PATIENT: ChangeType.STABLE_PATIENT, Level.STUDY: ChangeType.STABLE_STUDY,
                 Level.SERIES: ChangeType.STABLE_SERIES}


class GlobalProperty(IntEnum):
    DATABASE_SCHEMA_VERSION = 1
    FLUSH_SLEEP = 2
    ANONYMIZATION_SEQUENCE = 3
    DATABASE_PATCH_LEVEL = 4
    JOBS_REGISTRY = 5
    GET_TOTAL_SIZE_IS_FAST = 6
    INDEX_SYNC_MARK = 10  # Orthanc's DatabaseInternal0: the durable commit of core/index_sync.py
    MODALITIES = 20
    PEERS = 21


GLOBAL_PROPERTY_NAMES: dict[int, str] = {
    1: "DatabaseSchemaVersion", 2: "FlushSleep", 3: "AnonymizationSequence", 4: "DatabasePatchLevel",
    5: "JobsRegistry", 6: "GetTotalSizeIsFast", **{10 + i: f"DatabaseInternal{i}" for i in range(10)},
    20: "Modalities", 21: "Peers",
}


class Origin:
    UNKNOWN = "Unknown"
    DICOM_PROTOCOL = "DicomProtocol"
    REST_API = "RestApi"
    PLUGINS = "Plugins"
    LUA = "Lua"
    WEBDAV = "WebDav"


@dataclass(frozen=True)
class Reservation:
    kind: str  # "attachment", "metadata" or "global-property"
    first: int
    last: int
    owner: str


# Keys that known applications (Orthanc's plugins and viewers) use, so that Donjon users do not
# pick them for their own data by accident (the Orthanc Book's central registry).
RESERVED_KEYS: tuple[Reservation, ...] = (
    Reservation("attachment", 4301, 4301, "DICOMweb plugin (cached WADO-RS series metadata)"),
    Reservation("attachment", 9997, 9997, "Osimis Web Viewer (series information)"),
    Reservation("attachment", 9998, 9998, "Osimis Web Viewer (instance information)"),
    Reservation("attachment", 9999, 9999, "Osimis Web Viewer (annotations)"),
    Reservation("attachment", 10000, 13999, "Osimis Web Viewer (reduced-quality images)"),
    Reservation("global-property", 1025, 1025, "Housekeeper plugin"),
    Reservation("global-property", 5467, 5467, "Osimis Cloud plugin"),
    Reservation("global-property", 5468, 5468, "DICOMweb plugin (DICOMweb servers)"),
    Reservation("global-property", 5500, 5500, "Education plugin"),
    Reservation("metadata", 4200, 4200, "Whole-slide imaging plugin <= 0.7"),
    Reservation("metadata", 4201, 4201, "Whole-slide imaging plugin >= 1.0"),
    Reservation("metadata", 4202, 4202, "OHIF plugin (precomputed instance information)"),
)

_KIND_LABEL = {"metadata": "metadata", "attachment": "attachment", "global-property": "global property"}
_CORE_KIND = {"metadata": "core metadata", "attachment": "core attachment"}


def reservation_of(kind: str, key: int) -> Reservation | None:
    for r in RESERVED_KEYS:
        if r.kind == kind and r.first <= key <= r.last:
            return r
    return None


def is_user_key(key: int) -> bool:
    """Keys that REST clients may write or delete (Orthanc's IsUserMetadata / IsUserContentType)."""
    return USER_KEY_MIN <= key <= USER_KEY_MAX


class ConfigurationError(Exception):
    """The configuration cannot be used; the message names the option."""


_SPACES = " \t\n\v\f\r"
_INT32 = (-2**31, 2**31 - 1)


def is_orthanc_integer(text: str) -> bool:
    """Orthanc's `Toolbox::IsInteger`: optional `-` then ASCII digits, surrounding spaces ignored."""
    t = text.strip(_SPACES)
    if t.startswith("-"):
        t = t[1:]
    return bool(t) and all("0" <= c <= "9" for c in t)


@dataclass
class KeyNames:
    """A two-way map between numbers and symbolic names (core names plus configured ones)."""

    core: dict[int, str]
    kind: str
    by_name: dict[str, int] = field(default_factory=dict)
    by_number: dict[int, str] = field(default_factory=dict)
    mime: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for number, name in self.core.items():
            self.by_name[name] = number
            self.by_number[number] = name

    def register(self, option: str, name: str, number: object, mime: str | None = None) -> None:
        if isinstance(number, bool) or not isinstance(number, int):
            raise ConfigurationError(f'{option}: the value of "{name}" is not a number')
        if not USER_KEY_MIN <= number <= USER_KEY_MAX:
            raise ConfigurationError(f'{option}: "{name}" = {number} is outside {USER_KEY_MIN}..{USER_KEY_MAX}')
        if is_orthanc_integer(name):
            raise ConfigurationError(f'{option}: the name "{name}" must not be an integer')
        if name in self.by_name:
            what = f"by the {_CORE_KIND[self.kind]} {self.by_name[name]}" if name in self.core.values() \
                else f"by {self.by_name[name]}"
            raise ConfigurationError(f'{option}: the name "{name}" is already in use {what}')
        if number in self.by_number:
            raise ConfigurationError(f'{option}: the number {number} of "{name}" is already used by '
                                     f'"{self.by_number[number]}"')
        reserved = reservation_of(self.kind, number)
        if reserved is not None:
            log.warning('%s: "%s" uses the %s key %d, which is reserved by %s (see GET /tools/registry)',
                        option, name, _KIND_LABEL[self.kind], number, reserved.owner)
        self.by_name[name] = number
        self.by_number[number] = name
        if mime:
            self.mime[number] = mime

    def lookup(self, text: str) -> int:
        """Number of a URL component, as Orthanc's StringToMetadata / StringToContentType.

        An integer string is the number itself, registered or not and whatever its range (callers
        decide: a GET of an absent key is 404, a PUT of a non-user key 403); surrounding spaces or
        an int32 overflow are Orthanc's "syntax error"; anything else must be an exact name.
        """
        if is_orthanc_integer(text):
            value = int(text) if text == text.strip(_SPACES) else None
            if value is None or not _INT32[0] <= value <= _INT32[1]:
                raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, "Syntax error in some user-supplied data")
            return value
        number = self.by_name.get(text)
        if number is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM)
        return number

    def name_of(self, number: int) -> str:
        return self.by_number.get(number, str(number))

    def mime_of(self, number: int) -> str:
        return CONTENT_TYPE_MIME.get(number) or self.mime.get(number) or DEFAULT_MIME

    def user_names(self) -> dict[str, int]:
        return {name: n for name, n in self.by_name.items() if n >= USER_KEY_MIN}


def build_metadata_names(user_metadata: dict[str, object]) -> KeyNames:
    names = KeyNames(METADATA_NAMES, "metadata")
    for name, number in user_metadata.items():
        names.register("UserMetadata", name, number)
    return names


def build_content_type_names(user_content: dict[str, object]) -> KeyNames:
    names = KeyNames(CONTENT_TYPE_NAMES, "attachment")
    for name, spec in user_content.items():
        if isinstance(spec, list):
            if len(spec) != 2 or not isinstance(spec[1], str):
                raise ConfigurationError(f'UserContentType: "{name}" must be a number or [number, "mime/type"]')
            names.register("UserContentType", name, spec[0], spec[1])
        else:
            names.register("UserContentType", name, spec)
    return names


def _entry(kind: str, first: int, last: int, name: str | None, owner: str, read_only: bool,
           mime: str | None = None) -> dict[str, Any]:
    return {"Kind": kind, "Number": first, "LastNumber": last, "Name": name, "Owner": owner,
            "ReadOnly": read_only, "MimeType": mime}


def registry_entries(metadata: KeyNames, content: KeyNames) -> list[dict[str, Any]]:
    """The whole registry, for `GET /tools/registry`: core keys, configured keys, reservations.

    `ReadOnly` means owned by the server (REST clients get 403); a configured key that collides with
    a reservation appears twice, once per owner, so that the collision is visible.
    """
    out: list[dict[str, Any]] = []
    for number, name in METADATA_NAMES.items():
        out.append(_entry("Metadata", number, number, name, "Orthanc core", True))
    for name, number in metadata.user_names().items():
        out.append(_entry("Metadata", number, number, name, "Configuration (UserMetadata)", False))
    for number, name in CONTENT_TYPE_NAMES.items():
        out.append(_entry("Attachment", number, number, name, "Orthanc core", True, CONTENT_TYPE_MIME[number]))
    for name, number in content.user_names().items():
        out.append(_entry("Attachment", number, number, name, "Configuration (UserContentType)", False,
                          content.mime_of(number)))
    for number, name in GLOBAL_PROPERTY_NAMES.items():
        out.append(_entry("GlobalProperty", number, number, name, "Orthanc core", True))
    kinds = {"metadata": "Metadata", "attachment": "Attachment", "global-property": "GlobalProperty"}
    for r in RESERVED_KEYS:
        out.append(_entry(kinds[r.kind], r.first, r.last, None, r.owner, False))
    order = {"Metadata": 0, "Attachment": 1, "GlobalProperty": 2}
    out.sort(key=lambda e: (order[e["Kind"]], e["Number"], e["Owner"]))
    return out
