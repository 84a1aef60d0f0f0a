"""Requests, responses and routing, shaped for Orthanc's irregular API.

Generic routers cannot express Orthanc's rules (empty path components ignored, 405 with an `Allow`
list across handlers, valueless flags such as `?expand`, plain-text and empty answers), and the hot
routes (file download, listings) gain from not building per-request objects they do not use.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from ..errors import ErrorCode, OrthancError

JSON_TYPE = b"application/json; charset=utf-8"
TEXT_TYPE = b"text/plain"
MAX_BODY = 4 * 1024 * 1024 * 1024  # refuse bodies over 4 GiB outright


class Request:
    """One HTTP request, whichever server delivered it (our HTTP/1.1 server, or any ASGI server)."""

    __slots__ = ("_body", "_query", "client", "components", "headers", "method", "path", "query_string",
                 "receive", "together", "username")

    def __init__(self, method: str, path: str, query_string: bytes, headers: dict[str, str], client: str,
                 body: bytes | None = None,
                 receive: Callable[[], Awaitable[dict[str, Any]]] | None = None):
        self.method = method
        self.path = path
        self.components = [] if "\x00" in path else [c for c in path.split("/") if c]
        self.query_string = query_string
        self._query: dict[str, str] | None = None
        self.headers = headers
        self.client = client
        self.username = ""
        self._body = body
        self.receive = receive
        self.together = False  # other connections are open: short writes may share a transaction

    @classmethod
    def from_asgi(cls, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]]) -> Request:
        headers = {k.decode("latin_1").lower(): v.decode("latin_1") for k, v in scope.get("headers", ())}
        client = scope.get("client")
        request = cls(scope["method"], scope["path"], scope.get("query_string", b""), headers,
                      client[0] if client else "", None, receive)
        raw = scope.get("raw_path")
        if raw and b"%" in raw and request.components:  # an encoded "/" stays in its component
            request.components = [urllib.parse.unquote(c) for c in raw.decode("latin_1").split("/") if c]
        return request

    def derive(self, headers: dict[str, str], body: bytes) -> Request:
        """The same request with another body (one part of a multipart upload)."""
        sub = Request(self.method, self.path, self.query_string, headers, self.client, body)
        sub.username = self.username
        return sub

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            q: dict[str, str] = {}
            if self.query_string:
                for part in self.query_string.split(b"&"):
                    if not part:
                        continue
                    key, _, value = part.partition(b"=")
                    k = urllib.parse.unquote_plus(key.decode("latin_1"))
                    q[k] = urllib.parse.unquote_plus(value.decode("latin_1"))
            self._query = q
        return self._query

    def flag(self, name: str) -> bool:
        """A Boolean GET argument: absent -> False; "", 1, true -> True; 0, false -> False."""
        value = self.query.get(name)
        if value is None:
            return False
        v = value.strip().lower()
        if v in ("", "1", "true"):
            return True
        if v in ("0", "false"):
            return False
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE,
                           f'The Boolean argument "{name}" must be "true", "false", "1" or "0", found: {value}')

    async def body(self, limit: int = MAX_BODY) -> bytes:
        if self._body is None:
            length = self.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                raise OrthancError(ErrorCode.BAD_REQUEST, "Request body too large", http_status=413)
            if self.receive is None:
                self._body = b""
                return self._body
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionAbortedError("client disconnected")
                chunk = message.get("body", b"")
                if chunk:
                    size += len(chunk)
                    if size > limit:
                        raise OrthancError(ErrorCode.BAD_REQUEST, "Request body too large", http_status=413)
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif len(self._body) > limit:
            raise OrthancError(ErrorCode.BAD_REQUEST, "Request body too large", http_status=413)
        return self._body

    async def json(self) -> Any:
        body = await self.body(64 * 1024 * 1024)
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise OrthancError(ErrorCode.BAD_REQUEST, "The body is not valid JSON") from None


@dataclass
class Response:
    status: int = 200
    body: bytes | memoryview = b""  # a view: a file read into a buffer (storage/folder.py `read_resident`)
    content_type: bytes | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    stream: AsyncIterator[bytes] | None = None


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), JSON_TYPE)


def text_response(text: str | bytes, status: int = 200, content_type: bytes = TEXT_TYPE) -> Response:
    return Response(status, text.encode("utf-8") if isinstance(text, str) else text, content_type)


def empty_response(status: int = 200) -> Response:
    return Response(status, b"", TEXT_TYPE if status == 200 else None)


EMPTY_JSON_OBJECT = Response(200, b"{}", b"application/json")

FILE_CHUNK = 1024 * 1024


async def file_stream(pool: Executor, source: str | IO[bytes]) -> AsyncIterator[bytes]:
    """The body of a streamed answer: a file read chunk by chunk in `pool`, off the event loop.

    `source` is a path (opened in `pool` when the answer starts) or a file already open; either way
    the file is closed when the stream ends or is dropped.
    """
    loop = asyncio.get_running_loop()
    f = await loop.run_in_executor(pool, open, source, "rb") if isinstance(source, str) else source
    try:
        while True:
            chunk = await loop.run_in_executor(pool, f.read, FILE_CHUNK)
            if not chunk:
                break
            yield chunk
    finally:
        f.close()

Handler = Callable[..., Awaitable[Response]]


class _Node:
    __slots__ = ("children", "handlers", "param", "param_name", "rest_name")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.param_name = ""
        self.rest_name = ""  # a trailing {name:path} catches every remaining component
        self.handlers: dict[str, Handler] = {}


class Router:
    """Routes are patterns like `/patients/{id}/studies`; a last `{rest:path}` takes what remains."""

    def __init__(self) -> None:
        self.root = _Node()
        self.patterns: list[tuple[str, str]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        node = self.root
        for part in [p for p in pattern.split("/") if p]:
            if part.startswith("{") and part.endswith(":path}"):
                if node.param is None:
                    node.param = _Node()
                node.param.rest_name = part[1:-6]
                node = node.param
                break
            if part.startswith("{") and part.endswith("}"):
                if node.param is None:
                    node.param = _Node()
                    node.param.param_name = part[1:-1]
                elif not node.param.param_name:
                    node.param.param_name = part[1:-1]
                node = node.param
            else:
                node = node.children.setdefault(part, _Node())
        if method in node.handlers:
            raise ValueError(f"duplicate route {method} {pattern}")
        node.handlers[method] = handler
        self.patterns.append((method, pattern))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.add(method, pattern, fn)
            return fn
        return deco

    def resolve(self, components: list[str]) -> tuple[dict[str, Handler] | None, dict[str, Any]]:
        """The handlers of the matching node (by method) and the captured parameters."""
        params: list[tuple[str, Any]] = []
        found = self._walk(self.root, components, 0, params)
        return found, dict(params)

    def _walk(self, node: _Node, comps: list[str], i: int, params: list[tuple[str, Any]]
              ) -> dict[str, Handler] | None:
        if i == len(comps):
            return node.handlers or None
        part = comps[i]
        child = node.children.get(part)
        if child is not None:
            found = self._walk(child, comps, i + 1, params)
            if found:
                return found
        pnode = node.param
        if pnode is not None:
            if pnode.rest_name:
                if pnode.handlers:
                    params.append((pnode.rest_name, comps[i:]))
                    return pnode.handlers
                return None
            params.append((pnode.param_name, part))
            found = self._walk(pnode, comps, i + 1, params)
            if found:
                return found
            params.pop()
        return None
