"""Resource routes: listings, one resource, children and parents, deletion, statistics."""

from __future__ import annotations

from typing import Any

from ..core.views import TagFormat, describe
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..registry import Level
from .app import Api
from .common import since_limit, tag_format
from .http import Request, Response, Router, json_response

_CHILD_ROUTES = {
    Level.PATIENT: (("studies", Level.STUDY), ("series", Level.SERIES), ("instances", Level.INSTANCE)),
    Level.STUDY: (("series", Level.SERIES), ("instances", Level.INSTANCE)),
    Level.SERIES: (("instances", Level.INSTANCE),),
}
_PARENT_ROUTES = {
    Level.STUDY: (("patient", Level.PATIENT),),
    Level.SERIES: (("study", Level.STUDY), ("patient", Level.PATIENT)),
    Level.INSTANCE: (("series", Level.SERIES), ("study", Level.STUDY), ("patient", Level.PATIENT)),
}


def _expand_flag(request: Request, default: bool) -> bool:
    if "expand" not in request.query:
        return default
    return request.flag("expand")


def register(router: Router) -> None:
    for level in Level:
        coll = level.collection
        router.add("GET", f"/{coll}", _list(level))
        router.add("GET", f"/{coll}/{{id}}", _one(level))
        router.add("DELETE", f"/{coll}/{{id}}", _delete(level))
        router.add("GET", f"/{coll}/{{id}}/statistics", _statistics(level))
        for name, child in _CHILD_ROUTES.get(level, ()):
            router.add("GET", f"/{coll}/{{id}}/{name}", _children(level, child))
        for name, parent in _PARENT_ROUTES.get(level, ()):
            router.add("GET", f"/{coll}/{{id}}/{name}", _parent(level, parent))


def _list(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request) -> Response:
        window = since_limit(request)
        expand = _expand_flag(request, False)
        fmt = tag_format(request)
        if window is not None and window[1] == 0:
            return json_response([])
        since, limit = window if window is not None else (0, 0)
        ctx = api.ctx

        if not expand:
            return json_response(ctx.index.reader().list_level_public(level, since, limit))
        return json_response(await api.run(
            ctx.index.read, lambda tx: describe(ctx, tx, tx.list_level(level, since, limit), fmt)))
    return handler


def _one(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        fmt = tag_format(request)
        ctx = api.ctx

        def run(tx: Any) -> Any:
            found = tx.lookup(id)
            if found is None or found[1] != level:
                return None
            return describe(ctx, tx, [tx.resource(found[0])], fmt)[0]
        value = ctx.index.read(run)
        if value is None:
            raise EmptyAnswer(404)
        return json_response(value)
    return handler


def _delete(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        result = await api.run(api.ctx.delete, level, id)
        if result is None:
            raise EmptyAnswer(404)
        remaining = None
        if result.remaining is not None:
            rlevel, rid = result.remaining
            lvl = Level(rlevel)
            remaining = {"ID": rid, "Path": f"/{lvl.collection}/{rid}", "Type": lvl.type_name}
        return json_response({"RemainingAncestor": remaining})
    return handler


def _children(level: Level, child: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        expand = _expand_flag(request, True)
        fmt = tag_format(request)
        ctx = api.ctx

        def run(tx: Any) -> Any:
            found = tx.lookup(id)
            if found is None or found[1] != level:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            ids = tx.descendants(found[0], child)
            if not expand:
                names = tx.public_ids(ids)
                return [names[i] for i in ids]
            return describe(ctx, tx, tx.resources(ids), fmt)
        return json_response(await api.run(ctx.index.read, run))
    return handler


def _parent(level: Level, parent: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        fmt = tag_format(request)
        ctx = api.ctx

        def run(tx: Any) -> Any:
            found = tx.lookup(id)
            if found is None:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            if found[1] != level:
                raise EmptyAnswer(404)
            row = tx.resource(found[0])
            while row is not None and row.level > parent:
                row = tx.resource(row.parent_id)
            if row is None:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            return describe(ctx, tx, [row], fmt)[0]
        return json_response(ctx.index.read(run))
    return handler


def _mb(value: int) -> int:
    return value // (1024 * 1024)


def _statistics(level: Level):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        ctx = api.ctx

        def run(tx: Any) -> Any:
            found = tx.lookup(id)
            if found is None or found[1] != level:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            subtree = tx.subtree(found[0])
            rows = tx.resources(subtree) if level != Level.INSTANCE else []
            counts = {lvl: 0 for lvl in Level}
            for r in rows:
                counts[Level(r.level)] += 1
            disk, unc, ddisk, dunc = tx.resource_sizes(subtree)
            answer: dict[str, Any] = {
                "DiskSize": str(disk), "DiskSizeMB": _mb(disk),
                "UncompressedSize": str(unc), "UncompressedSizeMB": _mb(unc),
                "DicomDiskSize": str(ddisk), "DicomDiskSizeMB": _mb(ddisk),
                "DicomUncompressedSize": str(dunc), "DicomUncompressedSizeMB": _mb(dunc),
            }
            if level == Level.PATIENT:
                answer["CountStudies"] = counts[Level.STUDY]
            if level in (Level.PATIENT, Level.STUDY):
                answer["CountSeries"] = counts[Level.SERIES]
            if level in (Level.PATIENT, Level.STUDY, Level.SERIES):
                answer["CountInstances"] = counts[Level.INSTANCE]
            return answer
        return json_response(await api.run(ctx.index.read, run))
    return handler


__all__ = ["TagFormat", "register"]
