"""Compression bombs, oversized and half-sent HTTP requests, slow and idle connections."""

from __future__ import annotations

import gzip
import io
import struct
import time
import zipfile
from collections.abc import Iterator

import pytest

from tests.faults.support import (
    MB,
    alive,
    assert_error,
    closed_within,
    connect,
    deflated_zeros,
    gzip_zeros,
    peak_rss,
    reset_peak_rss,
)
from tests.support.servers import SAMPLES, Server, start_donjon

GIB = 1024 * MB


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"StableAge": 1000, "MaximumDecompressedSize": 32, "MaximumZipUncompressedSize": 256,
                      "MaximumRequestBodySize": 64, "HttpRequestTimeout": 3})
    yield s
    s.stop()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    bomb = gzip_zeros(GIB)  # 1 GiB of zeros in about 1 MB
    assert len(bomb) < 2 * MB
    return bomb


def _bounded(server: Server, before: int, budget: int, what: str) -> None:
    grown = peak_rss(server) - before
    assert grown < budget, f"{what}: peak RSS grew by {grown // MB} MB"


def test_gzip_bomb(server: Server, gzip_bomb: bytes) -> None:
    before = reset_peak_rss(server)
    r = server.post("/instances", content=gzip_bomb, headers={"content-encoding": "gzip"})
    assert "MaximumDecompressedSize" in assert_error(r, 413)["Details"]
    _bounded(server, before, 16 * MB, "gzip bomb")
    # the same bomb with a lying size in its trailer is inflated only up to the limit
    liar = gzip_bomb[:-4] + struct.pack("<L", 1000)
    before = reset_peak_rss(server)
    assert_error(server.post("/instances", content=liar, headers={"content-encoding": "gzip"}), 413)
    _bounded(server, before, 3 * 32 * MB, "gzip bomb with a lying ISIZE")
    assert_error(server.post("/instances", content=b"\x1f\x8b not gzip", headers={"content-encoding": "gzip"}), 400)
    ok = gzip.compress((SAMPLES / "DummyCT.dcm").read_bytes())
    assert server.post("/instances", content=ok, headers={"content-encoding": "gzip"}).status_code == 200
    assert alive(server)


def _zip(entries: list[tuple[str, int]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, size in entries:
            with z.open(name, "w", force_zip64=True) as f:
                chunk = b"\0" * MB
                for _ in range(size // MB):
                    f.write(chunk)
    return out.getvalue()


def test_zip_bombs(server: Server) -> None:
    one_big = _zip([("big.dcm", 256 * MB)])
    before = reset_peak_rss(server)
    assert "MaximumDecompressedSize" in assert_error(server.post("/instances", content=one_big), 413)["Details"]
    _bounded(server, before, 16 * MB, "ZIP bomb (one entry)")
    many = _zip([(f"{i}.dcm", 16 * MB) for i in range(40)])  # 640 MB in all, each entry under the limit
    before = reset_peak_rss(server)
    assert "MaximumZipUncompressedSize" in assert_error(server.post("/instances", content=many), 413)["Details"]
    _bounded(server, before, 3 * 32 * MB, "ZIP bomb (many entries)")
    broken = bytearray(_zip([("a.dcm", 2 * MB)]))
    broken[40:80] = b"\xff" * 40  # inside the deflated stream
    assert server.post("/instances", content=bytes(broken)).status_code in (200, 400)
    assert alive(server)


def test_body_and_header_limits(server: Server) -> None:
    before = reset_peak_rss(server)
    sock = connect(server.http_port)
    sock.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (65 * MB))
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert b"application/json" in answer and b"nosniff" in answer and b'"HttpStatus": 413' in answer
    sock.close()
    sock = connect(server.http_port)
    sock.sendall(b"GET /system HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * (70 * 1024) + b"\r\n\r\n")
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431") and b"nosniff" in answer, answer[:100]
    sock.close()
    sock = connect(server.http_port)
    sock.sendall(b"GARBAGE\x00\xff /system HTTP/9.9\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    sock.close()
    _bounded(server, before, 16 * MB, "oversized body and headers")
    assert alive(server)


def test_slow_and_half_open_clients_do_not_block_others(server: Server) -> None:
    before = reset_peak_rss(server)
    idle = [connect(server.http_port) for _ in range(200)]  # connected, never a byte
    slow = connect(server.http_port)  # a slow-loris: one header byte every 0.4 s
    half_body = connect(server.http_port)  # headers, then part of the body, then nothing
    half_body.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
    request = b"GET /system HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 100
    start = time.monotonic()
    slow_closed = None
    for i, byte in enumerate(request):
        try:
            slow.send(bytes([byte]))
        except OSError:
            slow_closed = time.monotonic() - start
            break
        if i % 5 == 0:
            t = time.monotonic()
            assert server.get("/system").status_code == 200
            assert time.monotonic() - t < 2.0  # others are served at once
        time.sleep(0.4)
        if time.monotonic() - start > 10:
            break
    if slow_closed is None:
        assert closed_within(slow, 1)
        slow_closed = time.monotonic() - start
    assert slow_closed < 3 + 2, slow_closed  # HttpRequestTimeout from the first byte, plus the sweeper
    assert closed_within(half_body, 3)
    assert all(closed_within(s, 0.2) for s in idle)  # KeepAliveTimeout (1 s) long past
    for s in (*idle, slow, half_body):
        s.close()
    _bounded(server, before, 16 * MB, "slow and half-open clients")
    assert alive(server)


def test_deflated_transfer_syntax_bomb(server: Server) -> None:
    """A Deflated Explicit VR data set inflating to 1 GiB: bounded by MaximumDecompressedSize too."""
    from tests.faults.crafted import base_dataset, to_bytes

    meta = to_bytes(base_dataset(syntax="1.2.840.10008.1.2.1.99"))
    head = meta[:132 + 12 + struct.unpack_from("<L", meta, 140)[0]]  # the meta header only
    body, _ = deflated_zeros(GIB)
    before = reset_peak_rss(server)
    assert_error(server.post("/instances", content=head + body), 400)
    _bounded(server, before, 3 * 32 * MB, "deflated data set bomb")
    assert alive(server)
