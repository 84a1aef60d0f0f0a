"""`/{level}/{id}/attachments...`: a thin face over core.attachment_ops, plus HTTP Range on `data`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

from ..core import attachment_ops as ops
from ..core import revisions
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..registry import CompressionType, Level
from .app import Api
from .http import EMPTY_JSON_OBJECT, TEXT_TYPE, Request, Response, Router, json_response, text_response
from .metadata import if_match, if_none_match, with_etag

_STREAM_THRESHOLD = 8 * 1024 * 1024
_CHUNK = 1024 * 1024
_BINARY = b"application/octet-stream"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def register(router: Router) -> None:
    for level in Level:
        base = f"/{level.collection}/{{id}}/attachments"
        router.add("GET", base, _list(level))
        router.add("GET", base + "/{name}", operations)
        router.add("PUT", base + "/{name}", put_attachment)
        router.add("DELETE", base + "/{name}", delete_attachment)
        router.add("GET", base + "/{name}/info", info_route)
        router.add("GET", base + "/{name}/data", data)
        router.add("GET", base + "/{name}/compressed-data", compressed_data)
        router.add("GET", base + "/{name}/size", _text(lambda i: str(i.uncompressed_size)))
        router.add("GET", base + "/{name}/compressed-size", _text(lambda i: str(i.compressed_size)))
        router.add("GET", base + "/{name}/md5", _text(lambda i: i.uncompressed_md5))
        router.add("GET", base + "/{name}/compressed-md5", _text(lambda i: i.compressed_md5))
        router.add("GET", base + "/{name}/is-compressed",
                   _text(lambda i: "0" if i.compression == CompressionType.NONE else "1"))
        router.add("POST", base + "/{name}/compress", _compression(True))
        router.add("POST", base + "/{name}/uncompress", _compression(False))
        router.add("POST", base + "/{name}/verify-md5", verify_md5)


def _info_json(info: FileInfo) -> dict[str, Any]:
    return {"CompressedMD5": info.compressed_md5, "CompressedSize": info.compressed_size,
            "ContentType": info.content_type, "UncompressedMD5": info.uncompressed_md5,
            "UncompressedSize": info.uncompressed_size, "Uuid": info.uuid}


def _list(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        found = ops.list_attachments(api.ctx, level, id)
        names = api.ctx.content_names
        # Donjon addition: `?expand` gives each record (Orthanc has only the names, or `?full`)
        if "expand" in request.query and request.flag("expand"):
            return json_response({names.name_of(t): _info_json(i) for t, i in found.items()})
        if "full" in request.query:
            return json_response({names.name_of(t): t for t in found})
        return json_response([names.name_of(t) for t in found])
    return handler


async def _lookup(api: Api, request: Request, id: str, name: str) -> tuple[FileInfo, bytes] | Response:
    """The record and its ETag, or the answer to send instead (304, or 400 on a bad If-None-Match)."""
    info = ops.get_attachment(api.ctx, id, api.ctx.content_names.lookup(name))
    etag = revisions.etag(info.revision, info.uncompressed_md5)
    quoted = if_none_match(api, request, etag)
    if isinstance(quoted, Response):
        return quoted
    if revisions.not_modified(quoted, info.revision, info.uncompressed_md5):
        return Response(304, headers=[(b"etag", etag)])
    return info, etag


async def operations(api: Api, request: Request, id: str, name: str) -> Response:
    found = await _lookup(api, request, id, name)
    if isinstance(found, Response):
        return found
    info, etag = found
    ops_list = ["compress", "compressed-data"]
    if info.compressed_md5:
        ops_list.append("compressed-md5")
    ops_list += ["compressed-size", "data", "info", "is-compressed"]
    if info.uncompressed_md5:
        ops_list.append("md5")
    ops_list += ["size", "uncompress"]
    if info.compressed_md5 and info.uncompressed_md5:
        ops_list.append("verify-md5")
    return with_etag(json_response(ops_list), etag)


async def info_route(api: Api, request: Request, id: str, name: str) -> Response:
    found = await _lookup(api, request, id, name)
    if isinstance(found, Response):
        return found
    return with_etag(json_response(_info_json(found[0])), found[1])


def _text(field):  # type: ignore[no-untyped-def]
    """size, md5...: a text answer; an empty MD5 (not stored) is a bare 404, as in Orthanc."""
    async def handler(api: Api, request: Request, id: str, name: str) -> Response:
        found = await _lookup(api, request, id, name)
        if isinstance(found, Response):
            return found
        value = field(found[0])
        if value == "":
            return Response(404, headers=[(b"etag", found[1])])
        return with_etag(text_response(value), found[1])
    return handler


def _disposition(request: Request, default: str | None) -> list[tuple[bytes, bytes]]:
    """`Content-Disposition`: `?filename=` (Orthanc 1.12.5) or the default; quotes and controls dropped."""
    name = request.query.get("filename", default)
    if name is None:
        return []
    safe = "".join(c for c in name if c >= " " and c not in '"\\\x7f')
    return [(b"content-disposition", f'filename="{safe}"'.encode())]


async def compressed_data(api: Api, request: Request, id: str, name: str) -> Response:
    found = await _lookup(api, request, id, name)
    if isinstance(found, Response):
        return found
    info, etag = found
    stored = await api.run(ops.read_stored, api.ctx, info)
    return Response(200, stored, _BINARY, [(b"etag", etag), *_disposition(request, None)])


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """[start, end) of a single `bytes=` range; None to send everything; BadRange (416) if unsatisfiable.

    Other units and multi-range requests are ignored (RFC 9110 lets a server send the whole content).
    """
    if header is None:
        return None
    value = header.strip()
    if not value.lower().startswith("bytes=") or "," in value:
        return None
    m = _RANGE.fullmatch(value.replace(" ", "").lower())
    if m is None or (not m.group(1) and not m.group(2)):
        raise OrthancError(ErrorCode.BAD_RANGE, f"Malformed range: {header}")
    first, last = m.group(1), m.group(2)
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise OrthancError(ErrorCode.BAD_RANGE, f"Unsatisfiable range: {header}")
        return max(size - n, 0), size
    start = int(first)
    end = size if not last else min(int(last) + 1, size)
    if start >= size or (last and int(last) < start):
        raise OrthancError(ErrorCode.BAD_RANGE, f"Unsatisfiable range: {header}")
    return start, end


async def data(api: Api, request: Request, id: str, name: str) -> Response:
    """The decompressed content with the configured MIME type; single byte ranges supported."""
    found = await _lookup(api, request, id, name)
    if isinstance(found, Response):
        return found
    info, etag = found
    ctx = api.ctx
    headers = [(b"etag", etag), (b"accept-ranges", b"bytes"), *_disposition(request, ops.filename_of(info))]
    mime = ctx.content_names.mime_of(info.content_type).encode()
    size = info.uncompressed_size
    if_range = request.headers.get("if-range")
    try:
        window = parse_range(request.headers.get("range"), size) if if_range in (None, etag.decode()) else None
    except OrthancError as e:
        if api.app is None:
            raise
        response = api.app.error_response(request, e)
        response.headers.append((b"content-range", f"bytes */{size}".encode()))
        return response
    start, end = window if window is not None else (0, size)
    status = 200
    if window is not None:
        status = 206
        headers.append((b"content-range", f"bytes {start}-{end - 1}/{size}".encode()))
    path = ctx.storage.path_of(info.uuid) if info.compression == CompressionType.NONE else None
    if path is not None and end - start > _STREAM_THRESHOLD:
        f = await _open(api, path)
        headers.append((b"content-length", str(end - start).encode()))
        return Response(status, b"", mime, headers, stream=_stream(api, f, start, end - start))
    if window is None:
        body = await api.run(ops.read_data, ctx, info)
    else:
        body = await api.run(ops.read_window, ctx, info, start, end)
    return Response(status, body, mime, headers)


async def _open(api: Api, path: str) -> BinaryIO:
    """Open before answering, so that a concurrent replacement cannot cut the answer short."""
    try:
        return await api.run(open, path, "rb")  # type: ignore[arg-type]
    except FileNotFoundError:
        raise OrthancError(ErrorCode.INEXISTENT_FILE) from None


async def _stream(api: Api, f: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    try:
        if start:
            await loop.run_in_executor(api.pool, f.seek, start, os.SEEK_SET)
        while length > 0:
            chunk = await loop.run_in_executor(api.pool, f.read, min(_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        f.close()


async def put_attachment(api: Api, request: Request, id: str, name: str) -> Response:
    content_type = api.ctx.content_names.lookup(name)
    if not ops.can_put(content_type):
        raise EmptyAnswer(403)
    quoted = if_match(request)
    body = await request.body()
    info = await api.run(ops.put_attachment, api.ctx, id, content_type, body, quoted)
    digest = info.uncompressed_md5 or hashlib.md5(body).hexdigest()
    return Response(200, b"{}", b"application/json", [(b"etag", revisions.etag(info.revision, digest))])


async def delete_attachment(api: Api, request: Request, id: str, name: str) -> Response:
    content_type = api.ctx.content_names.lookup(name)
    if not ops.can_delete(api.ctx, content_type):
        raise EmptyAnswer(403)
    quoted = if_match(request)
    await api.run(ops.delete_attachment, api.ctx, id, content_type, quoted)
    return Response(200, b"", TEXT_TYPE)


def _compression(compress: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str, name: str) -> Response:
        content_type = api.ctx.content_names.lookup(name)
        await api.run(ops.change_compression, api.ctx, id, content_type, compress)
        return EMPTY_JSON_OBJECT
    return handler


async def verify_md5(api: Api, request: Request, id: str, name: str) -> Response:
    content_type = api.ctx.content_names.lookup(name)
    if not await api.run(ops.verify_md5, api.ctx, id, content_type):
        raise EmptyAnswer(400)
    return EMPTY_JSON_OBJECT
