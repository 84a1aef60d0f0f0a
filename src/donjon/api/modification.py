"""`/modify` and `/anonymize` of patients, studies, series (jobs), of instances (direct answer), bulk; split, merge."""

from __future__ import annotations

from typing import Any

import orjson
from pydicom.datadict import keyword_for_tag

from ..core.attachments import read_attachment
from ..core.store import StoreOrigin
from ..dicom.modify import PATIENT_NAME, PATIENT_STUDY_MODULE_TAGS, Modification, Restructuring, parse_tag
from ..errors import ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..jobs.instances import expand_instances
from ..jobs.merge_split import MergeStudyJob, SplitStudyJob, new_study_uid
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
    router.add("POST", "/studies/{id}/split", split_study)
    router.add("POST", "/studies/{id}/merge", merge_study)


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


def _keep_source(body: dict[str, Any], default: bool = True) -> bool:
    value = body.get("KeepSource", default)
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


# -- Split and Merge --------------------------------------------------------------------------------
def _string_list(body: dict[str, Any], name: str) -> list[str]:
    value = body[name]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"List of strings expected in field: {name}")
    return value


def _module_tag(name: str) -> int:
    tag = parse_tag(name)
    if tag not in PATIENT_STUDY_MODULE_TAGS:
        keyword = keyword_for_tag(tag) or name
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, "Cannot modify the following tag while splitting a study "
                           f"(not in the patient/study modules): {keyword} ({tag >> 16:04x},{tag & 0xFFFF:04x})")
    return tag


def _children_of(tx: Any, study: int, ids: list[str], level: Level, what: str) -> list[str]:
    out: list[str] = []
    for pub in ids:
        found = tx.lookup(pub)
        if found is None or found[1] != level:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        row = tx.resource(found[0])
        while row is not None and row.level > Level.STUDY:
            row = tx.resource(row.parent_id)
        if row is None or row.id != study:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"This {what} does not belong to the study to be split: {pub}")
        descendants = tx.descendants(found[0], Level.INSTANCE)
        names = tx.public_ids(descendants)
        out.extend(names[i] for i in descendants)
    return out


async def split_study(api: Api, request: Request, id: str) -> Response:
    body = await _json_object(request)
    if "Series" not in body and "Instances" not in body:
        raise OrthancError(ErrorCode.BAD_REQUEST, 'Both the "Series" and the "Instances" fields are missing')
    series = _string_list(body, "Series") if "Series" in body else []
    instances = _string_list(body, "Instances") if "Instances" in body else []
    restructuring = Restructuring(study_uid=new_study_uid())
    if "Replace" in body:
        replace = body["Replace"]
        if not isinstance(replace, dict) or not all(isinstance(v, str) for v in replace.values()):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Field "Replace" must be an object of strings')
        restructuring.replacements = {_module_tag(k): v for k, v in replace.items()}
    if "Remove" in body:
        restructuring.removals = {_module_tag(k) for k in _string_list(body, "Remove")}
    synchronous, priority, permissive = job_options(body)
    keep_source = _keep_source(body, default=False)

    def expand(tx: Any) -> list[str]:
        found = tx.lookup(id)
        if found is None or found[1] != Level.STUDY:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        out = _children_of(tx, found[0], series, Level.SERIES, "series")
        out += _children_of(tx, found[0], instances, Level.INSTANCE, "instance")
        return list(dict.fromkeys(out))
    moved = await api.run(api.ctx.index.read, expand)
    job = SplitStudyJob(api.ctx, moved, restructuring, _origin(request), keep_source, permissive=permissive)
    return await submit(api, job, synchronous, priority)


async def merge_study(api: Api, request: Request, id: str) -> Response:
    body = await _json_object(request)
    resources = _string_list(body, "Resources") if "Resources" in body else None
    if resources is None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "List of strings expected in field: Resources")
    synchronous, priority, permissive = job_options(body)
    keep_source = _keep_source(body, default=False)

    def expand(tx: Any) -> tuple[list[str], str, str]:
        found = tx.lookup(id)
        if found is None or found[1] != Level.STUDY:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        target_instances = tx.descendants(found[0], Level.INSTANCE)
        if not target_instances:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        out: list[str] = []
        for pub in resources:
            hit = tx.lookup(pub)
            if hit is None:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Cannot find this resource: {pub}")
            if hit[1] == Level.PATIENT:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, "This resource is neither a study, nor a series, "
                                                               f"nor an instance: {pub} is a Patient")
            if pub == id:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Cannot merge a study into the same study: {pub}")
            ids = tx.descendants(hit[0], Level.INSTANCE)
            names = tx.public_ids(ids)
            out.extend(names[i] for i in ids)
        row = tx.resource(found[0])
        tags = orjson.loads(row.tags) if row is not None and row.tags else {}
        target_instance = tx.public_ids(target_instances[:1])[target_instances[0]]
        return list(dict.fromkeys(out)), str(tags.get("0020,000d", "")), target_instance
    moved, study_uid, target_instance = await api.run(api.ctx.index.read, expand)
    job = MergeStudyJob(api.ctx, moved, Restructuring(study_uid=study_uid), _origin(request), keep_source,
                        id, target_instance, permissive=permissive)
    return await submit(api, job, synchronous, priority)
