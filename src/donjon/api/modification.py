"""`/modify` and `/anonymize` of patients, studies, series (jobs) and instances (direct answer), bulk variants."""

from __future__ import annotations

from typing import Any

import orjson

from ..core.attachments import read_attachment
from ..core.store import StoreOrigin
from ..dicom.modify import PATIENT_NAME, Modification
from ..errors import ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..jobs.instances import expand_instances
from ..jobs.modification import ResourceModificationJob
from ..registry import ContentType, GlobalProperty, Level, Origin, parse_level
from .app import Api
from .http import Request, Response, Router
from .jobs import job_options, submit


def register(router: Router) -> None:
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        router.add("POST", f"/{level.collection}/{{id}}/modify", _resource_route(level, anonymize=False))
        router.add("POST", f"/{level.collection}/{{id}}/anonymize", _resource_route(level, anonymize=True))
    router.add("POST", "/instances/{id}/modify", _instance_route(anonymize=False))
    router.add("POST", "/instances/{id}/anonymize", _instance_route(anonymize=True))
    router.add("POST", "/tools/bulk-modify", _bulk_route(anonymize=False))
    router.add("POST", "/tools/bulk-anonymize", _bulk_route(anonymize=True))


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body(64 * 1024 * 1024)
    try:
        value = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT) from None
    if not isinstance(value, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT)
    return value


def _next_anonymized_name(api: Api) -> str:
    """`Anonymized<N>`, N from the global counter (global property 3), one per request."""
    def run(tx: Any) -> int:
        current = tx.global_property(GlobalProperty.ANONYMIZATION_SEQUENCE)
        try:
            value = int(current) + 1 if current else 1
        except ValueError:
            value = 1
        tx.set_global_property(GlobalProperty.ANONYMIZATION_SEQUENCE, str(value))
        return value
    return f"Anonymized{api.ctx.index.write(run)}"


async def _parse(api: Api, body: dict[str, Any], anonymize: bool) -> Modification:
    creator = str(api.ctx.config["DefaultPrivateCreator"] or "")
    if not anonymize:
        return Modification.from_modify_request(body, creator)
    modification, name_decided = Modification.from_anonymization_request(body, creator)
    if not name_decided:
        modification.replace(PATIENT_NAME, await api.run(_next_anonymized_name, api))
    return modification


def _check_unsupported(body: dict[str, Any]) -> None:
    if "Transcode" in body:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "Donjon cannot transcode yet (\"Transcode\")")


def _keep_source(body: dict[str, Any]) -> bool:
    value = body.get("KeepSource", True)
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Member "KeepSource" should be a Boolean value')
    return value


def _origin(request: Request) -> StoreOrigin:
    return StoreOrigin(origin=Origin.REST_API, remote_ip=request.client, username=request.username)


def _resource_route(level: Level, anonymize: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        body = await _json_object(request)
        modification = await _parse(api, body, anonymize)
        if not anonymize:
            modification.level = level
        _check_unsupported(body)
        synchronous, priority, permissive = job_options(body)
        keep_source = _keep_source(body)
        instances = await api.run(expand_instances, api.ctx, [id], level)
        job = ResourceModificationJob(api.ctx, modification, instances, level, _origin(request),
                                      keep_source=keep_source, permissive=permissive, parent_resources=[id])
        return await submit(api, job, synchronous, priority)
    return handler


def _instance_route(anonymize: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        body = await _json_object(request)
        modification = await _parse(api, body, anonymize)
        if not anonymize:
            modification.level = modification.instance_level()
        _check_unsupported(body)
        ctx = api.ctx
        info = ctx.index.reader().instance_attachment(id, ContentType.DICOM)
        if not isinstance(info, FileInfo):
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)

        def run() -> bytes:
            data = read_attachment(ctx.storage, info)
            return modification.apply_to_bytes(data, ctx.default_encoding)
        return Response(200, await api.run(run), b"application/dicom")
    return handler


def _bulk_route(anonymize: bool):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request) -> Response:
        body = await _json_object(request)
        modification = await _parse(api, body, anonymize)
        resources = body.get("Resources")
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Field "Resources" must be an array of strings')
        if not anonymize:
            if "Level" in body:
                if not isinstance(body["Level"], str):
                    raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Field "Level" must be a string')
                modification.level = parse_level(body["Level"])
            else:
                modification.level = modification.instance_level()
        _check_unsupported(body)
        synchronous, priority, permissive = job_options(body)
        keep_source = _keep_source(body)
        instances = await api.run(expand_instances, api.ctx, list(resources), None)
        job = ResourceModificationJob(api.ctx, modification, sorted(set(instances)), None, _origin(request),
                                      keep_source=keep_source, permissive=permissive,
                                      parent_resources=list(resources))
        return await submit(api, job, synchronous, priority)
    return handler
