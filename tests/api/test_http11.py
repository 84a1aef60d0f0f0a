"""Donjon's HTTP/1.1 server on raw sockets: keep-alive, pipelining, 100-continue, limits, timeouts."""

from __future__ import annotations

import socket
import time

import pytest

from tests.support.servers import Server, start_donjon


class Conn:
    """A raw connection with a read buffer (pipelined answers may arrive in one packet)."""

    def __init__(self, server: Server):
        self.sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=10)
        self.buf = b""

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, n: int) -> bytes:
        if self.buf:
            data, self.buf = self.buf[:n], self.buf[n:]
            return data
        return self.sock.recv(n)

    def settimeout(self, t: float) -> None:
        self.sock.settimeout(t)

    def close(self) -> None:
        self.sock.close()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buf += chunk


def _connect(server: Server) -> Conn:
    return Conn(server)


def _read_response(s: Conn) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in s.buf:
        s._fill()
    head, _, s.buf = s.buf.partition(b"\r\n\r\n")
    lines = head.decode("latin_1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(s.buf) < length:
        s._fill()
    body, s.buf = s.buf[:length], s.buf[length:]
    return status, headers, body


def test_keep_alive_and_pipelining(donjon: Server) -> None:
    s = _connect(donjon)
    s.sendall(b"GET /statistics HTTP/1.1\r\nHost: x\r\n\r\nGET /system HTTP/1.1\r\nHost: x\r\n\r\n")
    status1, _, body1 = _read_response(s)
    status2, headers2, body2 = _read_response(s)
    assert status1 == status2 == 200
    assert b"CountInstances" in body1 and b"ApiVersion" in body2
    assert headers2["connection"] == "keep-alive"
    s.sendall(b"GET /statistics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, _ = _read_response(s)
    assert status == 200 and headers["connection"] == "close"
    assert s.recv(10) == b""
    s.close()


def test_expect_100_continue_and_chunked_upload(donjon: Server, samples) -> None:
    data = (samples / "DummyCT.dcm").read_bytes()
    s = _connect(donjon)
    s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
    half = len(data) // 2
    for part in (data[:half], data[half:]):
        s.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
    s.sendall(b"0\r\n\r\n")
    status, _, body = _read_response(s)
    assert status == 200 and b"66a662ce-7430e543-bad44d47-0dc5a943-ec7a538d" in body
    s.close()


def test_malformed_requests_get_400_and_the_server_stays_up(donjon: Server) -> None:
    for raw in (b"BLAH\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n"):
        s = _connect(donjon)
        s.sendall(raw)
        status, _, _ = _read_response(s)
        assert status == 400
        s.close()
    assert donjon.get("/system").status_code == 200


def test_oversized_headers_and_bodies(donjon: Server) -> None:
    s = _connect(donjon)
    s.sendall(b"GET /system HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    status, _, _ = _read_response(s)
    assert status == 431
    s.close()
    s = _connect(donjon)
    s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n")
    status, _, _ = _read_response(s)
    assert status == 413
    s.close()
    assert donjon.get("/system").status_code == 200


def test_head_sends_no_body(donjon: Server, samples) -> None:
    iid = donjon.upload(samples / "DummyCT.dcm").json()["ID"]
    s = _connect(donjon)
    s.sendall(f"HEAD /instances/{iid}/file HTTP/1.1\r\nHost: x\r\n\r\nGET /statistics HTTP/1.1\r\nHost: x\r\n\r\n"
              .encode())
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"HTTP/1.1 200") < 2 and time.monotonic() < deadline:
        data += s.recv(65536)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: " in first.lower()
    assert rest.startswith(b"HTTP/1.1 200")  # the DICOM body was not sent after the HEAD answer
    s.close()


def test_big_files_pipelined_come_whole_and_in_order(donjon: Server, samples) -> None:
    """Files above 256 kB are read by the loop from the page cache and written after the head
    without being copied into one buffer: pipelined on one connection, each answer has its exact
    length and bytes, the next answer right after it; a HEAD in between sends no body."""
    files = [samples / "SignedCT.dcm", samples / "Phenix" / "IM-0001-0001.dcm"]
    ids = [donjon.upload(f).json()["ID"] for f in files]
    s = _connect(donjon)
    requests = [f"GET /instances/{ids[0]}/file", f"HEAD /instances/{ids[1]}/file", f"GET /instances/{ids[1]}/file",
                f"GET /instances/{ids[0]}/file", "GET /system"]
    s.sendall("".join(f"{r} HTTP/1.1\r\nHost: x\r\n\r\n" for r in requests).encode())
    expected = [files[0].read_bytes(), b"", files[1].read_bytes(), files[0].read_bytes()]
    for i, want in enumerate(expected):
        status, headers, body = _read_response(s) if i != 1 else _read_head(s)
        assert status == 200 and headers["content-type"] == "application/dicom"
        assert body == want
        if i == 1:
            assert int(headers["content-length"]) == files[1].stat().st_size
    status, _, body = _read_response(s)
    assert status == 200 and b'"Version"' in body


def _read_head(s: Conn) -> tuple[int, dict[str, str], bytes]:
    """An answer to HEAD: its headers only (its Content-Length is that of the GET)."""
    while b"\r\n\r\n" not in s.buf:
        s._fill()
    head, _, s.buf = s.buf.partition(b"\r\n\r\n")
    lines = head.decode("latin_1").split("\r\n")
    return int(lines[0].split()[1]), {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}, b""


@pytest.fixture(scope="module")
def impatient() -> Server:
    server = start_donjon({"HttpRequestTimeout": 1, "KeepAliveTimeout": 1})
    yield server
    server.stop()


def test_slow_clients_are_dropped(impatient: Server) -> None:
    s = _connect(impatient)
    s.sendall(b"GET /system HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    s.settimeout(10)
    start = time.monotonic()
    assert s.recv(100) == b""
    assert time.monotonic() - start < 5
    s.close()
    idle = _connect(impatient)
    idle.settimeout(10)
    start = time.monotonic()
    assert idle.recv(100) == b""  # an idle keep-alive connection is closed too
    assert time.monotonic() - start < 5
    assert impatient.get("/system").status_code == 200
