"""`/modalities`: the known DICOM modalities, and what Donjon does to them as SCU.

CRUD on the list (configuration or index, `DicomModalitiesInDatabase`), C-ECHO (`/echo`,
`/tools/dicom-echo`), C-FIND (`/query`, kept in `/queries`; the deprecated `/find-*`), C-MOVE
(`/move`, a DicomMoveScu job) and C-STORE (`/store`, a DicomModalityStore job; `/store-straight`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import orjson

from ..core.views import TagFormat
from ..dicom.main_tags import MAIN_TAGS
from ..errors import ErrorCode, OrthancError
from ..jobs.instances import expand_instances
from ..network import scu
from ..network.jobs import DicomGetScuJob, DicomModalityStoreJob, DicomMoveScuJob, log_exports
from ..network.modalities import RemoteModality, check_name, modalities_of, parse_modality
from ..network.queries import LEVEL_NAMES, QUERY_RETRIEVE_LEVEL, queries_of, run_query, values_to_json
from ..registry import Level, parse_level
from .app import Api
from .http import EMPTY_JSON_OBJECT, Request, Response, Router, empty_response, json_response
from .jobs import job_options, submit
from .named_lists import delete_response, list_response, routes_response
from .tools import parse_tag

_SUB_ROUTES = ["configuration", "echo", "find", "find-instance", "find-patient", "find-series", "find-study",
               "find-worklist", "move", "query", "storage-commitment", "store", "store-straight"]
_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{8}){4}")


def register(router: Router) -> None:
    router.add("GET", "/modalities", list_modalities)
    router.add("GET", "/modalities/{id}", modality_routes)
    router.add("GET", "/modalities/{id}/configuration", get_configuration)
    router.add("PUT", "/modalities/{id}", put_modality)
    router.add("DELETE", "/modalities/{id}", delete_modality)
    router.add("POST", "/modalities/{id}/echo", echo_modality)
    router.add("POST", "/tools/dicom-echo", echo_tool)
    router.add("POST", "/modalities/{id}/query", query_modality)
    for level in Level:
        router.add("POST", f"/modalities/{{id}}/find-{level.type_name.lower()}", _find_route(level))
    router.add("POST", "/modalities/{id}/move", move_modality)
    router.add("POST", "/modalities/{id}/get", get_modality)
    router.add("POST", "/modalities/{id}/store", store_modality)
    router.add("POST", "/modalities/{id}/store-straight", store_straight)


# -- helpers --------------------------------------------------------------------------------------------

async def json_body(request: Request, empty: Any = None) -> Any:
    """The JSON body; `empty` for an empty body; not JSON -> 400 BadFileFormat (Orthanc's code)."""
    body = await request.body(64 * 1024 * 1024)
    if not body.strip():
        if empty is not None:
            return empty
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON value")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT) from None


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON object")
    return value


def string_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"String value expected in field: {name}")
    return value


def uint_field(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Unsigned integer value expected in field: {name}")
    return value


def bool_field(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {name}")
    return value


def tags_field(body: dict[str, Any], name: str) -> dict[int, str]:
    """An object of DICOM tags (names or `gggg,eeee`) to strings."""
    value = body.get(name, {})
    bad = OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Associative array of DICOM tags to strings expected in field: {name}")
    if not isinstance(value, dict):
        raise bad
    out: dict[int, str] = {}
    for key, text in value.items():
        if not isinstance(text, str):
            raise bad
        try:
            out[parse_tag(key)] = text
        except OrthancError:
            raise bad from None
    return out


def dicom_format(body: dict[str, Any] | None, default: TagFormat = TagFormat.SHORT) -> TagFormat:
    """`Simplify` / `Short` / `Full` flags of a body."""
    if not body:
        return default
    if body.get("Simplify") is True:
        return TagFormat.HUMAN
    if body.get("Short") is True:
        return TagFormat.SHORT
    if body.get("Full") is True:
        return TagFormat.FULL
    return default


def format_name(fmt: TagFormat) -> str:
    return {TagFormat.HUMAN: "simplify", TagFormat.SHORT: "short", TagFormat.FULL: "full"}[fmt]


def modality(api: Api, name: str) -> RemoteModality:
    return modalities_of(api.ctx).require(name)


# -- CRUD -----------------------------------------------------------------------------------------------

async def list_modalities(api: Api, request: Request) -> Response:
    return list_response(request, modalities_of(api.ctx), lambda m: m.full_form())


async def modality_routes(api: Api, request: Request, id: str) -> Response:
    return routes_response(modalities_of(api.ctx), id, _SUB_ROUTES)


async def get_configuration(api: Api, request: Request, id: str) -> Response:
    return json_response(modality(api, id).full_form())


async def put_modality(api: Api, request: Request, id: str) -> Response:
    check_name(id)
    spec = parse_modality(await json_body(request))
    await api.run(modalities_of(api.ctx).put, id, spec)
    return empty_response()


async def delete_modality(api: Api, request: Request, id: str) -> Response:
    return await delete_response(api, modalities_of(api.ctx), id, f"Unknown DICOM modality with symbolic name: {id}")


# -- C-ECHO ---------------------------------------------------------------------------------------------

async def _echo(api: Api, target: RemoteModality, body: dict[str, Any]) -> Response:
    timeout = uint_field(body, "Timeout")
    check_find = bool_field(body, "CheckFind", bool(api.ctx.config["DicomEchoChecksFind"]))
    await api.run(scu.echo, scu.target_for(api.ctx, target, None, timeout), check_find)
    return EMPTY_JSON_OBJECT


async def echo_modality(api: Api, request: Request, id: str) -> Response:
    target = modality(api, id)
    return await _echo(api, target, _object(await json_body(request, {})))


async def echo_tool(api: Api, request: Request) -> Response:
    body = await json_body(request)
    target = parse_modality(body)
    return await _echo(api, target, body if isinstance(body, dict) else {})


# -- C-FIND ---------------------------------------------------------------------------------------------

async def query_modality(api: Api, request: Request, id: str) -> Response:
    target = modality(api, id)
    body = _object(await json_body(request))
    level_text = body.get("Level")
    if not isinstance(level_text, str):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The JSON body must contain field Level")
    level = parse_level(level_text)
    fields = tags_field(body, "Query")
    normalize = bool_field(body, "Normalize", True)
    local_aet = string_field(body, "LocalAet")
    timeout = uint_field(body, "Timeout")
    record = await api.run(run_query, api.ctx, id, target, level, fields, normalize, local_aet, timeout)
    qid = queries_of(api.ctx).add(record)
    return json_response({"ID": qid, "Path": f"/queries/{qid}"})


def _find_route(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        """Deprecated `/find-{level}`: the level's main tags as template, answers simplified."""
        target = modality(api, id)
        body = {"Query": _object(await json_body(request, {}))}
        fields = {tag: "" for lvl in Level if lvl <= level for tag, _ in MAIN_TAGS[lvl]}
        fields.update(tags_field(body, "Query"))
        record = await api.run(run_query, api.ctx, id, target, level, fields, True, None, None)
        return json_response([values_to_json(api.ctx, a, TagFormat.HUMAN) for a in record.answers])
    return handler


# -- C-MOVE ---------------------------------------------------------------------------------------------

async def submit_move(api: Api, job: DicomMoveScuJob, synchronous: bool, priority: int) -> Response:
    """A synchronous C-MOVE failing with "unable to process" answers 422, as Orthanc."""
    try:
        return await submit(api, job, synchronous, priority)
    except OrthancError as e:
        if e.code == ErrorCode.NETWORK_PROTOCOL and e.details and "(unable to process" in e.details:
            raise OrthancError(e.code, e.details, http_status=422) from None
        raise


async def get_modality(api: Api, request: Request, id: str) -> Response:
    """C-GET SCU (Orthanc 1.12.6+): like `/move`, the instances coming back over the association."""
    return await move_modality(api, request, id, get=True)


async def move_modality(api: Api, request: Request, id: str, get: bool = False) -> Response:
    target = modality(api, id)
    body = _object(await json_body(request))
    resources, level_text = body.get("Resources"), body.get("Level")
    if not isinstance(resources, list) or not isinstance(level_text, str):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON body containing fields Resources and Level")
    level = parse_level(level_text)
    queries = []
    for item in resources:
        values = tags_field({"Resource": item}, "Resource")
        values[QUERY_RETRIEVE_LEVEL] = LEVEL_NAMES[level]
        queries.append(values)
    target_aet = string_field(body, "TargetAet") or api.ctx.config["DicomAet"]
    synchronous, priority, permissive = job_options(body)
    job_class = DicomGetScuJob if get else DicomMoveScuJob
    job = job_class(api.ctx, target, queries, target_aet, string_field(body, "LocalAet"),
                    uint_field(body, "Timeout"), permissive=permissive)
    return await submit_move(api, job, synchronous, priority)


# -- C-STORE --------------------------------------------------------------------------------------------

def parse_resources(body: bytes) -> tuple[list[str], dict[str, Any]]:
    """Orthanc's bodies of a store request: an ID (plain text or JSON string), an array of IDs, or an
    object with `Resources` and options."""
    try:
        value: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        if not text:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON value") from None
        value = text
    options: dict[str, Any] = {}
    if isinstance(value, str):
        items: Any = [value.strip()]
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        if "Resources" not in value:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Missing field in JSON: "Resources"')
        items, options = value["Resources"], value
        if not isinstance(items, list):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON object, or a JSON array of strings")
    else:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON object, or a JSON array of strings")
    for item in items:
        if not isinstance(item, str) or not _ORTHANC_ID.fullmatch(item):
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"This string is not a valid Orthanc identifier: {item}")
    return list(items), options


async def store_modality(api: Api, request: Request, id: str) -> Response:
    target = modality(api, id)
    ids, options = parse_resources(await request.body(64 * 1024 * 1024))
    if bool_field(options, "StorageCommitment", False):
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "Storage commitment is not supported by Donjon yet")
    called, host, port = string_field(options, "CalledAet"), string_field(options, "Host"), options.get("Port")
    if called or host or port is not None:
        spec = target.full_form()
        spec.update({k: v for k, v in (("AET", called), ("Host", host), ("Port", port)) if v})
        target = replace(parse_modality(spec), flags=target.flags)
    originator_aet = string_field(options, "MoveOriginatorAet") or api.ctx.config["DicomAet"]
    originator_id = uint_field(options, "MoveOriginatorID") or 0
    if originator_id > 65535:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, "MoveOriginatorID must be below 65536")
    synchronous, priority, permissive = job_options(options)
    instances = await api.run(expand_instances, api.ctx, ids, None, OrthancError(ErrorCode.UNKNOWN_RESOURCE))
    job = DicomModalityStoreJob(api.ctx, instances, target, permissive=permissive, parent_resources=ids,
                                local_aet=string_field(options, "LocalAet"), timeout=uint_field(options, "Timeout"),
                                move_originator=(originator_aet, originator_id) if originator_id else None)
    await api.run(log_exports, api.ctx, ids, id)
    return await submit(api, job, synchronous, priority)


async def store_straight(api: Api, request: Request, id: str) -> Response:
    target = scu.target_for(api.ctx, modality(api, id))
    data = await request.body()

    def run() -> scu.Prepared:
        conn = scu.StoreConnection(target)
        try:
            return conn.store(data)
        finally:
            conn.close()
    prepared = await api.run(run)
    return json_response({"SOPClassUID": prepared.sop_class, "SOPInstanceUID": prepared.sop_instance})


__all__ = ["dicom_format", "format_name", "json_body", "register"]
