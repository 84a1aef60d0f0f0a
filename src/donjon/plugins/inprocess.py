"""`RestApiGet/Post/Put/Delete` (and `...AfterPlugins`): the REST API called in-process by a plugin.

Orthanc runs such a call in the calling thread, without HTTP. Donjon does the same: the route's
coroutine runs on a private event loop of the calling thread, with an `Api` whose blocking work runs
inline. Nothing waits for the server's event loop or its HTTP thread pool, so a plugin may call the
REST API from any callback (change, REST, stored instance...) without deadlock. A call made while the
calling thread already runs such a loop (a plugin callback invoked inline by a core route) runs on
a thread of its own.

Instances stored by these calls get the origin `Plugins`, as in Orthanc (see `in_plugin_call`).
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from ..api.app import Api
from ..api.http import Request, Response
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from .exceptions import OrthancException

if TYPE_CHECKING:
    from ..api.app import DonjonApp

T = TypeVar("T")
_local = threading.local()
_STATUS_TO_ERROR = {400: ErrorCode.BAD_REQUEST, 401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN_ACCESS,
                    404: ErrorCode.UNKNOWN_RESOURCE, 405: ErrorCode.UNKNOWN_RESOURCE,
                    409: ErrorCode.REVISION, 412: ErrorCode.REVISION, 415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                    416: ErrorCode.BAD_RANGE}


def in_plugin_call() -> bool:
    """True while this thread serves a REST call made by a plugin."""
    return getattr(_local, "depth", 0) > 0


class InlineApi(Api):
    """The `Api` of in-process calls: blocking work runs in the calling thread."""

    def __init__(self, api: Api, io_pool: ThreadPoolExecutor):  # no pool of its own: see `run`
        self.ctx = api.ctx
        self.app = api.app
        self.pool = io_pool  # file reads of streamed answers only; they never wait for anything else

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(fn(*args))
        except Exception as e:  # raised where the future is awaited, as `run` raises it
            future.set_exception(e)
        return future


def as_body(body: bytes | bytearray | memoryview | str | None) -> bytes:
    """A body as the SDK takes it: bytes, or a string sent in UTF-8."""
    return body.encode("utf-8") if isinstance(body, str) else (bytes(body) if body is not None else b"")


def build_request(method: str, uri: str, body: bytes) -> Request:
    path, _, query = uri.partition("?")
    return Request(method, urllib.parse.unquote(path), query.encode("latin_1", "replace"), {}, "", body)


def error_of_status(status: int) -> OrthancException:
    return OrthancException(_STATUS_TO_ERROR.get(status, ErrorCode.INTERNAL_ERROR))


class InProcessRest:
    def __init__(self, get_app: Callable[[], DonjonApp | None]):
        self._get_app = get_app
        self._io_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="donjon-plugin-io")

    def call(self, request: Request) -> Response:
        """The core route's answer (errors raised as `OrthancException`)."""
        app = self._get_app()
        if app is None:
            raise OrthancException(ErrorCode.DATABASE_NOT_INITIALIZED)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._run(app, request)
        return self._in_new_thread(app, request)

    def _run(self, app: DonjonApp, request: Request) -> Response:
        loop = getattr(_local, "loop", None)
        if loop is None:
            loop = _local.loop = asyncio.new_event_loop()
        _local.depth = getattr(_local, "depth", 0) + 1
        try:
            return loop.run_until_complete(self._dispatch(app, request))
        finally:
            _local.depth -= 1

    def _in_new_thread(self, app: DonjonApp, request: Request) -> Response:
        outcome: list[Any] = []

        def target() -> None:
            try:
                outcome.append(self._run(app, request))
            except BaseException as e:  # handed to the caller
                outcome.append(e)
            finally:
                loop = getattr(_local, "loop", None)
                if loop is not None:
                    loop.close()
        thread = threading.Thread(target=target, name="donjon-plugin-nested", daemon=True)
        thread.start()
        thread.join()
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        result: Response = outcome[0]
        return result

    async def _dispatch(self, app: DonjonApp, request: Request) -> Response:
        handlers, params = app.router.resolve(request.components)
        handler = handlers.get(request.method) if handlers is not None else None
        if handler is None:
            raise OrthancException(ErrorCode.UNKNOWN_RESOURCE)
        try:
            response = await handler(InlineApi(app.api, self._io_pool), request, **params)
            if response.stream is not None:
                chunks = [chunk async for chunk in response.stream]
                response = Response(response.status, b"".join(chunks), response.content_type, response.headers)
            elif isinstance(response.body, memoryview):  # plugins get bytes
                response = Response(response.status, bytes(response.body), response.content_type, response.headers)
        except OrthancError as e:
            raise OrthancException.of(e) from None
        except EmptyAnswer as e:
            response = Response(e.status)
        if response.status >= 400:
            raise error_of_status(response.status)
        return response

    def close(self) -> None:
        self._io_pool.shutdown(wait=False)
