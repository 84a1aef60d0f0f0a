"""WADO-RS: what to send for instances, frames and bulk data, chosen from the `Accept` header.

Negotiation follows PS3.18 §8.7: instances default to Explicit VR Little Endian (transcoded when the
stored syntax differs), `transfer-syntax=*` sends the stored bytes, a named syntax is produced if the
codecs allow it; frames default to native little-endian bytes, and a compressed media type with the
stored syntax gets the stored fragments. An Accept header that names nothing usable is 406; when no
syntax was asked for and the stored one cannot be decoded, the stored file is sent as is (lenient,
so that viewers still get the images; the part's Content-Type names the real syntax).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core.attachments import read_attachment
from ..dicom.json_tags import PIXEL_DATA, _fragments, _value_bytes, _Walker, read_dicom
from ..dicom.tag_dictionary import dictionary_entry
from ..errors import ErrorCode, OrthancError
from . import transcode
from .lookup import InstanceRef
from .multipart import parse_accept

if TYPE_CHECKING:
    from ..core.context import ServerContext

DICOM = "application/dicom"
OCTET = "application/octet-stream"
ANY = "*"


def not_acceptable(details: str) -> OrthancError:
    return OrthancError(ErrorCode.NOT_ACCEPTABLE, details)


# -- instances ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstanceChoice:
    """`syntax` None = as stored; `lenient` = fall back to the stored file when it cannot be converted."""

    syntax: str | None
    lenient: bool


def _instance_candidates(accept: str | None) -> list[InstanceChoice]:
    ranges = parse_accept(accept)
    if not ranges:
        return [InstanceChoice(transcode.EXPLICIT_LE, True)]
    out = []
    for item in ranges:
        media, kind = item.media, item.type_param
        if media in ("*/*", "multipart/*"):
            out.append(InstanceChoice(transcode.EXPLICIT_LE, True))
        elif (media == "multipart/related" and kind in (None, DICOM, "*/*")) or media == DICOM:
            ts = item.transfer_syntax
            if ts is None:
                out.append(InstanceChoice(transcode.EXPLICIT_LE, True))
            elif ts == ANY:
                out.append(InstanceChoice(None, False))
            elif _is_uid(ts):
                out.append(InstanceChoice(ts, False))
    if not out:
        raise not_acceptable(f"WADO-RS: cannot answer instances as {accept}")
    return out


def _is_uid(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isdigit() or c == "." for c in text)


def choose_instance_syntax(accept: str | None, refs: list[InstanceRef]) -> InstanceChoice:
    """The first acceptable choice that every instance can be sent in (checked before streaming)."""
    candidates = _instance_candidates(accept)
    for choice in candidates:
        if choice.syntax is None or choice.lenient or all(
                transcode.can_transcode(r.transfer_syntax, choice.syntax) for r in refs):
            return choice
    raise not_acceptable(f"WADO-RS: the instances cannot be transcoded as asked ({accept})")


def instance_part(ctx: ServerContext, ref: InstanceRef, choice: InstanceChoice) -> tuple[bytes, str]:
    """(DICOM file, its transfer syntax) of one part of a WADO-RS answer."""
    if ref.file is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    data = read_attachment(ctx.storage, ref.file)
    stored = ref.transfer_syntax or transcode.IMPLICIT_LE
    if choice.syntax is None or choice.syntax == stored:
        return data, stored
    try:
        return transcode.transcode(data, ref.transfer_syntax, choice.syntax), choice.syntax
    except transcode.Untranscodable:
        if choice.lenient:
            return data, stored
        raise not_acceptable(f"WADO-RS: cannot transcode {ref.sop_uid} to {choice.syntax}") from None


def dicom_part_type(syntax: str) -> str:
    return f"{DICOM}; transfer-syntax={syntax}"


# -- frames --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrameChoice:
    media: str  # application/octet-stream, image/jpeg...
    syntax: str | None  # None = as stored
    same_media: bool = False  # with syntax None: only if the stored syntax has this media type


def _frame_candidates(accept: str | None) -> list[FrameChoice]:
    ranges = parse_accept(accept)
    if not ranges:
        return [FrameChoice(OCTET, transcode.EXPLICIT_LE)]
    out = []
    for item in ranges:
        if item.media in ("*/*", "multipart/*"):
            out.append(FrameChoice(OCTET, transcode.EXPLICIT_LE))
            continue
        media = item.type_param if item.media == "multipart/related" else item.media
        if item.media == "multipart/related" and media in ("*/*", "image/*"):
            out.append(FrameChoice(OCTET, None))  # any media type: the frames as stored
            continue
        if item.media == "multipart/related" and media is None:
            media = OCTET
        if media is None or media not in transcode.DEFAULT_SYNTAX:
            continue
        ts = item.transfer_syntax
        if ts == ANY:
            out.append(FrameChoice(media, None))
        elif ts is None:
            out.append(FrameChoice(media, transcode.DEFAULT_SYNTAX[media]))
            if media != OCTET:  # lenient: a stored syntax of the same media type will do
                out.append(FrameChoice(media, None, same_media=True))
        elif _is_uid(ts) and (media != OCTET or ts in transcode.NATIVE) and \
                (media == OCTET or transcode.frame_media_type(ts) == media):
            out.append(FrameChoice(media, ts))
    if not out:
        raise not_acceptable(f"WADO-RS: cannot answer frames as {accept}")
    return out


def parse_frame_list(text: str) -> list[int]:
    numbers = []
    for item in text.split(","):
        item = item.strip()
        if not (item.isascii() and item.isdigit()) or len(item) > 9 or int(item) < 1:
            raise OrthancError(ErrorCode.BAD_REQUEST, f"WADO-RS: bad frame number: {item!r} (frames start at 1)")
        numbers.append(int(item))
    return numbers


def frames(ctx: ServerContext, ref: InstanceRef, numbers: list[int], accept: str | None
           ) -> list[tuple[str, bytes]]:
    """(part Content-Type, bytes) of each requested frame (1-based numbers)."""
    if ref.file is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    candidates = _frame_candidates(accept)
    data = read_attachment(ctx.storage, ref.file)
    stored = transcode.stored_frames(data, ref.transfer_syntax)
    if not stored.frames:
        raise OrthancError(ErrorCode.BAD_REQUEST, "WADO-RS: this instance has no pixel data")
    for n in numbers:
        if n > len(stored.frames):
            raise OrthancError(ErrorCode.INEXISTENT_ITEM,
                               f"WADO-RS: frame {n} does not exist (the instance has {len(stored.frames)})")
    native = stored.syntax in transcode.NATIVE
    little = (transcode.IMPLICIT_LE, transcode.EXPLICIT_LE)
    for choice in candidates:
        if choice.same_media and (native or transcode.frame_media_type(stored.syntax) != choice.media):
            continue
        if native and (choice.media == OCTET or choice.syntax is None):
            # native frames are the same bytes in either little-endian syntax (big endian was swapped)
            syntax = choice.syntax if choice.syntax in little else \
                stored.syntax if stored.syntax in little else transcode.EXPLICIT_LE
            return [(f"{OCTET}; transfer-syntax={syntax}", stored.frames[n - 1]) for n in numbers]
        if not native and (choice.syntax is None or choice.syntax == stored.syntax):
            media = transcode.frame_media_type(stored.syntax)
            return [(f"{media}; transfer-syntax={stored.syntax}", stored.frames[n - 1]) for n in numbers]
        if choice.media == OCTET and transcode.can_decode(stored.syntax):
            try:
                return [(f"{OCTET}; transfer-syntax={transcode.EXPLICIT_LE}",
                         transcode.decoded_frame(data, ref.transfer_syntax, n - 1)) for n in numbers]
            except transcode.Untranscodable:
                continue
        if choice.media != OCTET and choice.syntax and transcode.can_transcode(stored.syntax, choice.syntax):
            try:
                return [(f"{choice.media}; transfer-syntax={choice.syntax}",
                         transcode.encoded_frame(data, ref.transfer_syntax, n - 1, choice.syntax)) for n in numbers]
            except transcode.Untranscodable:
                continue
    raise not_acceptable(f"WADO-RS: the frames of {ref.sop_uid} ({stored.syntax}) cannot be sent as {accept}")


# -- bulk data -----------------------------------------------------------------------------------

def check_bulk_accept(accept: str | None) -> None:
    ranges = parse_accept(accept)
    if not ranges:
        return
    for item in ranges:
        if "range" in item.params:
            raise OrthancError(ErrorCode.BAD_REQUEST, "WADO-RS: byte ranges of bulk data are not supported")
        if item.media in ("*/*", "multipart/*") or (
                item.media == "multipart/related" and item.type_param in (None, OCTET, "*/*")) or item.media == OCTET:
            return
    raise not_acceptable(f"WADO-RS: bulk data can only be sent as {OCTET} ({accept})")


def bulk(ctx: ServerContext, ref: InstanceRef, path: list[str]) -> list[bytes]:
    """The value at a bulk data URI path (`7fe00010`, `60031010/1/60031011`...): one part, or one per
    fragment of encapsulated pixel data (the offset table first), as Orthanc sends it."""
    if ref.file is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    if not path or len(path) % 2 == 0:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    try:
        tags = [int(path[i].replace(",", ""), 16) for i in range(0, len(path), 2)]
        indexes = [int(path[i]) for i in range(1, len(path), 2)]
    except ValueError:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE) from None
    parsed = read_dicom(read_attachment(ctx.storage, ref.file), whole=True)
    walker = _Walker(parsed.implicit, parsed.little_endian)
    ds: Any = parsed.dataset
    for tag, index in zip(tags, indexes, strict=False):
        elem = ds._dict.get(tag)
        items = walker.items(elem, "SQ") if elem is not None else None
        if not items or not 1 <= index <= len(items):
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        ds = items[index - 1]
    elem = ds._dict.get(tags[-1])
    if elem is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    entry = dictionary_entry(tags[-1])
    if walker.items(elem, walker.vr(elem, entry)) is not None:
        raise OrthancError(ErrorCode.BAD_REQUEST, "WADO-RS: a sequence is not bulk data")
    if tags[-1] == PIXEL_DATA:
        fragments = _fragments(elem, parsed.little_endian)
        if fragments is not None:
            return fragments
    return [_value_bytes(elem) or b""]
