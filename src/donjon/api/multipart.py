"""Splitting a multipart/form-data body into its parts (Orthanc posts each part on its own)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ErrorCode, OrthancError


@dataclass
class Part:
    headers: dict[str, str]
    body: bytes


def boundary_of(content_type: str) -> str | None:
    for item in content_type.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        if key.strip().lower() == "boundary":
            return value.strip().strip('"')
    return None


def split_parts(body: bytes, boundary: str) -> list[Part]:
    delimiter = b"--" + boundary.encode("latin_1")
    if not boundary or delimiter not in body:
        raise OrthancError(ErrorCode.BAD_REQUEST, "Malformed multipart body")
    parts: list[Part] = []
    chunks = body.split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise OrthancError(ErrorCode.BAD_REQUEST, "Malformed multipart body")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("latin_1").split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, content))
    return parts
