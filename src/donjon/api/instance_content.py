"""What a stored file contains: `/tags`, `/simplified-tags`, `/header`, `/content`, `/frames`, `/shared-tags`.

The conversions (Orthanc 1.10.1's DICOM-as-JSON and raw values) live in `dicom.json_tags`; this module
finds the file and reads as little of it as the answer needs: the part before the pixel data for
tags, header and frames; the whole file only for `?whole` and for `/content` paths that may reach
the pixel data or what follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.attachments import read_attachment, read_range
from ..core.views import TagFormat
from ..dicom import json_tags, tag_dictionary
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..registry import ContentType, Level, Metadata
from .app import Api
from .http import Request, Response, Router, json_response

_OCTET_STREAM = b"application/octet-stream"


def register(router: Router) -> None:
    router.add("GET", "/instances/{id}/tags", _tags)
    router.add("GET", "/instances/{id}/simplified-tags", _simplified_tags)
    router.add("GET", "/instances/{id}/header", _header)
    router.add("GET", "/instances/{id}/content", _content)
    router.add("GET", "/instances/{id}/content/{path:path}", _content)
    router.add("GET", "/instances/{id}/frames", _frames)
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        router.add("GET", f"/{level.collection}/{{id}}/shared-tags", _shared_tags)


# -- reading the stored file ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    """Where an instance's bytes are, found in one index transaction and read outside of it."""

    dicom: FileInfo
    header: FileInfo | None  # the DicomUntilPixelData attachment, when there is one
    pixel_offset: int | None

    def read(self, ctx: Any, whole: bool = False) -> tuple[bytes, bool]:
        """(bytes, whether they stop right before the pixel data)."""
        if not whole and self.pixel_offset is not None:
            if self.header is not None:
                return read_attachment(ctx.storage, self.header), True
            return read_range(ctx.storage, self.dicom, 0, self.pixel_offset), True
        return read_attachment(ctx.storage, self.dicom), False


def _source(tx: Any, internal_id: int, md: dict[int, str] | None = None) -> _Source:
    info = tx.attachment(internal_id, ContentType.DICOM)
    if info is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    if md is None:
        md = {k: v[0] for k, v in tx.metadata(internal_id).items()}
    offset: int | None = None
    text = md.get(Metadata.PIXEL_DATA_OFFSET)
    if text is not None:
        try:
            offset = int(text)
        except ValueError:
            offset = None
    header = tx.attachment(internal_id, ContentType.DICOM_UNTIL_PIXEL_DATA) if offset is not None else None
    return _Source(info, header, offset)


def _instance_source(api: Api, public_id: str) -> _Source:
    """The file of an instance; an unknown instance is Orthanc's 404 "Unknown resource"."""
    def run(tx: Any) -> _Source:
        found = tx.lookup(public_id)
        if found is None or found[1] != Level.INSTANCE:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        return _source(tx, found[0])
    return api.ctx.index.read(run)


def _parse(api: Api, public_id: str, whole: bool = False) -> json_tags.ParsedFile:
    data, cut = _instance_source(api, public_id).read(api.ctx, whole)
    return json_tags.read_dicom(data, whole=whole, pixel_data_follows=cut)


# -- arguments ------------------------------------------------------------------------------------


def _dicom_format(request: Request, default: TagFormat = TagFormat.FULL) -> TagFormat:
    """Orthanc's `GetDicomFormat()`: `simplify` wins over `short`, which wins over `full`."""
    if "simplify" in request.query and request.flag("simplify"):
        return TagFormat.HUMAN
    if "short" in request.query and request.flag("short"):
        return TagFormat.SHORT
    if "full" in request.query and request.flag("full"):
        return TagFormat.FULL
    return default


def _ignore_length(request: Request) -> frozenset[int]:
    """`?ignore-length=tag,tag`: tags never reported as TooLong (names, `gggg-eeee` or `ggggeeee`)."""
    text = request.query.get("ignore-length")
    if text is None:
        return frozenset()
    return frozenset(tag_dictionary.parse_tag(t) for t in text.split(",") if t)


# -- handlers -------------------------------------------------------------------------------------


async def _tags(api: Api, request: Request, id: str) -> Response:
    return await _tags_answer(api, request, id, _dicom_format(request))


async def _simplified_tags(api: Api, request: Request, id: str) -> Response:
    return await _tags_answer(api, request, id, TagFormat.HUMAN)


async def _tags_answer(api: Api, request: Request, id: str, fmt: TagFormat) -> Response:
    whole = "whole" in request.query and request.flag("whole")
    ignore = _ignore_length(request)
    default_codec = api.ctx.default_encoding

    def run() -> Any:
        parsed = _parse(api, id, whole)
        return json_tags.simplify(json_tags.dicom_to_json(parsed, default_codec, whole, ignore), fmt)
    return json_response(await api.run(run))


async def _header(api: Api, request: Request, id: str) -> Response:
    fmt = _dicom_format(request)

    def run() -> Any:
        return json_tags.simplify(json_tags.header_to_json(_parse(api, id)), fmt)
    return json_response(await api.run(run))


async def _content(api: Api, request: Request, id: str, path: list[str] | None = None) -> Response:
    components = path or []
    # only the pixel data and what follows it need more than the header
    whole = not components or _may_follow_pixel_data(components[0])

    def run() -> Any:
        return json_tags.content(_parse(api, id, whole), components)
    answer = await api.run(run)
    if answer is None:
        raise EmptyAnswer(404)
    if isinstance(answer, bytes):
        return Response(200, answer, _OCTET_STREAM)
    return json_response(answer)


def _may_follow_pixel_data(component: str) -> bool:
    try:
        return tag_dictionary.parse_tag(component) >= json_tags.PIXEL_DATA
    except OrthancError:
        return True  # let the conversion report the unknown tag


async def _frames(api: Api, request: Request, id: str) -> Response:
    def run() -> Any:
        return list(range(json_tags.frames_count(_parse(api, id))))
    return json_response(await api.run(run))


async def _shared_tags(api: Api, request: Request, id: str) -> Response:
    """Like Orthanc 1.10.1, the route's level is not checked: any resource's instances are compared."""
    fmt = _dicom_format(request)
    ctx = api.ctx

    def sources(tx: Any) -> list[_Source]:
        found = tx.lookup(id)
        if found is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        instances = tx.descendants(found[0], Level.INSTANCE)
        md = tx.metadata_bulk(instances, (Metadata.PIXEL_DATA_OFFSET,))
        out = []
        for iid in instances:
            try:
                out.append(_source(tx, iid, md.get(iid, {})))
            except OrthancError:
                continue  # removed meanwhile: Orthanc ignores such instances
        return out

    def run() -> Any:
        shared = json_tags.SharedTags()
        for src in ctx.index.read(sources):
            try:
                data, cut = src.read(ctx)
            except OrthancError:
                continue
            parsed = json_tags.read_dicom(data, pixel_data_follows=cut)
            shared.add(json_tags.dicom_to_json(parsed, ctx.default_encoding))
        return json_tags.simplify(shared.result(), fmt)
    return json_response(await api.run(run))
