"""Routes shared by the named lists of remote servers, `/modalities` and `/peers`.

Both lists live in the configuration or, when so configured, in the index; their listing, sub-route
listing and deletion answer alike, only the view of an entry and the messages differ.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ..errors import EmptyAnswer, ErrorCode, OrthancError
from .app import Api
from .http import Request, Response, empty_response, json_response


class NamedList(Protocol):
    """What `network.modalities.Modalities` and `network.peers.Peers` have in common."""

    def items(self) -> list[tuple[str, Any]]: ...

    def get(self, name: str) -> Any: ...

    def delete(self, name: str) -> bool: ...


def list_response(request: Request, entries: NamedList, view: Callable[[Any], Any]) -> Response:
    """The names, or with `?expand` each name and the `view` of its entry."""
    items = entries.items()
    if "expand" in request.query and request.flag("expand"):
        return json_response({name: view(entry) for name, entry in items})
    return json_response([name for name, _ in items])


def routes_response(entries: NamedList, name: str, sub_routes: list[str]) -> Response:
    """The sub-routes of a known entry; a bare 404 for an unknown one (as Orthanc)."""
    if entries.get(name) is None:
        raise EmptyAnswer(404)
    return json_response(sub_routes)


async def delete_response(api: Api, entries: NamedList, name: str, unknown: str) -> Response:
    """Delete an entry (and save the list when it is kept in the index); `unknown`: the error message."""
    if not await api.run(entries.delete, name):
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, unknown)
    return empty_response()
