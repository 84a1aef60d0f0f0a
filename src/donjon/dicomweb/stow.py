"""STOW-RS: store the DICOM parts of a multipart/related body and describe the outcome (PS3.18 §10.5).

Each part is stored on its own through `ctx.store` (the way of one instance), so a bad part never
prevents the good ones from being stored. The answer is the standard's data set: ReferencedSOPSequence
for what was stored (an instance already stored counts as stored, as in Orthanc), FailedSOPSequence with
a FailureReason for the others, RetrieveURL of the study. Status: 200 all stored, 202 some stored,
409 none stored for a conflict (wrong study, storage full), 400 none stored for malformed parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..core.store import StoreOrigin
from ..dicom.header import MalformedDicom, scan
from ..dicom.parse import parse_instance
from ..dicom.values import decode_string
from ..errors import ErrorCode, OrthancError
from . import json_model

if TYPE_CHECKING:
    from ..core.context import ServerContext

PROCESSING_FAILURE = 0x0110
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
_CONFLICTS = (PROCESSING_FAILURE, OUT_OF_RESOURCES, SOP_CLASS_NOT_SUPPORTED)


@dataclass
class StowOutcome:
    stored: list[tuple[str, str, str]] = field(default_factory=list)  # sop class, sop instance, retrieve path
    failed: list[tuple[str | None, str | None, int]] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)

    @property
    def status(self) -> int:
        if not self.failed:
            return 200 if self.stored else 400
        if self.stored:
            return 202
        return 409 if any(reason in _CONFLICTS for *_, reason in self.failed) else 400

    def dataset(self, base: str, charset: str) -> json_model.Json:
        out: json_model.Json = {"00080005": {"vr": "CS", "Value": [charset]}}
        if len(self.studies) == 1:
            out["00081190"] = {"vr": "UR", "Value": [f"{base}studies/{next(iter(self.studies))}"]}
        failed = [_item(cls, uid, {"00081197": {"vr": "US", "Value": [reason]}}) for cls, uid, reason in self.failed]
        stored = [_item(cls, uid, {"00081190": {"vr": "UR", "Value": [base + path]}}) for cls, uid, path in self.stored]
        out["00081198"] = {"vr": "SQ", "Value": failed} if failed else {"vr": "SQ"}
        out["00081199"] = {"vr": "SQ", "Value": stored} if stored else {"vr": "SQ"}
        return out


def _item(sop_class: str | None, sop_uid: str | None, extra: json_model.Json) -> json_model.Json:
    item: json_model.Json = {"00081150": {"vr": "UI", "Value": [sop_class]} if sop_class else {"vr": "UI"},
                             "00081155": {"vr": "UI", "Value": [sop_uid]} if sop_uid else {"vr": "UI"}}
    item.update(extra)
    return item


def _uids(data: bytes) -> tuple[str | None, str | None]:
    """SOP class and instance UIDs of a file that the store refused, when they can be read at all."""
    try:
        header = scan(data)
    except (MalformedDicom, RecursionError, MemoryError, ValueError):
        return None, None
    out = []
    for tag in (0x00080016, 0x00080018):
        elem = header.elements.get(tag)
        out.append(decode_string(elem.value, "UI", ["latin_1"]) or None if elem is not None and elem.value else None)
    return out[0], out[1]


def store_part(ctx: ServerContext, data: bytes, origin: StoreOrigin, study: str | None, outcome: StowOutcome) -> None:
    """Store one part and record what happened (never raises for a bad part)."""
    try:
        parsed = parse_instance(data, ctx.default_encoding)
    except OrthancError:
        cls, uid = _uids(data)
        if cls is not None or uid is not None:
            outcome.failed.append((cls, uid, CANNOT_UNDERSTAND))
        else:  # not DICOM at all: nothing to name it by, but it is reported
            outcome.failed.append((None, None, CANNOT_UNDERSTAND))
        return
    sop_class, sop_uid = parsed.sop_class_uid or "", parsed.sop_uid
    if study is not None and parsed.study_uid != study:
        outcome.failed.append((sop_class, sop_uid, PROCESSING_FAILURE))
        return
    try:
        result = ctx.store(data, origin)
    except OrthancError as e:
        reason = OUT_OF_RESOURCES if e.code == ErrorCode.FULL_STORAGE else \
            CANNOT_UNDERSTAND if e.code in (ErrorCode.BAD_FILE_FORMAT, ErrorCode.INEXISTENT_TAG) else PROCESSING_FAILURE
        outcome.failed.append((sop_class, sop_uid, reason))
        return
    if result.status not in ("Success", "AlreadyStored"):
        outcome.failed.append((sop_class, sop_uid, PROCESSING_FAILURE))  # e.g. filtered out
        return
    path = f"studies/{parsed.study_uid}/series/{parsed.series_uid}/instances/{sop_uid}"
    outcome.stored.append((sop_class, sop_uid, path))
    outcome.studies.add(parsed.study_uid)


def check_content_type(content_type: str) -> str:
    """The boundary of a STOW-RS body; 415 for anything but multipart/related of application/dicom."""
    from .multipart import parse_media_type

    media = parse_media_type(content_type)
    if media.media != "multipart/related":
        raise OrthancError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                           f"STOW-RS: the body must be multipart/related, not {content_type or 'nothing'}",
                           http_status=415)
    kind = media.type_param
    if kind not in (None, "application/dicom"):
        raise OrthancError(ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                           f"STOW-RS: only application/dicom parts are supported, not {kind}", http_status=415)
    boundary = media.params.get("boundary")
    if not boundary:
        raise OrthancError(ErrorCode.BAD_REQUEST, "STOW-RS: multipart/related without a boundary")
    return boundary


def part_is_dicom(headers: dict[str, str]) -> bool:
    kind = headers.get("content-type", "application/dicom").split(";")[0].strip().lower()
    return kind in ("application/dicom", "application/octet-stream", "")
