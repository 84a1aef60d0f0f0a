#!/usr/bin/env python3
"""Storage back-ends side by side: a folder vs S3-compatible object storage (moto's server, local).

  storage_bench.py [--data DIR] [--clients 4] [--downloads 200] [--rounds 2]

For each back-end, in a fresh Donjon (compression off, no memory cache so reads reach the storage):
  ingest     DATA posted by N concurrent clients: instances/s and MB/s
  download   GET /instances/{id}/file one at a time, random order: median and p95 latency (ms)
  tags       GET /instances/{id}/tags (header read: a range read of the file): median latency (ms)
  compress   server stopped, `donjon storage compress` (level of the configuration): MB/s of data
Rounds alternate the back-ends (folder, S3, folder, S3...) so that the machine's noise hits both.
DATA defaults to the shared harness' `ct` data set (generated into .bench/data/ct-storage once).
Figures go to stdout as Markdown table rows. Run with the project's venv python.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import httpx

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.s3 import MotoServer  # noqa: E402
from tests.support.servers import start_donjon  # noqa: E402


def dataset(path: pathlib.Path | None) -> list[bytes]:
    if path is None:
        path = ROOT / ".bench" / "data" / "ct-storage"
        if not (path / "manifest.json").exists():
            harness = ROOT.parent / "shared" / "bench" / "bench.py"
            subprocess.run([sys.executable, str(harness), "gen", str(path), "--profile", "ct", "--patients", "2",
                            "--studies", "2", "--series", "2", "--instances", "25"], check=True)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix != ".json")
    return [p.read_bytes() for p in files]


def ingest(url: str, payloads: list[bytes], clients: int) -> tuple[float, list[str]]:
    ids: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(chunk: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=120) as c:
            for data in chunk:
                r = c.post("/instances", content=data)
                with lock:
                    if r.status_code == 200:
                        ids.append(r.json()["ID"])
                    else:
                        errors.append(r.text)
    threads = [threading.Thread(target=worker, args=(payloads[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"ingest failed: {errors[:3]}")
    return elapsed, ids


def latencies(url: str, paths: list[str]) -> list[float]:
    out = []
    with httpx.Client(base_url=url, timeout=60) as c:
        c.get("/system")
        for path in paths:
            started = time.perf_counter()
            r = c.get(path)
            out.append((time.perf_counter() - started) * 1000)
            assert r.status_code == 200, (path, r.status_code)
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def one_round(kind: str, payloads: list[bytes], moto: MotoServer | None, args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {"MaximumStorageCacheSize": 0, "StorageCompression": False}
    config["AwsS3Storage"] = moto.section() if moto is not None else {}
    workdir = pathlib.Path(tempfile.mkdtemp(prefix=f"donjon-storage-bench-{kind}-"))
    server = start_donjon(config, workdir=workdir)
    try:
        seconds, ids = ingest(server.url, payloads, args.clients)
        size = sum(len(p) for p in payloads)
        rng = random.Random(7)
        sample = [rng.choice(ids) for _ in range(args.downloads)]
        files = latencies(server.url, [f"/instances/{i}/file" for i in sample])
        tags = latencies(server.url, [f"/instances/{i}/tags" for i in sample[: args.downloads // 2]])
    finally:
        server.stop()
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "donjon", "storage", "compress", str(workdir / "config.json")],
                            capture_output=True, text=True, cwd=ROOT)
    compress_seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return {"kind": kind, "instances_per_s": len(payloads) / seconds, "ingest_mb_s": size / seconds / 1e6,
            "file_median_ms": statistics.median(files), "file_p95_ms": p95(files),
            "tags_median_ms": statistics.median(tags), "compress_mb_s": size / compress_seconds / 1e6,
            "compress_summary": result.stdout.splitlines()[:2]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=pathlib.Path)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--downloads", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    payloads = dataset(args.data)
    print(f"data: {len(payloads)} files, {sum(map(len, payloads)) / 1e6:.1f} MB", file=sys.stderr)
    moto = MotoServer()
    rows: list[dict[str, Any]] = []
    try:
        for _ in range(args.rounds):
            for kind in ("folder", "s3"):
                row = one_round(kind, payloads, moto if kind == "s3" else None, args)
                print(json.dumps(row), file=sys.stderr)
                rows.append(row)
    finally:
        moto.stop()
    print("| storage | ingest (inst/s) | ingest (MB/s) | file GET median / p95 (ms) | tags GET median (ms) "
          "| compress command (MB/s) |")
    print("|---|---|---|---|---|---|")
    for kind in ("folder", "s3"):
        mine = [r for r in rows if r["kind"] == kind]

        def med(key: str, rows: list[dict[str, Any]] = mine) -> float:
            return statistics.median(r[key] for r in rows)
        print(f"| {kind} | {med('instances_per_s'):.1f} | {med('ingest_mb_s'):.1f} | {med('file_median_ms'):.1f} / "
              f"{med('file_p95_ms'):.1f} | {med('tags_median_ms'):.1f} | {med('compress_mb_s'):.1f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
