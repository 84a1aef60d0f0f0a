#!/usr/bin/env python3
"""C-FIND at study level: findscu (DCMTK) against Donjon and Orthanc 1.10.1.

  .venv/bin/python benchmarks/cfind.py [--studies N] [--instances I] [--rounds R]

Both servers get the same synthetic studies (N studies of I instances, 1,000 x 20 = 20,000 instances
by default) over REST; then `findscu -q` asks for every study (StudyInstanceUID, PatientName, StudyDate,
AccessionNumber), alternately on each server. Two figures, medians of R rounds:
  * a whole findscu run, start-up and association included (DCMTK's start-up alone is ~90 ms here,
    the same for both servers, and hides most of the difference);
  * one C-FIND on an open association: (a run with `--repeat 11` - a run with `--repeat 1`) / 10.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from tests.support.servers import Server, start_donjon, start_orthanc  # noqa: E402

from scale import synthetic_instance  # noqa: E402


def load(server: Server, files: list[bytes]) -> None:
    def work(chunk: list[bytes]) -> None:
        for f in chunk:
            assert server.post("/instances", content=f).status_code == 200

    threads = [threading.Thread(target=work, args=(files[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def findscu(port: int, repeat: int = 1) -> float:
    start = time.perf_counter()
    r = subprocess.run(["findscu", "-q", "-S", "--repeat", str(repeat), "-k", "QueryRetrieveLevel=STUDY",
                        "-k", "StudyInstanceUID", "-k", "PatientName", "-k", "StudyDate", "-k", "AccessionNumber",
                        "127.0.0.1", str(port), "-aec", "ORTHANC", "-aet", "FINDSCU"], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode(errors="replace")[-500:])
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=20, help="instances per study")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    files = [synthetic_instance(p, 0, i // 50, i % 50) for p in range(args.studies) for i in range(args.instances)]
    config = {"DicomAlwaysAllowFind": True, "LimitFindResults": 0}
    orthanc, donjon = start_orthanc(config), start_donjon(config)
    servers = {"Donjon": donjon, "Orthanc 1.10.1": orthanc}
    try:
        load(orthanc, files)
        load(donjon, files)
        whole: dict[str, list[float]] = {name: [] for name in servers}
        each: dict[str, list[float]] = {name: [] for name in servers}
        for n in range(args.rounds):
            for name in (list(servers) if n % 2 else list(reversed(servers))):
                port = servers[name].dicom_port
                once = findscu(port)
                whole[name].append(once)
                each[name].append((findscu(port, 11) - once) / 10)
        for label, times in (("whole findscu run", whole), ("one C-FIND on an open association", each)):
            d, o = statistics.median(times["Donjon"]), statistics.median(times["Orthanc 1.10.1"])
            print(f"C-FIND study level, {args.studies} answers, {args.studies * args.instances} instances, {label}: "
                  f"Donjon {d:.0f} ms, Orthanc {o:.0f} ms, ratio {d / o:.2f}")
    finally:
        orthanc.stop()
        donjon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
