"""Helpers of the fault suite: peak memory of a server process, error-answer checks, raw sockets."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from tests.support.servers import Server

KB = 1024
MB = 1024 * 1024


def reset_peak_rss(server: Server) -> int:
    """Reset the process's peak RSS (VmHWM) to its current RSS; the current RSS in bytes."""
    Path(f"/proc/{server.process.pid}/clear_refs").write_text("5")
    return status_value(server, "VmRSS")


def peak_rss(server: Server) -> int:
    return status_value(server, "VmHWM")


def status_value(server: Server, key: str) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * KB
    raise AssertionError(f"no {key} in /proc/{server.process.pid}/status")


def assert_error(r: httpx.Response, *statuses: int) -> dict:
    """An error answer as the issue wants it: the status, Orthanc's JSON body, JSON type, nosniff."""
    assert r.status_code in statuses, (r.status_code, r.request.method, r.request.url, r.text[:300])
    assert r.headers.get("content-type", "").startswith("application/json"), (r.request.url, r.headers)
    assert r.headers.get("x-content-type-options") == "nosniff", (r.request.url, r.headers)
    body = r.json()
    assert body["HttpStatus"] == r.status_code and isinstance(body["OrthancStatus"], int), body
    return body


def alive(server: Server) -> bool:
    assert server.process.poll() is None, f"the server died:\n{server.log()[-3000:]}"
    return server.get("/system").status_code == 200


def connect(port: int, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the peer closes `sock` within `seconds` (whatever it sends before)."""
    sock.settimeout(seconds)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def deflated_zeros(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of `size` zero bytes, built in milliseconds (full flushes make every 1 MB
    block compress to the same bytes), and the CRC-32 of the data (0 past 64 MB: a bomb is refused
    before its end, where the CRC would be checked)."""
    import zlib

    chunk = b"\0" * MB
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(size // MB if size <= 64 * MB else 0):
        crc = zlib.crc32(chunk, crc)
    return block * (size // MB) + b"\x03\x00", crc  # then an empty final fixed block


def gzip_zeros(size: int) -> bytes:
    import struct

    body, crc = deflated_zeros(size)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + body + struct.pack("<LL", crc, size & 0xFFFFFFFF)
