#!/usr/bin/env python3
"""One client's small requests, and the server CPU each one costs (where a latency-bound client's
time goes: the server's user-space work, its kernel work, or neither).

  request_cpu.py [--requests 5000] [--rounds 2] [--data .bench/data/tiny] SERVER...
      SERVER: `donjon`, `orthanc`, or `donjon=SRC` (as in ingest_fresh.py).

Each round starts every server in turn (the order alternates) in a fresh folder, stores 50
instances, then sends `--requests` requests of each kind over one keep-alive connection: metadata
PUT and GET (user metadata `Sample`, 1024) and GET of the instances' files. For each kind: requests
per second and the server's user and system CPU per request, read from /proc/PID/stat around it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import time
from pathlib import Path

import ingest_fresh

ROOT = Path(__file__).resolve().parents[1]


def _measure(port: int, pid: int, requests: list[tuple[str, str, bytes | None]]) -> tuple[float, float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    user0, sys0 = ingest_fresh._cpu(pid)
    start = time.perf_counter()
    for method, path, body in requests:
        conn.request(method, path, body=body)
        answer = conn.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{method} {path}: {answer.status}")
    elapsed = time.perf_counter() - start
    user1, sys1 = ingest_fresh._cpu(pid)
    n = len(requests)
    return n / elapsed, (user1 - user0) / n * 1e6, (sys1 - sys0) / n * 1e6


def _round(server: str, folder: Path, port: int, bodies: list[bytes], count: int) -> None:
    proc = ingest_fresh._start(server, folder, port, {"UserMetadata": {"Sample": 1024}})
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        ids = []
        for body in bodies:
            conn.request("POST", "/instances", body=body)
            ids.append(json.loads(conn.getresponse().read())["ID"])
        kinds = {
            "metadata PUT": [("PUT", f"/instances/{ids[i % len(ids)]}/metadata/Sample", f"value {i}".encode())
                             for i in range(count)],
            "metadata GET": [("GET", f"/instances/{ids[i % len(ids)]}/metadata/Sample", None) for i in range(count)],
            "GET file": [("GET", f"/instances/{ids[i % len(ids)]}/file", None) for i in range(count)],
        }
        for kind, requests in kinds.items():
            rate, user, system = _measure(port, proc.pid, requests)
            print(f"{server}: {kind}: {rate:.0f} requests/s, server CPU per request {user:.0f} µs user + "
                  f"{system:.0f} µs system", flush=True)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs="+")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data", type=Path, default=ROOT / ".bench" / "data" / "tiny")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "fresh")
    parser.add_argument("--port", type=int, default=18342)
    args = parser.parse_args()
    files = sorted(p for p in (args.data / "files").rglob("*") if p.is_file())[:50]
    if not files:
        raise SystemExit(f"no data set in {args.data} (benchmarks/run_vs_orthanc.sh tiny 1 makes it)")
    bodies = [p.read_bytes() for p in files]
    run = args.work / time.strftime("request-cpu-%Y%m%d-%H%M%S")
    for round_ in range(args.rounds):
        order = args.servers if round_ % 2 == 0 else list(reversed(args.servers))
        for n, server in enumerate(order):
            _round(server, run / f"{round_}-{n}", args.port, bodies, args.requests)
    shutil.rmtree(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
