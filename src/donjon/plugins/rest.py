"""REST routes added by a plugin (`RegisterRestCallback`), their `output` object, and the HTTP filter.

As in Orthanc, the routes of plugins are tried before the built-in API (a plugin may override a core
route), the path must match the whole regular expression, and the callback receives
`(output, uri, method=..., groups=..., headers=..., get=... (GET only), body=... (POST/PUT only))`.
"""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..api.http import Request, Response
from ..errors import ErrorCode, OrthancError
from .enums import METHOD_TO_SDK
from .exceptions import OrthancException, UnsupportedCall
from .guard import log_traceback

log = logging.getLogger("donjon.plugins")
_REALM_FORMAT = 'Basic realm="{}"'
# Orthanc refuses these statuses in SendHttpStatusCode/SendHttpStatus: they have dedicated calls
_DEDICATED_STATUSES = frozenset({301, 401, 405})
_PIL_MODES = {1: "L", 2: "I;16", 4: "RGB", 5: "RGBA"}  # PixelFormat -> Pillow mode


class RestOutput:
    """`orthanc.RestOutput`: one answer per request, headers set before it."""

    __module__ = "orthanc"

    def __init__(self, describe_errors: bool = True):
        self._describe_errors = describe_errors
        self._headers: list[tuple[bytes, bytes]] = []
        self._response: Response | None = None
        self._multipart: tuple[str, str, str] | None = None  # sub-type, content type, boundary
        self._parts: list[bytes] = []
        self._error_details: str | None = None

    def __getattr__(self, name: str) -> Any:
        raise UnsupportedCall(f"RestOutput.{name}")

    # -- answers --------------------------------------------------------------------------------
    def _answer(self, status: int, body: bytes = b"", content_type: bytes | None = None,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
        if self._response is not None or self._multipart is not None:
            raise OrthancException(ErrorCode.BAD_SEQUENCE_OF_CALLS)
        self._response = Response(status, body, content_type, [*self._headers, *(headers or [])])

    def AnswerBuffer(self, answer: bytes | str, mime_type: str) -> None:
        self._answer(200, _as_bytes(answer), mime_type.encode("latin_1"))

    def SendMethodNotAllowed(self, allowed_methods: str) -> None:
        self._answer(405, headers=[(b"allow", allowed_methods.encode("latin_1"))])

    def Redirect(self, redirection: str) -> None:
        self._answer(301, headers=[(b"location", redirection.encode("latin_1"))])

    def SendUnauthorized(self, realm: str) -> None:
        self._answer(401, headers=[(b"www-authenticate", _REALM_FORMAT.format(realm).encode("latin_1"))])

    def SendHttpStatusCode(self, status: int) -> None:
        self._check_status(status)
        self._answer(int(status))

    def SendHttpStatus(self, status: int, body: bytes | str) -> None:
        """The body is only sent with `HttpDescribeErrors`, as in Orthanc."""
        self._check_status(status)
        self._answer(int(status), _as_bytes(body) if self._describe_errors else b"")

    def CompressAndAnswerPngImage(self, format: int, width: int, height: int, pitch: int,
                                  buffer: bytes) -> None:
        self._answer(200, _encode_image("PNG", format, width, height, pitch, buffer), b"image/png")

    def CompressAndAnswerJpegImage(self, format: int, width: int, height: int, pitch: int,
                                   buffer: bytes, quality: int) -> None:
        self._answer(200, _encode_image("JPEG", format, width, height, pitch, buffer, quality), b"image/jpeg")

    @staticmethod
    def _check_status(status: int) -> None:
        if int(status) in _DEDICATED_STATUSES or not 100 <= int(status) <= 599:
            raise OrthancException(ErrorCode.PARAMETER_OUT_OF_RANGE)

    # -- headers --------------------------------------------------------------------------------
    def SetHttpHeader(self, key: str, value: str) -> None:
        self._headers.append((key.lower().encode("latin_1"), value.encode("latin_1")))

    def SetCookie(self, cookie: str, value: str) -> None:
        self._headers.append((b"set-cookie", f"{cookie}={value}".encode("latin_1")))

    def SetHttpErrorDetails(self, details: str, log: int) -> None:
        self._error_details = details

    # -- multipart ------------------------------------------------------------------------------
    def StartMultipartAnswer(self, sub_type: str, content_type: str) -> None:
        if self._response is not None or self._multipart is not None:
            raise OrthancException(ErrorCode.BAD_SEQUENCE_OF_CALLS)
        self._multipart = (sub_type, content_type, uuid.uuid4().hex)

    def SendMultipartItem(self, answer: bytes | str) -> None:
        if self._multipart is None:
            raise OrthancException(ErrorCode.BAD_SEQUENCE_OF_CALLS)
        self._parts.append(_as_bytes(answer))

    # -- the result -----------------------------------------------------------------------------
    def response(self) -> Response | None:
        if self._multipart is not None:
            sub_type, content_type, boundary = self._multipart
            out = io.BytesIO()
            for part in self._parts:
                out.write(f"--{boundary}\r\nContent-Type: {content_type}\r\nContent-Length: {len(part)}\r\n\r\n"
                          .encode("latin_1"))
                out.write(part)
                out.write(b"\r\n")
            out.write(f"--{boundary}--\r\n".encode("latin_1"))
            ctype = f'multipart/{sub_type}; type="{content_type}"; boundary={boundary}'
            return Response(200, out.getvalue(), ctype.encode("latin_1"), list(self._headers))
        return self._response

    @property
    def error_details(self) -> str | None:
        return self._error_details


def _as_bytes(value: bytes | bytearray | memoryview | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _encode_image(kind: str, pixel_format: int, width: int, height: int, pitch: int, buffer: bytes,
                  quality: int = 90) -> bytes:
    from PIL import Image

    mode = _PIL_MODES.get(int(pixel_format))
    if mode is None or (kind == "JPEG" and mode == "I;16"):
        raise OrthancException(ErrorCode.INCOMPATIBLE_IMAGE_FORMAT)
    image = Image.frombuffer(mode, (width, height), bytes(buffer), "raw", mode, pitch, 1)
    out = io.BytesIO()
    if kind == "JPEG":
        image.save(out, "JPEG", quality=int(quality))
    else:
        image.save(out, "PNG")
    return out.getvalue()


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    callback: Callable[..., Any]


class PluginRoutes:
    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def __bool__(self) -> bool:
        return bool(self._routes)

    def add(self, regex: str, callback: Callable[..., Any]) -> None:
        if not isinstance(regex, str) or not callable(callback):
            raise ValueError("Expected a string (URI) and a callback function")
        log.info("Registering a Python REST callback on URI: %s", regex)
        self._routes.append(_Route(re.compile(regex), callback))

    def match(self, path: str) -> tuple[Callable[..., Any], tuple[str, ...]] | None:
        for route in self._routes:
            m = route.pattern.fullmatch(path)
            if m is not None:
                return route.callback, tuple(g if g is not None else "" for g in m.groups())
        return None

    def answer(self, found: tuple[Callable[..., Any], tuple[str, ...]], request: Request, method: str,
               body: bytes | None, describe_errors: bool) -> Response:
        """Run the callback (in the calling thread); a failure is Orthanc's `Plugin` error (500)."""
        callback, groups = found
        output = RestOutput(describe_errors)
        kwargs: dict[str, Any] = {"method": method, "groups": groups, "headers": dict(request.headers)}
        if method == "GET":
            kwargs["get"] = dict(request.query)
        if method in ("POST", "PUT"):
            kwargs["body"] = body if body is not None else b""
        try:
            callback(output, request.path, **kwargs)
        except (Exception, SystemExit):
            log_traceback("REST callback")
            raise OrthancError(ErrorCode.PLUGIN, output.error_details) from None
        response = output.response()
        if response is None:
            log.error("The Python REST callback of %s %s did not answer", method, request.path)
            raise OrthancError(ErrorCode.PLUGIN, "The Python REST callback did not answer")
        return response


def filter_arguments(request: Request, method: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments of Orthanc's incoming-HTTP-request filter: `(uri, method=, ip=, headers=, get=)`."""
    kwargs: dict[str, Any] = {"method": METHOD_TO_SDK.get(method, 1), "ip": request.client,
                              "headers": dict(request.headers)}
    if method == "GET":
        kwargs["get"] = dict(request.query)
    return (request.path,), kwargs
