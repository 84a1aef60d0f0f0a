"""Orthanc's on-disk format for compressed attachments: 8-byte little-endian size, then zlib."""

from __future__ import annotations

import struct
import zlib

from ..errors import ErrorCode, OrthancError

_SIZE = struct.Struct("<Q")


def compress(data: bytes, level: int = 6) -> bytes:
    if not data:
        return b""
    return _SIZE.pack(len(data)) + zlib.compress(data, level)


def decompress(stored: bytes) -> bytes:
    if not stored:
        return b""
    if len(stored) < 8:
        raise OrthancError(ErrorCode.CORRUPTED_FILE)
    (size,) = _SIZE.unpack_from(stored, 0)
    try:
        out = zlib.decompress(memoryview(stored)[8:], bufsize=max(size, 1))
    except zlib.error:
        raise OrthancError(ErrorCode.CORRUPTED_FILE) from None
    if len(out) != size:
        raise OrthancError(ErrorCode.CORRUPTED_FILE)
    return out


def looks_compressed(stored: bytes) -> bool:
    """Whether `stored` starts as this format does (a size, then a zlib header), for files whose record
    was lost; `decompress` still checks the whole stream (zlib's Adler-32 and the size)."""
    if len(stored) < 10:
        return False
    cmf, flg = stored[8], stored[9]
    return cmf & 0x0F == 8 and (cmf * 256 + flg) % 31 == 0
