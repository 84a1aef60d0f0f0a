"""`/tools/...`: find, lookup, clocks, UIDs."""

from __future__ import annotations

import asyncio
import uuid as uuidlib
from typing import Any

import orjson
from pydicom.datadict import tag_for_keyword
from pydicom.uid import generate_uid

from ..core.clock import now_local, now_utc
from ..core.find import FindQuery, build_query, find, reads_beyond_rows
from ..core.matching import normalize
from ..core.views import TagFormat, describe
from ..dicom.main_tags import IDENTIFIER_TAG, format_tag
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..index.protocol import ResourceRow
from ..registry import Level, parse_level
from .app import Api
from .http import EMPTY_JSON_OBJECT, Request, Response, Router, json_response, text_response

_UID_ROOTS = {"study": "1.2.276.0.7230010.3.1.2.", "series": "1.2.276.0.7230010.3.1.3.",
              "instance": "1.2.276.0.7230010.3.1.4."}
_TOOLS = ["accepted-transfer-syntaxes", "bulk-anonymize", "bulk-content", "bulk-delete", "bulk-modify",
          "create-archive", "create-dicom", "create-media", "create-media-extended", "default-encoding",
          "dicom-conformance", "dicom-echo", "execute-script", "find", "generate-uid", "invalidate-tags",
          "labels", "log-level", "lookup", "metrics", "metrics-prometheus", "now", "now-local",
          "reconstruct", "registry", "reset", "shutdown", "unknown-sop-class-accepted"]


def register(router: Router) -> None:
    router.add("GET", "/tools", tools_index)
    router.add("GET", "/tools/now", now)
    router.add("GET", "/tools/now-local", now_local_route)
    router.add("GET", "/tools/generate-uid", generate_uid_route)
    router.add("POST", "/tools/lookup", lookup)
    router.add("POST", "/tools/find", find_route)
    router.add("POST", "/tools/reset", reset)
    router.add("POST", "/tools/shutdown", shutdown)


async def reset(api: Api, request: Request) -> Response:
    if api.app is not None:
        await api.app.reset()
    return EMPTY_JSON_OBJECT


async def shutdown(api: Api, request: Request) -> Response:
    if api.app is not None and api.app.shutdown_hook is not None:
        asyncio.get_running_loop().call_later(0.1, api.app.shutdown_hook)
    return EMPTY_JSON_OBJECT


async def tools_index(api: Api, request: Request) -> Response:
    return json_response(_TOOLS)


async def now(api: Api, request: Request) -> Response:
    return text_response(now_utc())


async def now_local_route(api: Api, request: Request) -> Response:
    return text_response(now_local())


async def generate_uid_route(api: Api, request: Request) -> Response:
    level = request.query.get("level", "").lower()
    if level == "patient":
        return text_response(str(uuidlib.uuid4()))
    root = _UID_ROOTS.get(level)
    if root is None:
        raise EmptyAnswer(404)
    return text_response(generate_uid(prefix=root))


async def lookup(api: Api, request: Request) -> Response:
    body = await request.body(1024 * 1024)
    try:
        value = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The identifier must be UTF-8 text") from None
    ctx = api.ctx

    def run(tx: Any) -> list[dict[str, str]]:
        out = []
        norm = normalize(value)
        for level in Level:
            tag = IDENTIFIER_TAG[level]
            for rid, lvl in tx.lookup_identifier(int(level), tag, norm):
                row = tx.resource(rid)
                if row is None:
                    continue
                tags = orjson.loads(row.tags) if row.tags else {}
                if tags.get(format_tag(tag)) != value:
                    continue
                lv = Level(lvl)
                out.append({"ID": row.public_id, "Path": f"/{lv.collection}/{row.public_id}", "Type": lv.type_name})
        return out
    return json_response(await api.run(ctx.index.read, run))


_HEX = frozenset("0123456789abcdefABCDEF")


def parse_tag(name: str) -> int:
    """A tag given as `gggg,eeee`, `ggggeeee` or a dictionary keyword."""
    text = name.strip()
    digits = text[:4] + text[5:] if len(text) == 9 and text[4] in ",|" else text
    if len(digits) == 8 and all(c in _HEX for c in digits):
        return int(digits, 16)
    tag = tag_for_keyword(text)
    if tag is None:
        raise OrthancError(ErrorCode.UNKNOWN_DICOM_TAG, f"Unknown DICOM tag: {name}", http_status=400)
    return int(tag)


def _bool_field(body: dict[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BAD_REQUEST, f'Field "{name}" must be a Boolean')
    return value


def _int_field(body: dict[str, Any], name: str) -> int:
    value = body.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrthancError(ErrorCode.BAD_REQUEST, f'Field "{name}" must be an integer')
    if value < 0:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f'Field "{name}" must be a positive integer')
    return value


async def find_route(api: Api, request: Request) -> Response:
    body = await request.json()
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BAD_REQUEST, "The body must be a JSON object")
    level_text = body.get("Level")
    if not isinstance(level_text, str):
        raise OrthancError(ErrorCode.BAD_REQUEST, 'Field "Level" is missing, or should be a string')
    level = parse_level(level_text)
    query = body.get("Query")
    if not isinstance(query, dict):
        raise OrthancError(ErrorCode.BAD_REQUEST, 'Field "Query" is missing, or should be a JSON object')
    expand = _bool_field(body, "Expand", False)
    case_sensitive = _bool_field(body, "CaseSensitive", False)
    limit = _int_field(body, "Limit")
    since = _int_field(body, "Since")
    tags: dict[int, str] = {}
    for key, value in query.items():
        if not isinstance(value, str):
            raise OrthancError(ErrorCode.BAD_REQUEST, f"Tag {key} should be associated with a string")
        tags[parse_tag(key)] = value
    fmt = TagFormat.HUMAN
    if _bool_field(body, "Short", False):
        fmt = TagFormat.SHORT
    elif _bool_field(body, "Full", False):
        fmt = TagFormat.FULL
    q = build_query(level, tags, case_sensitive)
    q.since, q.limit = since, limit
    labels = body.get("Labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise OrthancError(ErrorCode.BAD_REQUEST, 'Field "Labels" must be an array of strings')
    q.labels = labels
    mode = body.get("LabelsConstraint", "All")
    if mode not in ("All", "Any", "None"):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f"Bad value for LabelsConstraint: {mode}")
    q.labels_constraint = mode
    ctx = api.ctx
    cap = ctx.config["LimitFindInstances"] if level == Level.INSTANCE else ctx.config["LimitFindResults"]

    def run(tx: Any) -> Any:
        seen: dict[int, ResourceRow] = {}
        public: dict[int, str] = {}
        ids = find(ctx, tx, q, seen, public)
        if cap and len(ids) > cap:
            ids = ids[:cap]
        if not ids:
            return []
        rows = [seen[i] for i in ids] if all(i in seen for i in ids) else None
        if expand:
            return describe(ctx, tx, rows if rows is not None else tx.resources(ids), fmt)
        if rows is not None:
            return [r.public_id for r in rows]
        if all(i in public for i in ids):
            return [public[i] for i in ids]
        names = tx.public_ids(ids)
        return [names[i] for i in ids if i in names]  # (without a snapshot, one may have gone since)
    # the ids alone need no snapshot: a resource deleted between two statements is simply not found
    if not expand and not reads_beyond_rows(q):
        # a few statements at most (one when the index settles every constraint): on the event loop,
        # as a listing; a hand-over to a worker thread and back costs ~0.15 ms here, more than the find
        return json_response(ctx.index.read(run, False))
    return json_response(await api.run(ctx.index.read, run, expand))


__all__ = ["FindQuery", "register"]
