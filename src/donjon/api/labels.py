"""`/{level}/{id}/labels...` and `GET /tools/labels` (Orthanc 1.12): a thin face over core.labels."""

from __future__ import annotations

from ..core import labels
from ..errors import EmptyAnswer
from ..registry import Level
from .app import Api
from .http import Request, Response, Router, empty_response, json_response


def register(router: Router) -> None:
    for level in Level:
        base = f"/{level.collection}/{{id}}/labels"
        router.add("GET", base, _list(level))
        router.add("GET", base + "/{label}", _get(level))
        router.add("PUT", base + "/{label}", _put(level))
        router.add("DELETE", base + "/{label}", _delete(level))
    router.add("GET", "/tools/labels", all_labels)


def _list(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        return json_response(labels.list_labels(api.ctx, level, id))
    return handler


def _get(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str, label: str) -> Response:
        if not labels.has_label(api.ctx, level, id, label):
            raise EmptyAnswer(404)
        return empty_response()
    return handler


def _put(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str, label: str) -> Response:
        await api.run_short_write(labels.add_label, api.ctx, level, id, label, together=request.together)
        return empty_response()
    return handler


def _delete(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str, label: str) -> Response:
        await api.run_short_write(labels.remove_label, api.ctx, level, id, label, together=request.together)
        return empty_response()
    return handler


async def all_labels(api: Api, request: Request) -> Response:
    return json_response(labels.all_labels(api.ctx))
