"""The Explorer's files at `/app/...`, served from package data so that Donjon needs nothing else.

Only the files shipped under `donjon/ui/static` are served (a table built once, so no request path
ever reaches the file system). Every answer carries `nosniff` and a strict Content-Security-Policy:
scripts, styles and images from this server only, no inline script, and Trusted Types required, so
that a DICOM value can never become markup. `Cache-Control: no-cache` with an ETag keeps an upgraded
server's files fresh while a revalidation costs one empty 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import orjson

from ..errors import ErrorCode, OrthancError
from .app import Api
from .http import Request, Response, Router

ENTRY = "explorer.html"
ROUTES_FILE = "/app/api-routes.json"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'")
_TYPES = {
    "html": b"text/html; charset=utf-8", "js": b"text/javascript; charset=utf-8",
    "mjs": b"text/javascript; charset=utf-8", "css": b"text/css; charset=utf-8",
    "svg": b"image/svg+xml", "png": b"image/png", "ico": b"image/x-icon", "json": b"application/json",
    "woff2": b"font/woff2", "txt": b"text/plain; charset=utf-8",
}
_SECURITY = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CSP.encode("ascii")),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    content_type: bytes
    etag: bytes


_files: dict[str, StaticFile] | None = None


def register(router: Router) -> None:
    router.add("GET", "/app", _app_root)
    router.add("GET", ROUTES_FILE, _routes)
    router.add("GET", "/app/{path:path}", _static)


def static_root() -> Traversable:
    return resources.files("donjon").joinpath("ui", "static")


def files() -> dict[str, StaticFile]:
    """Every servable file by its path under /app (read once: they are small)."""
    global _files
    if _files is None:
        found: dict[str, StaticFile] = {}
        _collect(static_root(), "", found)
        _files = found
    return _files


def _collect(folder: Traversable, prefix: str, out: dict[str, StaticFile]) -> None:
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_dir():
            _collect(entry, f"{prefix}{name}/", out)
            continue
        content_type = _TYPES.get(name.rpartition(".")[2].lower())
        if content_type is None:
            continue
        body = entry.read_bytes()
        etag = f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'.encode("ascii")
        out[prefix + name] = StaticFile(body, content_type, etag)


async def _app_root(api: Api, request: Request) -> Response:
    # relative, so that the Explorer also works behind a reverse proxy that adds a path prefix
    target = ENTRY if request.path.endswith("/") else f"app/{ENTRY}"
    return Response(302, b"", None, [(b"location", target.encode("ascii")), *_SECURITY])


async def _routes(api: Api, request: Request) -> Response:
    """The routes this server answers, so the Explorer shows features (peers, DICOMweb...) that exist,
    without probing them one by one (each 404 would be an error in the browser's console)."""
    router = api.app.router if api.app is not None else None
    routes: dict[str, list[str]] = {}
    for method, pattern in router.patterns if router is not None else []:
        routes.setdefault(pattern, []).append(method)
    body = orjson.dumps({"Routes": {p: sorted(m) for p, m in sorted(routes.items())}})
    return Response(200, body, b"application/json", [*_SECURITY, (b"cache-control", b"no-cache")])


async def _static(api: Api, request: Request, path: list[str]) -> Response:
    found = files().get("/".join(path))
    if found is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    headers = [*_SECURITY, (b"cache-control", b"no-cache"), (b"etag", found.etag)]
    match = request.headers.get("if-none-match", "")
    if match and found.etag.decode("ascii") in [m.strip() for m in match.split(",")]:
        return Response(304, b"", None, headers)
    return Response(200, found.body, found.content_type, headers)
