"""multipart/related (RFC 2387) as DICOMweb uses it, and the negotiation of `Accept` headers.

The reader is incremental (`feed` chunks, get the finished parts), so a STOW-RS body or a WADO-RS answer
from a remote server is split without holding it twice; the writer frames parts one at a time, so a
study is streamed instance by instance.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ErrorCode, OrthancError


@dataclass(frozen=True)
class MediaRange:
    """One item of an Accept header (or a Content-Type): `type/subtype; name=value...; q=...`."""

    media: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0
    position: int = 0

    @property
    def type_param(self) -> str | None:
        value = self.params.get("type")
        return value.lower() if value is not None else None

    @property
    def transfer_syntax(self) -> str | None:
        return self.params.get("transfer-syntax")


def _split_unquoted(text: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes."""
    out, current, quoted = [], [], False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == separator and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def parse_media_type(text: str, position: int = 0) -> MediaRange:
    pieces = _split_unquoted(text, ";")
    media = pieces[0].strip().lower()
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        name, sep, value = piece.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        if name == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        else:
            params[name] = value
    return MediaRange(media, params, q, position)


def parse_accept(header: str | None) -> list[MediaRange]:
    """The acceptable media ranges, most preferred first (q, then order); empty header -> []."""
    if not header or not header.strip():
        return []
    items = [parse_media_type(item, i) for i, item in enumerate(_split_unquoted(header, ",")) if item.strip()]
    items = [m for m in items if m.q > 0]
    return sorted(items, key=lambda m: (-m.q, m.position))




def boundary_of(content_type: str) -> str | None:
    value = parse_media_type(content_type).params.get("boundary")
    return value or None


def new_boundary() -> str:
    return uuid.uuid4().hex


def multipart_type(boundary: str, part_type: str, transfer_syntax: str | None = None) -> bytes:
    """The Content-Type of a multipart/related answer whose parts are `part_type`."""
    syntax = f"; transfer-syntax={transfer_syntax}" if transfer_syntax else ""
    return f'multipart/related; type="{part_type}"{syntax}; boundary={boundary}'.encode("latin_1")


def part_header(boundary: str, content_type: str, length: int | None = None, location: str | None = None) -> bytes:
    head = f"--{boundary}\r\nContent-Type: {content_type}\r\n"
    if length is not None:
        head += f"Content-Length: {length}\r\n"
    if location is not None:
        head += f"Content-Location: {location}\r\n"
    return (head + "\r\n").encode("utf-8")


def closing(boundary: str) -> bytes:
    return f"--{boundary}--\r\n".encode("latin_1")


def build(boundary: str, parts: list[tuple[str, bytes]]) -> bytes:
    """A whole multipart body from (content type, body) pairs (small answers)."""
    chunks: list[bytes] = []
    for content_type, body in parts:
        chunks += [part_header(boundary, content_type, len(body)), body, b"\r\n"]
    chunks.append(closing(boundary))
    return b"".join(chunks)


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


class MultipartReader:
    """Incremental parser: `feed()` returns the parts completed by each chunk; `close()` checks the end.

    Raises `OrthancError(BAD_REQUEST)` on a malformed body (no opening delimiter, headers without an
    empty line, a body that ends inside a part).
    """

    MAX_HEADERS = 64 * 1024

    def __init__(self, boundary: str):
        if not boundary or len(boundary) > 200:
            raise OrthancError(ErrorCode.BAD_REQUEST, "Bad multipart boundary")
        self._dash = b"--" + boundary.encode("latin_1")
        self._delimiter = b"\r\n" + self._dash
        self._buffer = bytearray()
        self._state = "preamble"  # preamble, headers, body, done
        self._headers: dict[str, str] = {}
        self._scanned = 0

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, chunk: bytes) -> list[Part]:
        if self._state == "done" or not chunk:
            return []
        self._buffer += chunk
        return list(self._parse())

    def close(self) -> None:
        if self._state != "done":
            raise OrthancError(ErrorCode.BAD_REQUEST, "Malformed multipart body (no closing delimiter)")

    def _parse(self) -> Iterator[Part]:
        buf = self._buffer
        while True:
            if self._state == "preamble":
                # the first delimiter may start the body (no CRLF before it)
                if buf.startswith(self._dash):
                    pos = 0
                else:
                    pos = buf.find(self._delimiter)
                    if pos < 0:
                        if len(buf) > self.MAX_HEADERS:
                            raise OrthancError(ErrorCode.BAD_REQUEST, "Malformed multipart body (no delimiter)")
                        return
                    pos += 2
                end = pos + len(self._dash)
                if len(buf) < end + 2:
                    return
                del buf[:end]
                if not self._after_delimiter(buf):
                    return
            elif self._state == "headers":
                pos = buf.find(b"\r\n\r\n")
                if pos < 0:
                    if buf.startswith(b"\r\n"):  # a part without any header
                        pos = -2
                    elif len(buf) > self.MAX_HEADERS:
                        raise OrthancError(ErrorCode.BAD_REQUEST, "Malformed multipart body (headers too long)")
                    else:
                        return
                headers: dict[str, str] = {}
                if pos >= 0:
                    for line in bytes(buf[:pos]).decode("latin_1").split("\r\n"):
                        name, sep, value = line.partition(":")
                        if sep and name.strip():
                            headers[name.strip().lower()] = value.strip()
                        elif line.strip():
                            raise OrthancError(ErrorCode.BAD_REQUEST, "Malformed multipart body (bad header)")
                del buf[:pos + 4]
                self._headers = headers
                self._state = "body"
            elif self._state == "body":
                pos = buf.find(self._delimiter, self._scanned)
                if pos < 0:
                    self._scanned = max(0, len(buf) - len(self._delimiter))  # do not search twice
                    return
                if len(buf) < pos + len(self._delimiter) + 2:
                    return
                body = bytes(buf[:pos])
                del buf[:pos + len(self._delimiter)]
                self._scanned = 0
                yield Part(self._headers, body)
                if not self._after_delimiter(buf):
                    return
            elif self._state == "delimiter-line":
                if len(buf) < 2 or not self._after_delimiter(buf):
                    return
            else:
                return

    def _after_delimiter(self, buf: bytearray) -> bool:
        """After `--boundary`: `--` ends the body, else the line ends and headers follow."""
        if buf[:2] == b"--":
            self._state = "done"
            buf.clear()
            return False
        eol = buf.find(b"\r\n")
        if eol < 0:
            self._state = "delimiter-line"
            return False
        del buf[:eol + 2]  # transport padding after the delimiter is ignored
        self._state = "headers"
        return True


def split(body: bytes, boundary: str) -> list[Part]:
    reader = MultipartReader(boundary)
    parts = reader.feed(body)
    reader.close()
    return parts
