"""The REST face: an ASGI application that authenticates, routes and turns errors into Orthanc's."""

from __future__ import annotations

import asyncio
import base64
import gzip
import hmac
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..core.context import ServerContext
from ..errors import HTTP_REASONS, EmptyAnswer, ErrorCode, OrthancError, describe
from ..index.protocol import WriterBusy
from ..limits import Limits, json_depth_exceeds
from .http import Request, Response, Router
from .multipart import boundary_of, split_parts
from .security import cross_origin_refusal
from .short_writes import ShortWrites

if TYPE_CHECKING:
    from ..plugins.host import PluginHost

log = logging.getLogger(__name__)
T = TypeVar("T")

_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
_REALM = b'Basic realm="Orthanc Secure Area"'
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_COMPRESS_MIN = 2048
_COMPRESSIBLE = frozenset({b"application/json", b"application/xml", b"text/plain", b"text/html", b"text/css",
                           b"application/javascript", b"text/javascript", b"application/pdf",
                           b"image/x-portable-arbitrarymap"})


class Api:
    """What route handlers receive: the core context plus a thread pool for blocking work."""

    def __init__(self, ctx: ServerContext, threads: int):
        self.ctx = ctx
        self.app: DonjonApp | None = None
        self.pool = ThreadPoolExecutor(max_workers=max(threads, 2), thread_name_prefix="donjon-http")
        self._short_writes: ShortWrites | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (index writes, parsing, big reads) off the event loop."""
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`run`, started at once (`run` starts when its caller awaits it)."""
        return asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    async def run_short_write(self, fn: Callable[..., T], *args: Any, together: bool = False) -> T:
        """A small index write (a metadata, a label, a flag): on the event loop when the index writer
        is idle, as a read is; otherwise (a batch running, or an index without that mode) like `run`.
        `together` (other connections are open: `Request.together`): it joins the writes of this
        turn of the loop in one transaction at the next (api/short_writes.py). `fn` must do nothing
        before its write that cannot be done twice, and publish its events through `ctx.events`."""
        index = self.ctx.index
        if together and hasattr(index, "write_many_if_idle"):
            loop = asyncio.get_running_loop()
            if self._short_writes is None or self._short_writes.loop is not loop:
                self._short_writes = ShortWrites(self, loop)
            return await self._short_writes.add(fn, args)  # type: ignore[no-any-return]
        if_idle = getattr(index, "writes_if_idle", None)
        if if_idle is not None:
            try:
                with if_idle():
                    return fn(*args)
            except WriterBusy:
                pass
        return await self.run(fn, *args)


class DonjonApp:
    def __init__(self, ctx: ServerContext, router: Router | None = None):
        from . import build_router

        self.ctx = ctx
        config = ctx.config
        self.api = Api(ctx, config["HttpThreadsCount"])
        self.api.app = self
        self.router = router or build_router()
        self.remote_access = bool(config["RemoteAccessAllowed"])
        auth = config.get("AuthenticationEnabled")
        self.authentication = bool(auth) if isinstance(auth, bool) else self.remote_access
        users = dict(config["RegisteredUsers"])  # no built-in user (Orthanc's orthanc/orthanc)
        self.insecure_default_user = False
        self.limits = Limits.from_config(config)
        self.cross_origin_check = bool(config["CrossOriginCheck"])
        self._credentials = {
            base64.b64encode(f"{u}:{p}".encode()).decode("ascii"): u for u, p in users.items()
        }
        self.describe_errors = bool(config["HttpDescribeErrors"])
        self.compression = bool(config["HttpCompressionEnabled"])
        self.shutdown_hook: Callable[[], None] | None = None
        self.reset_hook: Callable[[], ServerContext] | None = None
        self.plugins: PluginHost | None = None  # the Python plugin host, if a script is configured

    async def reset(self) -> None:
        """Rebuild the server context in-process (`POST /tools/reset`)."""
        if self.reset_hook is None:
            return
        loop = asyncio.get_running_loop()
        new_ctx = await loop.run_in_executor(self.api.pool, self.reset_hook)
        self.ctx = new_ctx
        self.api.ctx = new_ctx

    @property
    def is_secure(self) -> bool:
        if self.remote_access and not self.authentication:
            return False
        return not self.insecure_default_user

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    def _authenticate(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.plugins is not None and self.plugins.valid_token(header):
            return True  # `GenerateRestApiAuthorizationToken()`
        if not header.startswith("Basic "):
            return False
        token = header[6:].strip()
        for known, user in self._credentials.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                request.username = user
                return True
        return False

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        request = Request.from_asgi(scope, receive)
        try:
            response = await self.handle(request)
        except ConnectionAbortedError:
            return
        await self._send(send, response, request.method)

    async def handle(self, request: Request) -> Response:
        """The answer to one request: never raises for a client's mistake or a handler's failure."""
        try:
            response = await self._dispatch(request)
        except OrthancError as e:
            response = self.error_response(request, e)
        except EmptyAnswer as e:
            response = Response(e.status)
        except ConnectionAbortedError:
            raise
        except Exception:
            log.exception("Internal error on %s %s", request.method, request.path)
            response = self.error_response(request, OrthancError(ErrorCode.INTERNAL_ERROR))
        if response.status >= 400:
            response = self._error_body(request, response)
        if self.compression and response.stream is None and len(response.body) >= _COMPRESS_MIN:
            response = self._maybe_gzip(request, response)
        return response

    _STATUS_CODES = {400: ErrorCode.BAD_REQUEST, 401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN_ACCESS,
                     404: ErrorCode.UNKNOWN_RESOURCE, 405: ErrorCode.BAD_REQUEST, 413: ErrorCode.BAD_REQUEST,
                     415: ErrorCode.UNSUPPORTED_MEDIA_TYPE, 507: ErrorCode.FULL_STORAGE}

    def _error_body(self, request: Request, response: Response) -> Response:
        """Every error answer carries Orthanc's JSON body (where Orthanc 1.10.1 sends an empty one too)
        and `nosniff`, so that no error can be sniffed into something a browser would run."""
        headers = response.headers
        if response.stream is None and not response.body and self.describe_errors:
            code = self._STATUS_CODES.get(response.status, ErrorCode.INTERNAL_ERROR)
            error = OrthancError(code, http_status=response.status)
            if response.status == 405:
                error.details = "Method not allowed on this URI"
            built = self.error_response(request, error)
            response = Response(response.status, built.body, built.content_type,
                                [*(h for h in headers if h[0] != b"content-length"), *built.headers])
        elif _NOSNIFF not in headers:
            response.headers = [*headers, _NOSNIFF]
        return response

    @staticmethod
    def _maybe_gzip(request: Request, response: Response) -> Response:
        """`HttpCompressionEnabled`: gzip large textual answers for clients that accept it (mainline rule)."""
        ctype = (response.content_type or b"").split(b";")[0].strip()
        if ctype not in _COMPRESSIBLE:
            return response
        accepted = request.headers.get("accept-encoding", "")
        if "gzip" not in [a.split(";")[0].strip().lower() for a in accepted.split(",")]:
            return response
        body = gzip.compress(response.body, compresslevel=6)
        return Response(response.status, body, response.content_type,
                        [*response.headers, (b"content-encoding", b"gzip"), (b"vary", b"Accept-Encoding")])

    async def _dispatch(self, request: Request) -> Response:
        if not self.remote_access and request.client not in _LOOPBACK:
            return Response(401, headers=[(b"www-authenticate", _REALM)])
        if self.authentication and not self._authenticate(request):
            return Response(401, headers=[(b"www-authenticate", _REALM)])
        if "\x00" in request.path:
            raise OrthancError(ErrorCode.URI_SYNTAX, "NUL character in the URI")
        if any("/" in c or "\\" in c for c in request.components):
            raise OrthancError(ErrorCode.URI_SYNTAX, "Encoded slash or backslash in a component of the URI")
        method = request.method
        override = request.headers.get("x-http-method-override")
        if override is None and method == "GET" and "_method" in request.query:
            override = request.query["_method"]
        if override is not None:
            o = override.strip().upper()
            if o not in ("PUT", "DELETE", "POST", "GET"):
                raise OrthancError(ErrorCode.BAD_REQUEST, f"Unknown HTTP method override: {override}")
            method = o
            request.method = o
        if method == "HEAD":
            method = "GET"
        if self.cross_origin_check:
            refusal = cross_origin_refusal(request, method)
            if refusal is not None:
                log.warning("%s: %s %s from %s", refusal, method, request.path, request.client)
                raise OrthancError(ErrorCode.FORBIDDEN_ACCESS, refusal)
        if self.plugins is not None:  # the plugin's HTTP filter and routes come before the core's
            answer = await self.plugins.http_request(self, request, method)
            if answer is not None:
                return answer
        handlers, params = self.router.resolve(request.components)
        if handlers is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        handler = handlers.get(method)
        if handler is None:
            allowed = ",".join(m for m in ("GET", "POST", "PUT", "DELETE") if m in handlers)
            return Response(405, headers=[(b"allow", allowed.encode())])
        content_type = request.headers.get("content-type", "")
        if method in ("POST", "PUT") and not content_type.lower().startswith(("multipart/", "application/dicom")):
            await self._check_json_depth(request)  # (multipart bodies may be streamed by their handler)
        if method == "POST" and content_type.lower().startswith("multipart/form-data"):
            return await self._multipart(request, handler, params, content_type)
        return await handler(self.api, request, **params)

    async def _check_json_depth(self, request: Request) -> None:
        """`MaximumJsonDepth`: refused before any handler walks a deeply nested body recursively.
        Cheap for ordinary bodies: only one with more brackets than the limit is parsed twice."""
        body = await request.body(self.limits.request_body)
        limit = self.limits.json_depth
        head = body[:64].lstrip()
        if not head or head[0] not in b"[{" or body.count(b"[") + body.count(b"{") <= limit:
            return
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            if "depth" in str(e).lower() or "recursion" in str(e).lower():
                raise OrthancError(ErrorCode.BAD_REQUEST, f"JSON nested deeper than {limit} levels") from None
            return  # not JSON after all: the handler decides
        if json_depth_exceeds(value, limit):
            raise OrthancError(ErrorCode.BAD_REQUEST, f"JSON nested deeper than {limit} levels")

    async def _multipart(self, request: Request, handler: Any, params: dict[str, Any],
                         content_type: str) -> Response:
        """Orthanc's rule: every part is posted on its own, answers dropped, 200 with an empty body."""
        boundary = boundary_of(content_type)
        if boundary is None:
            raise OrthancError(ErrorCode.BAD_REQUEST, "multipart/form-data without a boundary")
        body = await request.body()
        for part in split_parts(body, boundary):
            headers = dict(request.headers)
            headers["content-type"] = part.headers.get("content-type", "application/octet-stream")
            headers.pop("content-length", None)
            await handler(self.api, request.derive(headers, part.body), **params)
        return Response(200, b"", None)

    # codes that Orthanc 1.10.1 answers with 500 although only the client's input can cause them
    _CLIENT_MISTAKES = frozenset({ErrorCode.UNKNOWN_DICOM_TAG})

    def error_response(self, request: Request, error: OrthancError) -> Response:
        status = error.http_status
        if status == 500 and error.code in self._CLIENT_MISTAKES:
            status = error.http_status = 400
        if not self.describe_errors:
            return Response(status, headers=[_NOSNIFF])
        body: dict[str, Any] = {
            "HttpError": HTTP_REASONS.get(status, "Internal Server Error"),
            "HttpStatus": status,
            "Message": describe(error.code),
            "Method": request.method,
            "OrthancError": describe(error.code),
            "OrthancStatus": error.code if error.code < 1_000_000 else 1,
            "Uri": request.path.replace("\x00", ""),
        }
        if error.details:
            body["Details"] = error.details
        return Response(status, orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
                        b"application/json; charset=utf-8", [_NOSNIFF])

    @staticmethod
    async def _send(send: Any, response: Response, method: str) -> None:
        headers = list(response.headers)
        if response.content_type is not None:
            headers.append((b"content-type", response.content_type))
        if response.stream is None:
            headers.append((b"content-length", str(len(response.body)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": bytes(response.body) if method != "HEAD" else b""})
            return
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if method == "HEAD":
            aclose = getattr(response.stream, "aclose", None)
            if aclose is not None:
                await aclose()
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            async for chunk in response.stream:
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await send({"type": "http.response.body", "body": b""})
