#!/usr/bin/env python3
"""REST ingest into fresh folders, servers alternated: instances/s and server CPU per instance.

  ingest_fresh.py [--clients 4] [--seconds 5] [--rounds 3] [--data .bench/data/big] SERVER...
      SERVER: `donjon`, `orthanc`, or `donjon=SRC` (Donjon run from another checkout's `src`,
      e.g. a `git worktree` of an older commit, to compare two builds).

Each round starts every server in turn in a new folder under --work (default: .bench/fresh), lets
N clients post distinct files of the data set over keep-alive connections for a fixed time, and
reads the server's user and system CPU from /proc. Unlike the shared harness, no ingest follows a
deletion: on this machine's ext4 without a journal, files created soon after others were deleted
cost a scan of the freed inodes (docs/benchmarks.md), which then weighs on both servers' figures.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cpu(pid: int) -> tuple[float, float]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _start(server: str, folder: Path, port: int, extra: dict[str, object]) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True)
    config = {"HttpPort": port, "DicomPort": port + 1, "StorageDirectory": str(folder / "storage"),
              "IndexDirectory": str(folder / "storage"), **extra}
    env = dict(os.environ)
    if server == "orthanc":
        config.update({"RemoteAccessAllowed": False, "AuthenticationEnabled": False})
        command = ["Orthanc"]
        env["TCP_NODELAY"] = "1"  # Debian's build leaves Nagle's algorithm on otherwise
    else:
        command = [sys.executable, "-m", "donjon"]
        if "=" in server:
            env["PYTHONPATH"] = server.split("=", 1)[1]
    (folder / "config.json").write_text(json.dumps(config))
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([*command, str(folder / "config.json")], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/system")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{server} did not start (see {folder / 'server.log'})")


def _ingest(port: int, bodies: list[bytes], clients: int, seconds: float) -> int:
    lock = threading.Lock()
    pending = list(reversed(bodies))
    done = [0]
    stop = threading.Event()

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not stop.is_set():
            with lock:
                if not pending:
                    return
                body = pending.pop()
            conn.request("POST", "/instances", body=body)
            answer = conn.getresponse()
            answer.read()
            if answer.status != 200:
                raise RuntimeError(f"POST /instances: {answer.status}")
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return done[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("servers", nargs="+")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=ROOT / ".bench" / "data" / "big")
    parser.add_argument("--work", type=Path, default=ROOT / ".bench" / "fresh")
    parser.add_argument("--port", type=int, default=18342)
    parser.add_argument("--config", type=json.loads, default={},
                        help='options for both servers, e.g. \'{"StorageCompression": true}\'')
    args = parser.parse_args()
    files = sorted(p for p in (args.data / "files").rglob("*") if p.is_file())
    if not files:
        raise SystemExit(f"no data set in {args.data} (benchmarks/run_vs_orthanc.sh big 1 makes it)")
    bodies = [p.read_bytes() for p in files[: int(2000 * args.seconds)]]
    run = args.work / time.strftime("%Y%m%d-%H%M%S")
    for round_ in range(args.rounds):
        order = args.servers if round_ % 2 == 0 else list(reversed(args.servers))
        for n, server in enumerate(order):
            proc = _start(server, run / f"{round_}-{n}", args.port, args.config)
            try:
                user0, sys0 = _cpu(proc.pid)
                count = _ingest(args.port, bodies, args.clients, args.seconds)
                user1, sys1 = _cpu(proc.pid)
            finally:
                proc.terminate()
                proc.wait(30)
            print(f"round {round_ + 1} {server}: {count / args.seconds:.0f} instances/s, server CPU per instance "
                  f"{(user1 - user0) / count * 1e6:.0f} µs user + {(sys1 - sys0) / count * 1e6:.0f} µs system",
                  flush=True)
    shutil.rmtree(run)  # (at the end: a deletion between two servers would slow the next one down)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
