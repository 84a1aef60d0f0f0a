"""`/plugins`: the loaded plugins, listed as Orthanc lists its own (`explorer.js` first, always)."""

from __future__ import annotations

from ..errors import EmptyAnswer
from .app import Api
from .http import Request, Response, Router, json_response

_EXPLORER_JS = "explorer.js"
_EXPLORER_HEADER = "// Extensions to Orthanc Explorer by the registered plugins\n\n"


def register(router: Router) -> None:
    router.add("GET", "/plugins", list_plugins)
    router.add("GET", "/plugins/explorer.js", explorer_js)
    router.add("GET", "/plugins/{id}", plugin)


async def list_plugins(api: Api, request: Request) -> Response:
    host = api.ctx.plugins
    return json_response([_EXPLORER_JS] + ([host.info()["ID"]] if host is not None else []))


async def plugin(api: Api, request: Request, id: str) -> Response:
    host = api.ctx.plugins
    if host is None or id != host.info()["ID"]:
        raise EmptyAnswer(404)
    return json_response(host.info())


async def explorer_js(api: Api, request: Request) -> Response:
    """The JavaScript plugins gave to `ExtendOrthancExplorer()` (Donjon's Explorer does not run it), each
    after a comment naming the plugin and its version, as Orthanc's `GetOrthancExplorerPlugins`."""
    host = api.ctx.plugins
    text = _EXPLORER_HEADER
    if host is not None and host.explorer_js is not None:
        info = host.info()
        text += f"/**\n * From plugin: {info['ID']} (version {info['Version']})\n **/\n\n{host.explorer_js}\n\n"
    return Response(200, text.encode("utf-8"), b"application/javascript")
