"""DICOMweb routes: QIDO-RS, WADO-RS, STOW-RS under `DicomWeb.Root`, WADO-URI at `WadoRoot`, and the
DICOMweb client under `{Root}servers`.

The routes are registered under the default roots (`/dicom-web/`, `/wado`), so that they show in the
OpenAPI document and the Explorer; other roots from the configuration are served by a fallback route
that maps the path onto the same table. The logic lives in `donjon.dicomweb`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..core.attachments import read_attachment
from ..core.store import StoreOrigin
from ..dicomweb import json_model, lookup, metadata, multipart, qido, render, stow, transcode, wado
from ..dicomweb.remote import get as remote_get
from ..dicomweb.remote import qido as remote_qido
from ..dicomweb.remote import retrieve_job, stow_job, wado_job
from ..dicomweb.servers import parse_server
from ..dicomweb.settings import base_url
from ..dicomweb.state import DicomWebState, state_of
from ..errors import ErrorCode, OrthancError
from ..limits import too_large
from ..registry import CompressionType, Level, Origin
from .app import Api
from .http import Handler, Request, Response, Router, empty_response, json_response
from .jobs import job_options, submit

DEFAULT_ROOT = "/dicom-web"
DEFAULT_WADO = "/wado"
DICOM_JSON = b"application/dicom+json"
_STREAM_CHUNK = 1024 * 1024
_STREAM_THRESHOLD = 8 * 1024 * 1024
_STUDY, _SERIES, _INSTANCE = "/studies/{study}", "/studies/{study}/series/{series}", \
    "/studies/{study}/series/{series}/instances/{instance}"


def _state(api: Api) -> DicomWebState:
    return state_of(api.ctx)


def _base(api: Api, request: Request) -> str:
    return base_url(_state(api).settings, request.headers)


def _origin(request: Request) -> StoreOrigin:
    return StoreOrigin(origin=Origin.REST_API, remote_ip=request.client, username=request.username)


# -- answers --------------------------------------------------------------------------------------

def _wants_xml(accept: str | None) -> bool:
    """JSON (default) or XML answers of QIDO-RS, metadata and STOW-RS; 406 for anything else."""
    ranges = multipart.parse_accept(accept)
    if not ranges:
        return False
    for item in ranges:
        media = item.media
        if media in ("application/dicom+json", "application/json", "*/*", "application/*"):
            return False
        if media == "application/dicom+xml":
            return True
        if media == "multipart/related" and item.type_param == "application/dicom+xml" and \
                item.transfer_syntax is None:
            return True
    raise OrthancError(ErrorCode.NOT_ACCEPTABLE, f"DICOMweb: cannot answer as {accept}")


def _datasets(request: Request, items: list[json_model.Json], base: str, status: int = 200,
              single: bool = False) -> Response:
    """A JSON array (or one JSON object) of data sets, or a multipart of XML documents."""
    if _wants_xml(request.headers.get("accept")):
        boundary = multipart.new_boundary()
        parts = [("application/dicom+xml", json_model.to_xml(json_model.absolute_tree(i, base))) for i in items]
        return Response(status, multipart.build(boundary, parts),
                        multipart.multipart_type(boundary, "application/dicom+xml"))
    body = json_model.dumps(items[0] if single else items)
    return Response(status, json_model.absolute(body, base), DICOM_JSON)


def _json_array(request: Request, bodies: list[bytes], base: str) -> Response:
    """Cached metadata (compact JSON per instance) as one answer."""
    if _wants_xml(request.headers.get("accept")):
        return _datasets(request, [orjson.loads(b) for b in bodies], base)
    return Response(200, json_model.absolute(b"[" + b",".join(bodies) + b"]", base), DICOM_JSON)


# -- QIDO-RS -------------------------------------------------------------------------------------

def _qido(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, study: str | None = None, series: str | None = None) -> Response:
        state = _state(api)
        _wants_xml(request.headers.get("accept"))  # 406 before any work
        search = qido.parse_search(level, qido.query_pairs(request.query_string),
                                   state.settings.qido_case_sensitive, study, series)
        base = _base(api, request)
        answers, more, found = await api.run(qido.search, api.ctx, state, search, base)
        if level == Level.SERIES and study is not None:
            state.cache.schedule(found)  # a viewer opening a study asks for its metadata next
        response = _datasets(request, answers, base)
        if more:
            host = request.headers.get("host", "donjon")
            response.headers.append((b"warning", f'299 {host} "There are additional results that can be '
                                                 f'requested"'.encode("latin_1", "replace")))
        return response
    return handler


# -- WADO-RS: instances -----------------------------------------------------------------------------

def _refs(api: Api, study: str, series: str | None = None, instance: str | None = None
          ) -> list[lookup.InstanceRef]:
    def run(tx: Any) -> list[lookup.InstanceRef]:
        return lookup.instances_below(tx, lookup.resolve(tx, study, series, instance))
    return api.ctx.index.read(run)


async def _retrieve(api: Api, request: Request, study: str, series: str | None = None,
                    instance: str | None = None) -> Response:
    refs = await api.run(_refs, api, study, series, instance)
    choice = wado.choose_instance_syntax(request.headers.get("accept"), refs)
    boundary = multipart.new_boundary()
    return Response(200, b"", multipart.multipart_type(boundary, wado.DICOM),
                    stream=_stream_instances(api, refs, choice, boundary))


async def _stream_instances(api: Api, refs: list[lookup.InstanceRef], choice: wado.InstanceChoice,
                            boundary: str) -> AsyncIterator[bytes]:
    """One part per instance, read (or transcoded) one at a time; big raw files are sent in chunks."""
    ctx = api.ctx
    loop = asyncio.get_running_loop()
    for ref in refs:
        info = ref.file
        stored = ref.transfer_syntax or transcode.IMPLICIT_LE
        path = ctx.storage.path_of(info.uuid) if info is not None else None
        if info is not None and path is not None and info.compression == CompressionType.NONE and \
                info.compressed_size > _STREAM_THRESHOLD and choice.syntax in (None, stored):
            try:
                f = await loop.run_in_executor(api.pool, open, path, "rb")
            except OSError:
                continue  # deleted meanwhile
            try:
                yield multipart.part_header(boundary, wado.dicom_part_type(stored), info.compressed_size)
                while chunk := await loop.run_in_executor(api.pool, f.read, _STREAM_CHUNK):
                    yield chunk
                yield b"\r\n"
            finally:
                f.close()
            continue
        try:
            data, syntax = await api.run(wado.instance_part, ctx, ref, choice)
        except OrthancError as e:
            if e.code in (ErrorCode.INEXISTENT_FILE, ErrorCode.UNKNOWN_RESOURCE):
                continue
            raise
        yield multipart.part_header(boundary, wado.dicom_part_type(syntax), len(data)) + data + b"\r\n"
    yield multipart.closing(boundary)


async def _study(api: Api, request: Request, study: str) -> Response:
    return await _retrieve(api, request, study)


async def _series(api: Api, request: Request, study: str, series: str) -> Response:
    return await _retrieve(api, request, study, series)


async def _instance(api: Api, request: Request, study: str, series: str, instance: str) -> Response:
    return await _retrieve(api, request, study, series, instance)


# -- WADO-RS: metadata ------------------------------------------------------------------------------

def _metadata(api: Api, study: str, series: str | None, instance: str | None) -> list[bytes]:
    ctx, state = api.ctx, _state(api)
    settings = state.settings

    def rows(tx: Any) -> list[tuple[str, list[lookup.InstanceRef], list[bytes | None]]]:
        """Per series: its public id, its instances, and the main-tag blobs above them."""
        found = lookup.resolve(tx, study, series, instance)
        if instance is not None:
            refs = lookup.instance_refs(tx, [r.id for r in found])
            names = tx.public_ids([r.series_id for r in refs])
            return [(names[r.series_id], [r], []) for r in refs]
        series_rows = found if series is not None else tx.resources(
            [sid for r in found for sid, _ in tx.children([r.id])[r.id]])
        studies = {r.id: r for r in tx.resources(list({r.parent_id for r in series_rows if r.parent_id}))}
        out = []
        for row in series_rows:
            st = studies.get(row.parent_id) if row.parent_id is not None else None
            blobs = [st.patient_tags if st else None, st.tags if st else None, row.tags]
            out.append((row.public_id, lookup.instance_refs(tx, tx.descendants(row.id, Level.INSTANCE)), blobs))
        return out

    groups = ctx.index.read(rows)
    mode = "Full" if instance is not None else settings.series_metadata if series is not None \
        else settings.studies_metadata
    bodies: list[bytes] = []
    for series_public, refs, blobs in groups:
        if instance is not None:
            bodies.append(state.cache.instance(ctx, refs[0], series_public))
        elif mode == "Full":
            bodies.extend(state.cache.series(ctx, series_public, refs))
        else:
            bodies.extend(_from_index(api, state, series_public, refs, blobs, mode, series is None))
    return bodies


def _from_index(api: Api, state: DicomWebState, series_public: str, refs: list[lookup.InstanceRef],
                blobs: list[bytes | None], mode: str, study_level: bool) -> list[bytes]:
    """`MainDicomTags` / `Extrapolate` modes: main tags of every level, plus extrapolated tags."""
    ctx = api.ctx
    instance_blobs = ctx.index.read(lambda tx: {r.id: r.tags for r in tx.resources([x.internal_id for x in refs])})
    extra: json_model.Json = {}
    if mode == "Extrapolate" and refs:
        names = state.settings.studies_extrapolated if study_level else state.settings.series_extrapolated
        picks = list(dict.fromkeys([refs[0], refs[len(refs) // 2], refs[-1]]))
        samples = [orjson.loads(state.cache.instance(ctx, r, series_public)) for r in picks]
        extra = metadata.extrapolate(samples, names)
    out = []
    for ref in refs:
        item = metadata.main_tags_json([*blobs, instance_blobs.get(ref.internal_id)], ref.sop_class)
        item.update(extra)
        out.append(json_model.dumps(item))
    return out


async def _metadata_route(api: Api, request: Request, study: str, series: str | None = None,
                          instance: str | None = None) -> Response:
    _wants_xml(request.headers.get("accept"))
    bodies = await api.run(_metadata, api, study, series, instance)
    return _json_array(request, bodies, _base(api, request))


# -- WADO-RS: frames, bulk data, rendered ------------------------------------------------------------

def _one(api: Api, study: str, series: str, instance: str) -> lookup.InstanceRef:
    refs = _refs(api, study, series, instance)
    if not refs:
        raise lookup.not_found(Level.INSTANCE, instance)
    return refs[0]


async def _frames(api: Api, request: Request, study: str, series: str, instance: str, frames: str) -> Response:
    numbers = wado.parse_frame_list(frames)
    ref = await api.run(_one, api, study, series, instance)
    parts = await api.run(wado.frames, api.ctx, ref, numbers, request.headers.get("accept"))
    base = _base(api, request)
    boundary = multipart.new_boundary()
    body = b"".join(multipart.part_header(boundary, kind, len(data), f"{base}{ref.path}/frames/{n}") + data + b"\r\n"
                    for n, (kind, data) in zip(numbers, parts, strict=True)) + multipart.closing(boundary)
    first = multipart.parse_media_type(parts[0][0])
    syntax = first.transfer_syntax if all(kind == parts[0][0] for kind, _ in parts) else None
    return Response(200, body, multipart.multipart_type(boundary, first.media, syntax))


async def _bulk(api: Api, request: Request, study: str, series: str, instance: str, path: list[str]) -> Response:
    wado.check_bulk_accept(request.headers.get("accept"))
    ref = await api.run(_one, api, study, series, instance)
    values = await api.run(wado.bulk, api.ctx, ref, path)
    boundary = multipart.new_boundary()
    return Response(200, multipart.build(boundary, [(wado.OCTET, v) for v in values]),
                    multipart.multipart_type(boundary, wado.OCTET))


def _rendered(thumbnail: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, study: str, series: str | None = None,
                      instance: str | None = None, frames: str | None = None) -> Response:
        mime = render.negotiate_image(request.headers.get("accept"))
        if mime is None:
            raise OrthancError(ErrorCode.NOT_ACCEPTABLE, "DICOMweb: rendered images are JPEG, PNG or GIF")
        try:
            options = render.parse_options(request.query, thumbnail)
        except render.BadRenderParameter as e:
            raise OrthancError(ErrorCode.BAD_REQUEST, f"DICOMweb: {e}") from None
        index = wado.parse_frame_list(frames)[0] - 1 if frames is not None else 0
        refs = await api.run(_refs, api, study, series, instance)
        if not refs:
            raise lookup.not_found(Level.SERIES if series else Level.STUDY, series or study)
        body = await api.run(_render, api, refs[0], index, mime, options)
        return Response(200, body, mime.encode())
    return handler


def _render(api: Api, ref: lookup.InstanceRef, index: int, mime: str, options: render.RenderOptions) -> bytes:
    if ref.file is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    data = read_attachment(api.ctx.storage, ref.file)
    try:
        return render.render(data, ref.transfer_syntax, index, mime, options)
    except IndexError:
        raise OrthancError(ErrorCode.BAD_REQUEST, f"DICOMweb: frame {index + 1} does not exist") from None
    except render.Unrenderable as e:
        raise OrthancError(ErrorCode.NOT_ACCEPTABLE, f"DICOMweb: cannot render this image: {e}") from None
    except render.BadRenderParameter as e:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"DICOMweb: {e}") from None
    except render.RenderTooLarge as e:
        raise too_large(f"DICOMweb: {e}") from None


# -- STOW-RS ---------------------------------------------------------------------------------------

async def _stow(api: Api, request: Request, study: str | None = None) -> Response:
    boundary = stow.check_content_type(request.headers.get("content-type", ""))
    _wants_xml(request.headers.get("accept"))
    reader = multipart.MultipartReader(boundary)
    outcome = stow.StowOutcome()
    origin = _origin(request)
    ctx = api.ctx

    async def store(parts: list[multipart.Part]) -> None:
        for part in parts:
            if stow.part_is_dicom(part.headers):
                await api.run(stow.store_part, ctx, part.body, origin, study, outcome)
            else:
                outcome.failed.append((None, None, stow.CANNOT_UNDERSTAND))

    if request.receive is not None and getattr(request, "_body", None) is None:
        while True:  # an ASGI server streams the body: parts are stored as they arrive
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ConnectionAbortedError("client disconnected")
            await store(reader.feed(message.get("body", b"")))
            if not message.get("more_body", False):
                break
    else:
        await store(reader.feed(await request.body()))
    if not reader.done and not outcome.stored and not outcome.failed:
        raise OrthancError(ErrorCode.BAD_REQUEST, "STOW-RS: malformed multipart body")
    if not outcome.stored and not outcome.failed:
        raise OrthancError(ErrorCode.BAD_REQUEST, "STOW-RS: the body has no part")
    charset = "ISO_IR 192"
    base = _base(api, request)
    return _datasets(request, [outcome.dataset(base, charset)], base, outcome.status, single=True)


# -- WADO-URI -------------------------------------------------------------------------------------

async def _wado_uri(api: Api, request: Request) -> Response:
    """`/wado?requestType=WADO&studyUID=&seriesUID=&objectUID=&contentType=...` (PS3.18 §9)."""
    q = request.query
    if q.get("requestType") != "WADO" or not q.get("objectUID"):
        raise OrthancError(ErrorCode.BAD_REQUEST, "WADO-URI: requestType=WADO and objectUID are required")
    uid = q["objectUID"]

    def find(tx: Any) -> lookup.InstanceRef:
        ids = [rid for rid, _ in tx.lookup_identifier(Level.INSTANCE, lookup.SOP_UID, uid)]
        for ref in lookup.instance_refs(tx, ids):
            if ref.sop_uid == uid and q.get("seriesUID", ref.series_uid) == ref.series_uid and \
                    q.get("studyUID", ref.study_uid) == ref.study_uid:
                return ref
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"WADO-URI: no instance {uid} in that series or study")
    ref = await api.run(api.ctx.index.read, find)
    content_types = [c.strip().lower() for c in q.get("contentType", "image/jpeg").split(",")]
    for content_type in content_types:
        if content_type == "application/dicom":
            syntax = q.get("transferSyntax")
            choice = wado.InstanceChoice(syntax, False) if syntax else wado.InstanceChoice(None, False)
            data, _ = await api.run(wado.instance_part, api.ctx, ref, choice)
            return Response(200, data, b"application/dicom")
        mime = {"image/jpg": render.JPEG, "image/*": render.JPEG, "*/*": render.JPEG}.get(content_type, content_type)
        if mime in (render.JPEG, render.PNG, render.GIF):
            return await _wado_uri_image(api, q, ref, mime)
    raise OrthancError(ErrorCode.NOT_ACCEPTABLE, f"WADO-URI: unsupported contentType {q.get('contentType')}")


async def _wado_uri_image(api: Api, q: dict[str, str], ref: lookup.InstanceRef, mime: str) -> Response:
    """A rendered image of WADO-URI; every parameter checked first (400 rather than a failed render)."""
    try:
        frame = _positive(q.get("frameNumber", "1"), "frameNumber")
        quality = _positive(q.get("imageQuality", "90"), "imageQuality")
        center, width = q.get("windowCenter"), q.get("windowWidth")
        window = (render.finite(center, "windowCenter"), render.finite(width, "windowWidth"), "linear") \
            if center and width else None
        rows, columns = q.get("rows"), q.get("columns")
        size = (_positive(columns, "columns") if columns else 65535, _positive(rows, "rows") if rows else 65535) \
            if rows or columns else None
    except render.BadRenderParameter as e:
        raise OrthancError(ErrorCode.BAD_REQUEST, f"WADO-URI: {e}") from None
    if quality > 100 or (window is not None and window[1] <= 0):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, "WADO-URI: parameter out of range")
    options = render.RenderOptions(window=window, quality=quality, max_size=size)
    return Response(200, await api.run(_render, api, ref, frame - 1, mime, options), mime.encode())


def _positive(text: str, name: str) -> int:
    """A positive integer parameter of WADO-URI (at most 9 digits: no overflow, no huge allocation)."""
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or len(t) > 9 or int(t) < 1:
        raise render.BadRenderParameter(f"{name} must be a positive integer")
    return int(t)


# -- remote DICOMweb servers ---------------------------------------------------------------------------

def _server(api: Api, name: str) -> Any:
    server = _state(api).servers(api.ctx).get(name)
    if server is None:
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"Unknown DICOMweb server: {name}")
    return server


async def _servers(api: Api, request: Request) -> Response:
    registry = _state(api).servers(api.ctx)
    if "expand" in request.query and request.flag("expand"):
        return json_response({name: s.public() for name, s in sorted(registry.all().items())})
    return json_response(registry.names())


async def _server_get(api: Api, request: Request, name: str) -> Response:
    return json_response(_server(api, name).operations())


async def _server_put(api: Api, request: Request, name: str) -> Response:
    try:
        server = parse_server(name, await request.json())
    except ValueError as e:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Bad definition of a DICOMweb server: {e}") from None
    await api.run(_state(api).servers(api.ctx).put, api.ctx, server)
    return empty_response()


async def _server_delete(api: Api, request: Request, name: str) -> Response:
    if not await api.run(_state(api).servers(api.ctx).delete, api.ctx, name):
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"Unknown DICOMweb server: {name}")
    return empty_response()


async def _server_get_route(api: Api, request: Request, name: str) -> Response:
    body, content_type = await api.run(remote_get, api.ctx, _server(api, name), await request.json())
    return Response(200, body, content_type.encode("latin_1"))


async def _server_qido(api: Api, request: Request, name: str) -> Response:
    return json_response(await api.run(remote_qido, api.ctx, _server(api, name), await request.json()))


def _server_job(make: Any, default_synchronous: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, name: str) -> Response:
        body = await request.json()
        synchronous, priority, _ = job_options(body, default_synchronous)
        job = await api.run(make, api.ctx, _server(api, name), body)
        return await submit(api, job, synchronous, priority)
    return handler


async def _update_cache(api: Api, request: Request, id: str) -> Response:
    """Orthanc 1.15's route to (re)build the metadata cache of a study's series."""
    ctx = api.ctx

    def run() -> int:
        found = ctx.index.read(lambda tx: tx.lookup(id))
        if found is None or found[1] != Level.STUDY:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        series = ctx.index.read(lambda tx: [pub for _, pub in tx.children([found[0]])[found[0]]])
        return sum(_state(api).cache.refresh(ctx, s) for s in series)
    await api.run(run)
    return empty_response()


# -- routing ----------------------------------------------------------------------------------------

ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/studies", _qido(Level.STUDY)),
    ("GET", "/series", _qido(Level.SERIES)),
    ("GET", "/instances", _qido(Level.INSTANCE)),
    ("GET", f"{_STUDY}/series", _qido(Level.SERIES)),
    ("GET", f"{_STUDY}/instances", _qido(Level.INSTANCE)),
    ("GET", f"{_SERIES}/instances", _qido(Level.INSTANCE)),
    ("POST", "/studies", _stow),
    ("POST", _STUDY, _stow),
    ("GET", _STUDY, _study),
    ("GET", _SERIES, _series),
    ("GET", _INSTANCE, _instance),
    ("GET", f"{_STUDY}/metadata", _metadata_route),
    ("GET", f"{_SERIES}/metadata", _metadata_route),
    ("GET", f"{_INSTANCE}/metadata", _metadata_route),
    ("GET", f"{_INSTANCE}/frames/{{frames}}", _frames),
    ("GET", f"{_INSTANCE}/bulk/{{path:path}}", _bulk),
    ("GET", "/servers", _servers),
    ("GET", "/servers/{name}", _server_get),
    ("PUT", "/servers/{name}", _server_put),
    ("DELETE", "/servers/{name}", _server_delete),
    ("POST", "/servers/{name}/get", _server_get_route),
    ("POST", "/servers/{name}/qido", _server_qido),
    ("POST", "/servers/{name}/stow", _server_job(stow_job, True)),
    ("POST", "/servers/{name}/retrieve", _server_job(retrieve_job, True)),
    ("POST", "/servers/{name}/wado", _server_job(wado_job, False)),
]
for _kind, _thumbnail in (("rendered", False), ("thumbnail", True)):
    for _prefix in (_STUDY, _SERIES, _INSTANCE, f"{_INSTANCE}/frames/{{frames}}"):
        ROUTES.append(("GET", f"{_prefix}/{_kind}", _rendered(_thumbnail)))

_INNER = Router()
for _method, _pattern, _handler in ROUTES:
    _INNER.add(_method, _pattern, _handler)


def _guarded(handler: Handler) -> Handler:
    """A route under the default root answers only when DICOMweb is enabled there."""
    async def guarded(api: Api, request: Request, **params: Any) -> Response:
        settings = _state(api).settings
        if not settings.enable or settings.root_components != [DEFAULT_ROOT.strip("/")]:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        return await handler(api, request, **params)
    return guarded


async def _default_wado(api: Api, request: Request) -> Response:
    settings = _state(api).settings
    if not settings.enable or not settings.enable_wado or settings.wado_components != [DEFAULT_WADO.strip("/")]:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return await _wado_uri(api, request)


async def _other_roots(api: Api, request: Request, dwroot: str, rest: list[str] | None = None) -> Response:
    """Paths under a `Root` or `WadoRoot` other than the defaults (else Orthanc's 404, as before)."""
    settings = _state(api).settings
    comps = request.components
    if settings.enable:
        if settings.enable_wado and comps == settings.wado_components and request.method == "GET" and \
                settings.wado_components != [DEFAULT_WADO.strip("/")]:
            return await _wado_uri(api, request)
        root = settings.root_components
        if root != [DEFAULT_ROOT.strip("/")] and comps[:len(root)] == root:
            handlers, params = _INNER.resolve(comps[len(root):])
            if handlers is not None:
                handler = handlers.get(request.method)
                if handler is None:
                    allowed = ",".join(m for m in ("GET", "POST", "PUT", "DELETE") if m in handlers)
                    return Response(405, headers=[(b"allow", allowed.encode())])
                return await handler(api, request, **params)
    raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)


def register(router: Router) -> None:
    for method, pattern, handler in ROUTES:
        router.add(method, DEFAULT_ROOT + pattern, _guarded(handler))
    router.add("GET", DEFAULT_WADO, _default_wado)
    router.add("POST", "/studies/{id}/update-dicomweb-cache", _update_cache)
    for method in ("GET", "POST", "PUT", "DELETE"):
        router.add(method, "/{dwroot}", _other_roots)
        router.add(method, "/{dwroot}/{rest:path}", _other_roots)
