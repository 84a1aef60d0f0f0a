"""`/queries`: the answers of C-FIND requests sent to modalities, child queries and retrieves.

A query lives in memory (`QueryRetrieveSize`, least recently used dropped). Retrieving an answer
(or all of them) submits a DicomMoveScu job that C-MOVEs it from the modality to a target AET.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..core.views import TagFormat
from ..errors import ErrorCode, OrthancError
from ..network.jobs import QUERY_KEYS, DicomMoveScuJob
from ..network.queries import QueryRecord, queries_of, query_to_json, run_query, values_to_json
from ..registry import Level
from .app import Api
from .http import Request, Response, Router, empty_response, json_response, text_response
from .jobs import job_options
from .modalities import (
    _object,
    dicom_format,
    format_name,
    json_body,
    string_field,
    submit_move,
    tags_field,
    uint_field,
)

# child query route -> (level of the new query, tags copied from the parent answer)
_CHILDREN = {
    "query-studies": (Level.STUDY, (0x00100020,)),
    "query-series": (Level.SERIES, (0x00100020, 0x0020000D)),
    "query-instances": (Level.INSTANCE, (0x00100020, 0x0020000D, 0x0020000E)),
}


def register(router: Router) -> None:
    router.add("GET", "/queries", list_queries)
    router.add("GET", "/queries/{id}", query_routes)
    router.add("DELETE", "/queries/{id}", delete_query)
    router.add("GET", "/queries/{id}/answers", list_answers)
    router.add("GET", "/queries/{id}/answers/{index}", answer_routes)
    router.add("GET", "/queries/{id}/answers/{index}/content", answer_content)
    router.add("POST", "/queries/{id}/answers/{index}/retrieve", retrieve_answer)
    router.add("POST", "/queries/{id}/retrieve", retrieve_all)
    for route in _CHILDREN:
        router.add("POST", f"/queries/{{id}}/answers/{{index}}/{route}", _child_route(route))
    router.add("GET", "/queries/{id}/level", query_level)
    router.add("GET", "/queries/{id}/modality", query_modality_name)
    router.add("GET", "/queries/{id}/query", query_content)


def _record(api: Api, qid: str) -> QueryRecord:
    record = queries_of(api.ctx).get(qid)
    if record is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return record


def _answer(record: QueryRecord, index: str) -> dict[int, str]:
    try:
        i = int(index)
    except ValueError:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE) from None
    if not 0 <= i < len(record.answers):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    return record.answers[i]


def _format(request: Request) -> TagFormat:
    if "simplify" in request.query and request.flag("simplify"):
        return TagFormat.HUMAN
    if "short" in request.query and request.flag("short"):
        return TagFormat.SHORT
    return TagFormat.FULL


async def list_queries(api: Api, request: Request) -> Response:
    return json_response(queries_of(api.ctx).ids())


async def query_routes(api: Api, request: Request, id: str) -> Response:
    _record(api, id)
    return json_response(["answers", "level", "modality", "query", "retrieve"])


async def delete_query(api: Api, request: Request, id: str) -> Response:
    queries_of(api.ctx).delete(id)
    return empty_response()


async def list_answers(api: Api, request: Request, id: str) -> Response:
    record = _record(api, id)
    if "expand" in request.query and request.flag("expand"):
        fmt = _format(request)
        return json_response([values_to_json(api.ctx, a, fmt) for a in record.answers])
    return json_response([str(i) for i in range(len(record.answers))])


async def answer_routes(api: Api, request: Request, id: str, index: str) -> Response:
    record = _record(api, id)
    _answer(record, index)
    routes = ["content", "retrieve"]
    if record.level == Level.PATIENT:
        routes.append("query-study")
    if record.level in (Level.PATIENT, Level.STUDY):
        routes.append("query-series")
    if record.level in (Level.PATIENT, Level.STUDY, Level.SERIES):
        routes.append("query-instances")
    return json_response(routes)


async def answer_content(api: Api, request: Request, id: str, index: str) -> Response:
    record = _record(api, id)
    return json_response(values_to_json(api.ctx, _answer(record, index), _format(request)))


async def query_level(api: Api, request: Request, id: str) -> Response:
    return text_response(_record(api, id).level.type_name)


async def query_modality_name(api: Api, request: Request, id: str) -> Response:
    return text_response(_record(api, id).modality_name)


async def query_content(api: Api, request: Request, id: str) -> Response:
    return json_response(query_to_json(_record(api, id).query, _format(request)))


# -- retrieve -------------------------------------------------------------------------------------------

async def _retrieve(api: Api, request: Request, record: QueryRecord, answers: list[dict[int, str]]) -> Response:
    """The body is a JSON object, or plain text naming the target AET (empty: DicomAet)."""
    raw = await request.body(1024 * 1024)
    body: dict[str, Any] = {}
    target_aet: str | None = None
    try:
        parsed = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        parsed = raw.decode("utf-8", "replace").strip()
    if isinstance(parsed, dict):
        body = parsed
        target_aet = string_field(body, "TargetAet")
    elif isinstance(parsed, str):
        target_aet = parsed.strip()
    elif parsed is not None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Must provide a JSON object or a target AET")
    queries = [{t: v for t, v in a.items() if t in QUERY_KEYS} for a in answers]
    synchronous, priority, permissive = job_options(body)
    job = DicomMoveScuJob(api.ctx, record.modality, queries, target_aet or api.ctx.config["DicomAet"],
                          record.local_aet, uint_field(body, "Timeout") or record.timeout, permissive=permissive,
                          query_format=format_name(dicom_format(body)))
    return await submit_move(api, job, synchronous, priority)


async def retrieve_answer(api: Api, request: Request, id: str, index: str) -> Response:
    record = _record(api, id)
    return await _retrieve(api, request, record, [_answer(record, index)])


async def retrieve_all(api: Api, request: Request, id: str) -> Response:
    record = _record(api, id)
    return await _retrieve(api, request, record, record.answers)


def _child_route(route: str):  # type: ignore[no-untyped-def]
    level, copied = _CHILDREN[route]

    async def handler(api: Api, request: Request, id: str, index: str) -> Response:
        """A C-FIND one level down, restricted to the parent answer's identifiers."""
        record = _record(api, id)
        answer = _answer(record, index)
        if record.level >= level:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        body = _object(await json_body(request, {}))
        fields = tags_field(body, "Query")
        for tag in copied:
            if tag in answer:
                fields[tag] = answer[tag]
        timeout = uint_field(body, "Timeout") or record.timeout
        child = await api.run(run_query, api.ctx, record.modality_name, record.modality, level, fields,
                              True, record.local_aet, timeout)
        qid = queries_of(api.ctx).add(child)
        return json_response({"ID": qid, "Path": f"/queries/{qid}"})
    return handler
