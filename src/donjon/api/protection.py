"""`/patients/{id}/protected`."""

from __future__ import annotations

from ..core.protection import is_protected, parse_protection, set_protected
from .app import Api
from .http import Request, Response, Router, empty_response, text_response


def register(router: Router) -> None:
    router.add("GET", "/patients/{id}/protected", get_protected)
    router.add("PUT", "/patients/{id}/protected", put_protected)


async def get_protected(api: Api, request: Request, id: str) -> Response:
    return text_response("1" if is_protected(api.ctx, id) else "0")


async def put_protected(api: Api, request: Request, id: str) -> Response:
    protected = parse_protection(await request.body(1024))
    await api.run_short_write(set_protected, api.ctx, id, protected, together=request.together)
    return empty_response()
