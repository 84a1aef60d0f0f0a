"""`/{level}/{id}/metadata...` and `GET /tools/registry`: a thin face over core.metadata."""

from __future__ import annotations

from ..core import metadata as md
from ..core import revisions
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..registry import Level, registry_entries
from .app import Api
from .http import TEXT_TYPE, Request, Response, Router, json_response, text_response


def register(router: Router) -> None:
    for level in Level:
        base = f"/{level.collection}/{{id}}/metadata"
        router.add("GET", base, _list(level))
        router.add("GET", base + "/{name}", _get(level))
        router.add("PUT", base + "/{name}", put_metadata)
        router.add("DELETE", base + "/{name}", delete_metadata)
    router.add("GET", "/tools/registry", registry)


def with_etag(response: Response, etag: bytes) -> Response:
    response.headers.append((b"etag", etag))
    return response


def if_none_match(api: Api, request: Request, etag: bytes) -> revisions.Revision | Response | None:
    """The parsed If-None-Match; a malformed one gives Orthanc's 400, which carries the ETag too."""
    try:
        return revisions.parse_header(request.headers, "If-None-Match")
    except OrthancError as e:
        if api.app is None:
            raise
        return with_etag(api.app.error_response(request, e), etag)


def if_match(request: Request) -> revisions.Revision | None:
    return revisions.parse_header(request.headers, "if-match")


def _list(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        numeric = "numeric" in request.query
        expand = "expand" in request.query and request.flag("expand")
        items = md.list_metadata(api.ctx, level, id)
        names = api.ctx.metadata_names
        if expand:
            return json_response({(str(k) if numeric else names.name_of(k)): v for k, v in items})
        return json_response([k if numeric else names.name_of(k) for k, _ in items])
    return handler


def _get(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str, name: str) -> Response:
        key = api.ctx.metadata_names.lookup(name)
        found = md.get_metadata(api.ctx, level, id, key)
        if found is None:
            raise EmptyAnswer(404)
        value, revision = found
        digest = revisions.md5_text(value)
        etag = revisions.etag(revision, digest)
        quoted = if_none_match(api, request, etag)
        if isinstance(quoted, Response):
            return quoted
        if revisions.not_modified(quoted, revision, digest):
            return Response(304, headers=[(b"etag", etag)])
        return with_etag(text_response(value), etag)
    return handler


async def put_metadata(api: Api, request: Request, id: str, name: str) -> Response:
    key = api.ctx.metadata_names.lookup(name)
    md.check_writable(key)
    quoted = if_match(request)
    body = await request.body(md.MAX_METADATA_BYTES)
    try:
        value = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The value of a metadata must be UTF-8 text") from None
    revision = await api.run_short_write(md.set_metadata, api.ctx, id, key, value, quoted,
                                          together=request.together)
    return Response(200, b"", TEXT_TYPE, [(b"etag", revisions.etag(revision, revisions.md5_text(value)))])


async def delete_metadata(api: Api, request: Request, id: str, name: str) -> Response:
    key = api.ctx.metadata_names.lookup(name)
    md.check_writable(key)
    quoted = if_match(request)
    await api.run_short_write(md.delete_metadata, api.ctx, id, key, quoted, together=request.together)
    return Response(200, b"", TEXT_TYPE)


async def registry(api: Api, request: Request) -> Response:
    """Every numbered key (core, configured, reserved by known applications), so apps pick free ones."""
    return json_response(registry_entries(api.ctx.metadata_names, api.ctx.content_names))
