#!/usr/bin/env python3
"""Benchmarks of the PostgreSQL index, on one throw-away PostgreSQL cluster shared by the servers.

  postgres_bench.py orthanc [--profile tiny] [--rounds 2] [-- bench.py run options]
      Donjon (PostgreSQL index) as A against Orthanc 1.10.1 with its PostgreSQL index plugin
      (Debian's orthanc-postgresql) as B, each in its own database of the same cluster, with the
      shared harness (`bench.py run --compare`).
  postgres_bench.py sqlite [--profile tiny] [--rounds 2] [-- ...]
      Donjon with the PostgreSQL index (A) against Donjon with its SQLite index (B).
  postgres_bench.py scale [--profile tiny] [--clients 6] [--processes 3]
      REST ingest of the data set by N client threads spread over 1 process, then over P processes
      sharing the database (`Lock: false`) and one storage folder: instances per second of each.

Data sets are those of run_vs_orthanc.sh (.bench/data/PROFILE, generated if missing). Results of the
harness go to .bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.postgres import PostgresCluster  # noqa: E402 - the project's throw-away cluster
from tests.support.servers import free_port  # noqa: E402

HARNESS = Path(os.environ.get("DONJON_BENCH_HARNESS", ROOT.parent / "shared" / "bench"))
PY = sys.executable
GEN = {"tiny": ["--profile", "tiny", "--patients", "50", "--studies", "2", "--series", "2", "--instances", "10"],
       "ct": ["--profile", "ct", "--patients", "5", "--studies", "2", "--series", "2", "--instances", "25"]}


def data_set(profile: str) -> Path:
    data = ROOT / ".bench" / "data" / profile
    if not (data / "manifest.json").exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([PY, str(HARNESS / "bench.py"), "gen", str(data), *GEN[profile]], check=True)
    return data


class Proc:
    def __init__(self, name: str, cmd: list[str], workdir: Path, port: int, env: dict[str, str] | None = None):
        self.name, self.port, self.workdir = name, port, workdir
        log = open(workdir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir,
                                     env={**os.environ, **(env or {})})
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited; see {workdir / (name + '.log')}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/system", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"{name} did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def donjon(work: Path, name: str, pg: dict[str, Any] | None, storage: Path | None = None) -> tuple[Proc, str]:
    http, dicom = free_port(), free_port()
    d = work / name
    d.mkdir()
    cfg: dict[str, Any] = {"HttpPort": http, "DicomPort": dicom, "DicomAet": "DONJON",
                           "StorageDirectory": str(storage or d / "storage")}
    if pg is not None:
        cfg["PostgreSQL"] = pg
    (d / "config.json").write_text(json.dumps(cfg))
    p = Proc(name, [PY, "-m", "donjon", str(d / "config.json")], d, http)
    spec = f"http://127.0.0.1:{http},dicom={dicom},aet=DONJON,pid={p.proc.pid},storage={cfg['StorageDirectory']},label={name}"
    return p, spec


ORTHANC_PG_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so")


def orthanc(work: Path, pg: dict[str, Any]) -> tuple[Proc, str]:
    # without its plugin, Orthanc only logs an error and runs on SQLite: the comparison would be void
    if not ORTHANC_PG_PLUGIN.exists():
        raise SystemExit(f"{ORTHANC_PG_PLUGIN} is missing: apt-get install orthanc-postgresql")
    http, dicom = free_port(), free_port()
    d = work / "orthanc"
    d.mkdir()
    cfg = {"Name": "bench", "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
           "StorageDirectory": str(d / "storage"), "IndexDirectory": str(d / "storage"),
           "Plugins": ["/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"],
           "PostgreSQL": {**pg, "EnableStorage": False}}
    (d / "orthanc.json").write_text(json.dumps(cfg))
    p = Proc("orthanc", ["Orthanc", str(d / "orthanc.json")], d, http, env={"TCP_NODELAY": "1"})
    system = __import__("httpx").get(f"http://127.0.0.1:{http}/system").json()
    version = system["Version"]
    if not system.get("DatabaseBackendPlugin"):
        p.stop()
        raise SystemExit(f"Orthanc did not load its PostgreSQL index plugin; see {d / 'orthanc.log'}")
    return p, f"http://127.0.0.1:{http},dicom={dicom},aet=ORTHANC,pid={p.proc.pid},storage={d / 'storage'}," \
              f"label=orthanc-{version}-postgresql"


def compare(mode: str, profile: str, rounds: int, passthrough: list[str]) -> int:
    data = data_set(profile)
    cluster = PostgresCluster()
    work = Path(tempfile.mkdtemp(prefix="donjon-pgbench-"))
    procs: list[Proc] = []
    try:
        a, spec_a = donjon(work, "donjon-postgresql", cluster.section(cluster.create_database("donjon")))
        procs.append(a)
        if mode == "orthanc":
            b, spec_b = orthanc(work, cluster.section(cluster.create_database("orthanc")))
        else:
            b, spec_b = donjon(work, "donjon-sqlite", None)
        procs.append(b)
        out = ROOT / ".bench" / "results" / f"pg-{mode}-{profile}-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [PY, str(HARNESS / "bench.py"), "run", "--data", str(data), "--compare", spec_a, spec_b,
               "--rounds", str(rounds), "--json", str(out), *passthrough]
        print("running:", " ".join(cmd), file=sys.stderr)
        rc = subprocess.run(cmd).returncode
        print(f"results: {out}", file=sys.stderr)
        return rc
    finally:
        for p in procs:
            p.stop()
        cluster.stop()


def _ingest(urls: list[str], files: list[bytes], clients: int) -> float:
    """Instances per second for every file POSTed once by `clients` threads, round-robin over `urls`."""
    import httpx

    chunks = [files[i::clients] for i in range(clients)]
    errors: list[str] = []

    def run(k: int) -> None:
        with httpx.Client(base_url=urls[k % len(urls)], timeout=120) as c:
            for body in chunks[k]:
                r = c.post("/instances", content=body)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        raise SystemExit(f"ingest errors: {errors[:5]}")
    return len(files) / elapsed


def scale(profile: str, clients: int, processes: int, rounds: int) -> int:
    import httpx

    data = data_set(profile)
    files = [p.read_bytes() for p in sorted(data.rglob("*.dcm"))]
    cluster = PostgresCluster()
    try:
        results: dict[int, list[float]] = {}
        for count in (1, processes):
            for r in range(rounds):
                work = Path(tempfile.mkdtemp(prefix="donjon-pgscale-"))
                pg = cluster.section(cluster.create_database(f"scale_{count}_{r}"), Lock=False)
                procs = [donjon(work, f"donjon{k}", pg, storage=work / "storage")[0] for k in range(count)]
                try:
                    urls = [f"http://127.0.0.1:{p.port}" for p in procs]
                    rate = _ingest(urls, files, clients)
                    stats = httpx.get(urls[0] + "/statistics").json()
                    assert stats["CountInstances"] == len(files), stats
                    results.setdefault(count, []).append(rate)
                    print(f"{count} process(es), {clients} clients: {rate:.0f} instances/s", file=sys.stderr)
                finally:
                    for p in procs:
                        p.stop()
        for count, rates in results.items():
            rates.sort()
            print(f"{count} process(es): median {rates[len(rates) // 2]:.0f} instances/s over {len(rates)} rounds "
                  f"({', '.join(f'{x:.0f}' for x in rates)})")
        return 0
    finally:
        cluster.stop()


def main() -> int:
    argv = sys.argv[1:]
    passthrough: list[str] = []
    if "--" in argv:
        k = argv.index("--")
        argv, passthrough = argv[:k], argv[k + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=("orthanc", "sqlite", "scale"))
    ap.add_argument("--profile", choices=tuple(GEN), default="tiny")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--processes", type=int, default=3)
    args = ap.parse_args(argv)
    if args.mode == "scale":
        return scale(args.profile, args.clients, args.processes, args.rounds)
    return compare(args.mode, args.profile, args.rounds, passthrough)


if __name__ == "__main__":
    sys.exit(main())
