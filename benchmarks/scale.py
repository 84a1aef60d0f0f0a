#!/usr/bin/env python3
"""Scale benchmarks: does Donjon slow down as its index grows?

  scale.py fill STORAGE N            index N synthetic instances into STORAGE (real indexing code, one
                                     transaction per 1,000 instances; `--files` also writes the files)
  scale.py measure STORAGE [--ingest DATA]
                                     start Donjon on STORAGE: start-up time, /statistics latency and,
                                     with --ingest, REST ingest rate of a bench data set (then removed)

Figures go to stdout as Markdown table rows. Run with the project's venv python.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _element(tag: int, vr: bytes, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\x00" if vr == b"UI" else b" "
    return (tag >> 16).to_bytes(2, "little") + (tag & 0xFFFF).to_bytes(2, "little") + vr + \
        len(value).to_bytes(2, "little") + value


def synthetic_instance(p: int, s: int, r: int, i: int) -> bytes:
    """A small explicit-VR little-endian CT-like file (no pixel data), deterministic."""
    root = "1.2.826.0.1.3680043.8.498"
    study = f"{root}.1.{p}.{s}".encode()
    series = f"{root}.2.{p}.{s}.{r}".encode()
    sop = f"{root}.3.{p}.{s}.{r}.{i}".encode()
    meta_body = _element(0x00020010, b"UI", b"1.2.840.10008.1.2.1") + \
        _element(0x00020003, b"UI", sop) + _element(0x00020002, b"UI", b"1.2.840.10008.5.1.4.1.1.2")
    meta = _element(0x00020000, b"UL", len(meta_body).to_bytes(4, "little")) + meta_body
    date = f"2020{(p % 12) + 1:02d}{(s % 28) + 1:02d}".encode()
    body = b"".join([
        _element(0x00080016, b"UI", b"1.2.840.10008.5.1.4.1.1.2"),
        _element(0x00080018, b"UI", sop),
        _element(0x00080020, b"DA", date),
        _element(0x00080030, b"TM", b"120000"),
        _element(0x00080050, b"SH", f"ACC{p:06d}{s}".encode()),
        _element(0x00080060, b"CS", b"CT"),
        _element(0x0008103E, b"LO", f"Series {r}".encode()),
        _element(0x00100010, b"PN", f"SCALE^PATIENT{p:07d}".encode()),
        _element(0x00100020, b"LO", f"SC{p:07d}".encode()),
        _element(0x00100030, b"DA", b"19700101"),
        _element(0x00100040, b"CS", b"O"),
        _element(0x0020000D, b"UI", study),
        _element(0x0020000E, b"UI", series),
        _element(0x00200011, b"IS", str(r + 1).encode()),
        _element(0x00200013, b"IS", str(i + 1).encode()),
    ])
    return b"\x00" * 128 + b"DICM" + meta + body


def fill(storage: str, count: int, with_files: bool, per_series: int = 50) -> None:
    from donjon.config import Configuration
    from donjon.core.attachments import write_attachment
    from donjon.core.context import ServerContext
    from donjon.core.store import StoreOrigin, _index
    from donjon.dicom.parse import parse_instance
    from donjon.index.protocol import FileInfo

    config = Configuration({"StorageDirectory": storage, "SyncStorageArea": False, "StableAge": 3600})
    ctx = ServerContext(config)
    origin = StoreOrigin(remote_ip="127.0.0.1")
    start_count = ctx.index.reader().counters()["level4"]
    batch: list[tuple[object, list[FileInfo]]] = []
    t0 = time.monotonic()
    n = start_count
    while n < start_count + count:
        p, rest = divmod(n, 4 * per_series)
        s, rest = divmod(rest, 2 * per_series)
        r, i = divmod(rest, per_series)
        data = synthetic_instance(p, s, r, i)
        parsed = parse_instance(data)
        if with_files:
            files = [write_attachment(ctx.storage, data, 1, ctx.attachment_policy)]
        else:
            files = [FileInfo(f"00000000-0000-4000-8000-{n:012d}", 1, len(data), "", 1, len(data), "")]
        batch.append((parsed, files))
        n += 1
        if len(batch) == 1000 or n == start_count + count:
            items = batch

            def run(tx, items=items):  # type: ignore[no-untyped-def]
                for parsed_, files_ in items:
                    _index(ctx, tx, parsed_, files_, origin)
            ctx.index.write(run)
            batch = []
            if n % 50000 == 0:
                rate = (n - start_count) / (time.monotonic() - t0)
                print(f"  {n} instances indexed ({rate:.0f}/s)", file=sys.stderr)
    ctx.close()
    print(f"indexed {count} instances in {time.monotonic() - t0:.0f} s", file=sys.stderr)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"GET {path}: {r.status}")
    return body


def measure(storage: str, ingest: str | None) -> None:
    port = _free_port()
    work = tempfile.mkdtemp(prefix="donjon-scale-")
    cfg = os.path.join(work, "config.json")
    with open(cfg, "w") as f:
        json.dump({"HttpPort": port, "DicomPort": _free_port(), "StorageDirectory": storage}, f)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "donjon", cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
                _get(conn, "/system")
                break
            except OSError:
                time.sleep(0.01)
        startup = time.monotonic() - t0
        stats = json.loads(_get(conn, "/statistics"))
        samples = []
        for _ in range(50):
            t = time.perf_counter()
            _get(conn, "/statistics")
            samples.append((time.perf_counter() - t) * 1000)
        print(f"| {stats['CountInstances']:,} | {startup:.2f} s | {statistics.median(samples):.2f} ms |", end="")
        if ingest:
            files = sorted(p for p in pathlib.Path(ingest).rglob("*") if p.is_file() and p.suffix != ".json")
            datas = [p.read_bytes() for p in files]
            t = time.perf_counter()
            ids = set()
            for data in datas:
                conn.request("POST", "/instances", body=data)
                r = conn.getresponse()
                answer = json.loads(r.read())
                if r.status != 200 or answer["Status"] != "Success":
                    raise RuntimeError(f"ingest failed: {r.status} {answer}")
                ids.add(answer["ParentPatient"])
            rate = len(datas) / (time.perf_counter() - t)
            print(f" {rate:.0f} inst/s |", end="")
            for pid in ids:
                conn.request("DELETE", f"/patients/{pid}")
                conn.getresponse().read()
        print()
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fill")
    f.add_argument("storage")
    f.add_argument("count", type=int)
    f.add_argument("--files", action="store_true")
    m = sub.add_parser("measure")
    m.add_argument("storage")
    m.add_argument("--ingest")
    args = ap.parse_args()
    if args.cmd == "fill":
        fill(args.storage, args.count, args.files)
    else:
        measure(args.storage, args.ingest)


if __name__ == "__main__":
    main()
