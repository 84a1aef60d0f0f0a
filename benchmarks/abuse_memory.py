#!/usr/bin/env python3
"""Server memory around each class of abusive request (docs/security.md, "Memory under abuse").

  abuse_memory.py [--config '{"Option": value}']

Starts one Donjon (default configuration, plus `--config`), then for each abuse: resets the process's
peak RSS (`/proc/PID/clear_refs`), sends the abuse, and reads VmHWM (the peak during) and VmRSS
(before, and 0.5 s after the answer). Prints a Markdown table; the answer column says what the client
got. Run with the project's venv python from the repository root.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults import crafted  # noqa: E402
from tests.faults.support import MB, connect, gzip_zeros, peak_rss, reset_peak_rss, status_value  # noqa: E402
from tests.support.servers import SAMPLES, Server, start_donjon  # noqa: E402

FLAIR = "Brainix/Flair/IM-0001-0001.dcm"


def _status(answer: bytes) -> str:
    line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    return line.split(" ", 2)[1] if line.startswith("HTTP/") else "closed"


def _raw(server: Server, request: bytes) -> str:
    sock = connect(server.http_port, timeout=30)
    try:
        sock.sendall(request)
        return _status(sock.recv(65536))
    except OSError:
        return "closed"
    finally:
        sock.close()


def _hold(port: int, count: int, first: bytes, seconds: float) -> str:
    """`count` connections that send `first` (maybe nothing) then stay silent for `seconds`."""
    socks = [connect(port) for _ in range(count)]
    for s in socks:
        if first:
            s.sendall(first)
    time.sleep(seconds)
    closed = 0
    for s in socks:
        s.settimeout(0.05)
        try:
            closed += s.recv(65536) == b""
        except TimeoutError:
            pass
        except OSError:
            closed += 1
        s.close()
    return f"{closed}/{count} closed by the server"


def _slow_bodies(server: Server, count: int, seconds: float) -> str:
    socks = [connect(server.http_port) for _ in range(count)]
    for s in socks:
        s.sendall(b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for s in socks:
            try:
                s.send(b"x" * 100)
            except OSError:
                pass
        time.sleep(0.2)
    for s in socks:
        s.close()
    return f"{count} trickling"


def _chunked(server: Server, path: str, size: int) -> str:
    sock = connect(server.http_port, timeout=60)
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"%x\r\n" % MB + b"[" * MB + b"\r\n"
        for _ in range(size // MB):
            sock.sendall(chunk)
        sock.sendall(b"0\r\n\r\n")
        return _status(sock.recv(65536))
    except OSError:
        return "closed"
    finally:
        sock.close()


def abuses(server: Server, instance: str, wado: str, uid: str) -> list[tuple[str, Callable[[], str]]]:
    deep = b'{"Level": "Study", "Query": {}, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    pdu = struct.pack(">BBL", 1, 0, 200) + b"\x00" * 20  # the first bytes of an A-ASSOCIATE-RQ
    get = server.get

    def status(r: object) -> str:
        return str(r.status_code)  # type: ignore[attr-defined]

    return [
        ("JSON nested 100,000 deep, POST /tools/find, x20",
         lambda: ",".join(sorted({status(server.post("/tools/find", content=deep)) for _ in range(20)}))),
        ("request headers of 1 MB", lambda: _raw(server, b"GET /system HTTP/1.1\r\nHost: x\r\nX-Pad: "
                                                 + b"a" * MB + b"\r\n\r\n")),
        ("Content-Length of 8 GiB declared", lambda: _raw(
            server, b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (8 << 30))),
        ("body of 64 MB (chunked, under the 4096 MB default) to /tools/find",
         lambda: _chunked(server, "/tools/find", 64 * MB)),
        ("gzip bomb, 1 GiB of zeros in 1 MB", lambda: status(server.post(
            "/instances", content=gzip_zeros(1 << 30), headers={"content-encoding": "gzip"}))),
        ("200 idle HTTP connections, 3 s", lambda: _hold(server.http_port, 200, b"", 3)),
        ("50 half-sent HTTP request lines, 3 s", lambda: _hold(server.http_port, 50, b"GET /sys", 3)),
        ("20 slow bodies (100 B / 0.2 s), 3 s", lambda: _slow_bodies(server, 20, 3)),
        ("100 silent DICOM connections, 3 s", lambda: _hold(server.dicom_port, 100, b"", 3)),
        ("50 half-sent A-ASSOCIATE-RQ, 3 s", lambda: _hold(server.dicom_port, 50, pdu, 3)),
        ("DICOM file, sequences nested 20,000 deep",
         lambda: status(server.post("/instances", content=crafted.deep_sequence(20_000)))),
        ("DICOM file, 2,000,000 items", lambda: status(server.post("/instances",
                                                                   content=crafted.many_items(2_000_000)))),
        ("/preview of a 65535 x 65535 claim (128 bytes of pixels)", lambda: status(get(f"/instances/{instance}/preview"))),
        ("rendered viewport=20000,20000 (288 x 288 image)", lambda: status(get(f"{wado}/rendered?viewport=20000,20000"))),
        ("rendered viewport=100,100,0,0,-20000,-20000", lambda: status(get(
            f"{wado}/rendered?viewport=100,100,0,0,-20000,-20000"))),
        ("rendered viewport=4096,4096 (the largest upscale allowed)",
         lambda: status(get(f"{wado}/rendered?viewport=4096,4096"))),
        ("WADO-URI rows=-1, columns=0", lambda: status(get(f"/wado?requestType=WADO&objectUID={uid}&rows=-1&columns=0"))),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="{}", help="extra configuration (JSON)")
    args = parser.parse_args()
    server = start_donjon({"StableAge": 1000, **json.loads(args.config)})
    try:
        huge = server.post("/instances", content=crafted.huge_image()).json()["ID"]
        server.upload(SAMPLES / FLAIR)
        import pydicom

        ds = pydicom.dcmread(SAMPLES / FLAIR, stop_before_pixels=True)
        wado = f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
        for _ in range(3):  # warm the code paths so that their first import does not count as growth
            server.get(f"{wado}/rendered?viewport=64,64")
            server.post("/tools/find", json={"Level": "Study", "Query": {}})
        print("| abuse | answer | RSS before (MB) | peak during (MB) | growth (MB) | RSS after (MB) |")
        print("|---|---|---|---|---|---|")
        for label, run in abuses(server, huge, wado, str(ds.SOPInstanceUID)):
            before = reset_peak_rss(server)
            answer = run()
            peak = peak_rss(server)
            time.sleep(0.5)
            after = status_value(server, "VmRSS")
            print(f"| {label} | {answer} | {before / MB:.0f} | {peak / MB:.0f} | {(peak - before) / MB:+.0f} | "
                  f"{after / MB:.0f} |", flush=True)
        assert server.get("/system").status_code == 200, "the server is not healthy after the abuses"
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    socket.setdefaulttimeout(60)
    raise SystemExit(main())
