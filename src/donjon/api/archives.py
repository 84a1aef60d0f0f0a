"""ZIP archives and DICOMDIR media of resources: synchronous (streamed while built) or as jobs."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..config_options import is_transfer_syntax
from ..errors import ErrorCode, OrthancError
from ..jobs.archive import ArchiveJob, StreamSink
from ..jobs.engine import JobState
from ..registry import Level
from .app import Api
from .http import Request, Response, Router
from .jobs import get_output, job_options, submit

_KINDS = {"archive": (False, False), "media": (True, False)}


def register(router: Router) -> None:
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        for kind in ("archive", "media"):
            router.add("GET", f"/{level.collection}/{{id}}/{kind}", _get_route(level, kind))
            router.add("POST", f"/{level.collection}/{{id}}/{kind}", _post_route(level, kind))
    for kind, media, extended in (("archive", False, False), ("media", True, False),
                                  ("media-extended", True, True)):
        router.add("POST", f"/tools/create-{kind}", _tools_post(media, extended))
        router.add("GET", f"/tools/create-{kind}", _tools_get(media, extended))


async def _body(request: Request) -> Any:
    raw = await request.body(64 * 1024 * 1024)
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT) from None


def _syntax(value: str) -> str:
    """A `transcode` value: a transfer syntax UID, else 400 "Parameter out of range" as in Orthanc 1.10.1."""
    if not is_transfer_syntax(value):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Unknown transfer syntax: {value}")
    return value


def _transcode(body: Any) -> str | None:
    if not isinstance(body, dict) or "Transcode" not in body:
        return None
    value = body["Transcode"]
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "String value expected in field: Transcode")
    return _syntax(value)


def _extended(body: Any, default: bool) -> bool:
    if isinstance(body, dict) and "Extended" in body:
        value = body["Extended"]
        if not isinstance(value, bool):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Boolean value expected in field: Extended")
        return value
    return default


def _check_level(api: Api, public_id: str, level: Level) -> None:
    found = api.ctx.index.reader().lookup(public_id)
    if found is None or found[1] != level:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)


def _get_route(level: Level, kind: str):  # type: ignore[no-untyped-def]
    media, _ = _KINDS[kind]

    async def handler(api: Api, request: Request, id: str) -> Response:
        _check_level(api, id, level)  # before the arguments, as in Orthanc (the POST routes check the body first)
        text = request.query.get("transcode")
        transcode = None if text is None else _syntax(text)
        extended = media and "extended" in request.query  # Orthanc: present means extended, whatever its value
        filename = request.query.get("filename") or f"{id}.zip"
        return await synchronous_archive(api, [id], media, extended, filename, 0, transcode)
    return handler


def _post_route(level: Level, kind: str):  # type: ignore[no-untyped-def]
    media, _ = _KINDS[kind]

    async def handler(api: Api, request: Request, id: str) -> Response:
        body = await _body(request)
        if not isinstance(body, dict):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The body must be a JSON object")
        transcode = _transcode(body)
        _check_level(api, id, level)
        synchronous, priority, _ = job_options(body)
        extended = media and _extended(body, False)
        filename = body.get("Filename") if isinstance(body.get("Filename"), str) else f"{id}.zip"
        return await _archive(api, [id], media, extended, synchronous, priority, filename, transcode)
    return handler


def _tools_post(media: bool, extended_default: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, list):
            resources, options = body, {}
        elif isinstance(body, dict):
            resources, options = body.get("Resources"), body
        else:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Field "Resources" must be an array of strings')
        transcode = _transcode(options)
        synchronous, priority, _ = job_options(options)
        extended = media and _extended(options, extended_default)
        filename = options.get("Filename") if isinstance(options.get("Filename"), str) else "Archive.zip"
        return await _archive(api, list(resources), media, extended, synchronous, priority, filename, transcode)
    return handler


def _tools_get(media: bool, extended: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request) -> Response:
        text = request.query.get("resources")
        if text is None:
            raise OrthancError(ErrorCode.BAD_REQUEST, 'Missing "resources" argument')
        resources = [r for r in text.split(",") if r]
        syntax = request.query.get("transcode")
        transcode = None if syntax is None else _syntax(syntax)
        filename = request.query.get("filename") or "Archive.zip"
        return await synchronous_archive(api, resources, media, extended, filename, 0, transcode)
    return handler


async def _archive(api: Api, resources: list[str], media: bool, extended: bool, synchronous: bool,
                   priority: int, filename: str, transcode: str | None) -> Response:
    if synchronous:
        return await synchronous_archive(api, resources, media, extended, filename, priority, transcode)
    job = ArchiveJob(api.ctx, resources, media, extended, transcode=transcode)
    await api.run(job.prepare)
    return await submit(api, job, False, priority)


def _headers(filename: str) -> list[tuple[bytes, bytes]]:
    safe = filename.replace('"', "")
    return [(b"content-disposition", f'filename="{safe}"'.encode("utf-8", "replace"))]


async def synchronous_archive(api: Api, resources: list[str], media: bool, extended: bool, filename: str,
                              priority: int, transcode: str | None = None) -> Response:
    """The job goes through the queue as in Orthanc; its ZIP is streamed while it is built."""
    ctx = api.ctx
    if not ctx.config["SynchronousZipStream"]:
        job = ArchiveJob(ctx, resources, media, extended, transcode=transcode)
        await api.run(job.prepare)
        job.synchronous = True
        await api.run(ctx.jobs.submit_and_wait, job, priority)
        output = job.output("archive")
        if output is None:
            raise OrthancError(ErrorCode.INTERNAL_ERROR, "The archive is gone")
        f = await api.run(open, output.path, "rb")
        size = os.fstat(f.fileno()).st_size
        return Response(200, b"", b"application/zip", [*_headers(filename), (b"content-length", str(size).encode())],
                        stream=_file_then_discard(api, f, job))
    sink = StreamSink()
    job = ArchiveJob(ctx, resources, media, extended, sink=sink, transcode=transcode)
    await api.run(job.prepare)
    job_id = ctx.jobs.submit(job, priority)
    first: bytes | None = None
    while True:
        chunk = await api.run(sink.get, 0.5)
        if chunk is None or isinstance(chunk, bytes):
            first = chunk
            break
        rec_state = ctx.jobs.engine.state(job_id)
        if rec_state is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM, "The archive job has disappeared")
        if rec_state == JobState.FAILURE:
            info = ctx.jobs.engine.info(job_id) or {}
            raise OrthancError(info.get("ErrorCode", ErrorCode.INTERNAL_ERROR), info.get("ErrorDetails") or None)
    return Response(200, b"", b"application/zip", _headers(filename),
                    stream=_drain(api, sink, first, job_id))


async def _drain(api: Api, sink: StreamSink, first: bytes | None, job_id: str) -> AsyncIterator[bytes]:
    complete = False
    try:
        chunk: bytes | bool | None = first
        while chunk is not None:
            if isinstance(chunk, bytes):
                yield chunk
            elif api.ctx.jobs.engine.state(job_id) in (None, JobState.FAILURE):
                break  # the job stopped before the end: the client gets a truncated ZIP
            chunk = await api.run(sink.get, 0.5)
        complete = True
    finally:
        if not complete:  # the client went away: stop building the archive
            sink.close_reader()
            api.ctx.jobs.engine.cancel(job_id)


async def _file_then_discard(api: Api, f: Any, job: ArchiveJob) -> AsyncIterator[bytes]:
    try:
        while True:
            chunk = await api.run(f.read, 1024 * 1024)
            if not chunk:
                break
            yield chunk
    finally:
        f.close()
        job.discard_outputs()


__all__ = ["get_output", "register"]
