#!/usr/bin/env python3
"""Feature benchmarks that the shared harness has no phase for, Donjon vs Orthanc 1.10.1 side by side.

  features.py metadata DATA [--rounds N]      10,000 metadata writes then reads (1 and 4 clients)
  features.py ingest-modes DATA [--rounds N]  REST ingest (4 clients): plain, StorageCompression,
                                              and full storage (MaximumPatientCount 5: each new patient
                                              recycles the oldest)
  features.py archive DATA [--rounds N]       `GET /studies/{id}/archive` of one study at 100 instances
                                              then at all of DATA's (500 CT slices: see docs/benchmarks.md),
                                              best of 3, with the server's RSS before and its peak during

DATA is a folder made by the shared harness (`bench.py gen`). Each round starts a fresh Donjon and a
fresh Orthanc, one after the other, on the same data, each after a rest (`--pause`); figures are medians over the rounds, printed as
Markdown table rows. Run with the project's venv python.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

USER_KEY = 1024
# Seconds of rest (after a `sync`) before each server starts: on this machine a run right after
# another, whose storage folder was just deleted, measured up to 2x slower for either server (its
# kernel time per instance growing run after run: docs/benchmarks.md, "Why the ingest figures move").
pause_before_server = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(NamedTuple):
    port: int
    pid: int


@contextmanager
def server(kind: str, extra: dict[str, object]) -> Iterator[Server]:
    """A fresh server of `kind` ("donjon" or "orthanc") on free ports."""
    if pause_before_server > 0:
        os.sync()
        time.sleep(pause_before_server)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-"))
    port = _free_port()
    config = {"HttpPort": port, "DicomPort": _free_port(), "StorageDirectory": str(work / "storage"),
              "IndexDirectory": str(work / "storage"), "UserMetadata": {"Sample": USER_KEY}, **extra}
    if kind == "orthanc":
        config.update({"Plugins": [], "HttpCompressionEnabled": False})
    (work / "config.json").write_text(json.dumps(config))
    command = [sys.executable, "-m", "donjon"] if kind == "donjon" else [shutil.which("Orthanc") or "Orthanc"]
    log = open(work / "server.log", "wb")  # noqa: SIM115 - the child process keeps it
    proc = subprocess.Popen([*command, str(work / "config.json")], stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "TCP_NODELAY": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/system")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start: {(work / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield Server(port, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)


def run_clients(port: int, jobs: list[tuple[str, str, bytes]], clients: int) -> float:
    """Send every (method, path, body) over `clients` keep-alive connections, each from a process of
    its own; requests per second. (Client threads of one process measured their own lock: with four
    of them, a server answering faster could come out slower.)"""
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(clients + 1)
    outcomes = context.Queue()

    def client(share: list[tuple[str, str, bytes]]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        failed: list[str] = []
        ready.wait()
        for method, path, body in share:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                failed.append(f"{method} {path}: {r.status}")
        outcomes.put((time.monotonic(), len(failed), failed[:1]))

    processes = [context.Process(target=client, args=(jobs[k::clients],)) for k in range(clients)]
    for p in processes:
        p.start()
    ready.wait()
    start = time.monotonic()
    results = [outcomes.get(timeout=600) for _ in processes]
    for p in processes:
        p.join()
    failures = sum(r[1] for r in results)
    if failures or any(p.exitcode for p in processes):
        first = next((r[2][0] for r in results if r[2]), "a client process failed")
        raise RuntimeError(f"{failures} failed requests, first: {first}")
    return len(jobs) / (max(r[0] for r in results) - start)


def data_files(data: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((data / "files").rglob("*")) if p.is_file()]


def bench_metadata(files: list[bytes], kind: str) -> dict[str, float]:
    with server(kind, {}) as (port, _):
        run_clients(port, [("POST", "/instances", f) for f in files[:100]], 2)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/instances")
        ids = json.loads(conn.getresponse().read())
        out = {}
        for clients in (1, 4):
            writes = [("PUT", f"/instances/{ids[i % len(ids)]}/metadata/Sample", f"value {i}".encode())
                      for i in range(10_000)]
            out[f"metadata PUT, {clients} client(s)"] = run_clients(port, writes, clients)
            reads = [("GET", f"/instances/{ids[i % len(ids)]}/metadata/Sample", b"") for i in range(10_000)]
            out[f"metadata GET, {clients} client(s)"] = run_clients(port, reads, clients)
        return out


def bench_ingest_modes(files: list[bytes], kind: str) -> dict[str, float]:
    out = {}
    modes: dict[str, dict[str, object]] = {
        "ingest, 4 clients": {},
        "ingest with StorageCompression, 4 clients": {"StorageCompression": True},
        "ingest into a full storage (recycling), 4 clients": {"MaximumPatientCount": 5},
    }
    for name, extra in modes.items():
        with server(kind, extra) as (port, _):
            out[name] = run_clients(port, [("POST", "/instances", f) for f in files], 4)
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _timed_archive(srv: Server, study: str) -> tuple[float, float]:
    """Seconds to download the study's ZIP (read and dropped in 1 MB chunks), and the server's peak RSS."""
    peak = _rss_mb(srv.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, _rss_mb(srv.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=600)
    conn.request("GET", f"/studies/{study}/archive")
    answer = conn.getresponse()
    while answer.read(1 << 20):
        pass
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if answer.status != 200:
        raise RuntimeError(f"archive: HTTP {answer.status}")
    return elapsed, peak


def bench_archive(files: list[bytes], kind: str) -> dict[str, float]:
    out = {}
    with server(kind, {}) as srv:
        loaded = 0
        for count in (100, len(files)):
            run_clients(srv.port, [("POST", "/instances", f) for f in files[loaded:count]], 4)
            loaded = count
            conn = http.client.HTTPConnection("127.0.0.1", srv.port)
            conn.request("GET", "/studies")
            (study,) = json.loads(conn.getresponse().read())
            before = _rss_mb(srv.pid)
            runs = [_timed_archive(srv, study) for _ in range(3)]
            elapsed, peak = min(r[0] for r in runs), max(r[1] for r in runs)
            megabytes = sum(len(f) for f in files[:count]) / 1e6
            out[f"archive of {count} instances, MB/s"] = megabytes / elapsed
            out[f"archive of {count} instances, RSS before (MB)"] = before
            out[f"archive of {count} instances, peak RSS during (MB)"] = max(peak, before)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("metadata", "ingest-modes", "archive"))
    parser.add_argument("data", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pause", type=float, default=pause_before_server,
                        help="seconds of rest before each server starts (default %(default)s)")
    args = parser.parse_args()
    globals()["pause_before_server"] = args.pause
    files = data_files(args.data)
    benches: dict[str, Callable[[list[bytes], str], dict[str, float]]] = \
        {"metadata": bench_metadata, "ingest-modes": bench_ingest_modes, "archive": bench_archive}
    bench = benches[args.what]
    results: dict[str, dict[str, list[float]]] = {"donjon": {}, "orthanc": {}}
    for r in range(args.rounds):
        order = ("donjon", "orthanc") if r % 2 == 0 else ("orthanc", "donjon")
        for kind in order:
            for name, value in bench(files, kind).items():
                results[kind].setdefault(name, []).append(value)
    print(f"| Measure{' (requests/s)' if args.what != 'archive' else ''} | Donjon | Orthanc 1.10.1 | Ratio |")
    print("|---|---|---|---|")
    for name in results["donjon"]:
        d, o = statistics.median(results["donjon"][name]), statistics.median(results["orthanc"][name])
        print(f"| {name} | {d:.0f} | {o:.0f} | {d / o:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
