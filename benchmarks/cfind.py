#!/usr/bin/env python3
"""C-FIND at study level with 1,000 answers: findscu (DCMTK) against Donjon and Orthanc 1.10.1.

  .venv/bin/python benchmarks/cfind.py [--studies N] [--rounds R]

Both servers get the same synthetic studies (one instance each) over REST; then `findscu -q` asks
for every study (StudyInstanceUID, PatientName, StudyDate, AccessionNumber), alternately on each
server; the medians include findscu's own start-up and association (~30 ms on both).
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


def findscu(port: int) -> float:
    start = time.perf_counter()
    r = subprocess.run(["findscu", "-q", "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                        "-k", "PatientName", "-k", "StudyDate", "-k", "AccessionNumber", "127.0.0.1", str(port),
                        "-aec", "ORTHANC", "-aet", "FINDSCU"], capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode(errors="replace")[-500:])
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    files = [synthetic_instance(p, 0, 0, 0) for p in range(args.studies)]
    config = {"DicomAlwaysAllowFind": True, "LimitFindResults": 0}
    orthanc, donjon = start_orthanc(config), start_donjon(config)
    try:
        load(orthanc, files)
        load(donjon, files)
        times: dict[str, list[float]] = {"Donjon": [], "Orthanc 1.10.1": []}
        for _ in range(args.rounds):
            times["Orthanc 1.10.1"].append(findscu(orthanc.dicom_port))
            times["Donjon"].append(findscu(donjon.dicom_port))
        d, o = statistics.median(times["Donjon"]), statistics.median(times["Orthanc 1.10.1"])
        print(f"C-FIND study level, {args.studies} answers: Donjon {d:.0f} ms, Orthanc {o:.0f} ms, ratio {d / o:.2f}")
    finally:
        orthanc.stop()
        donjon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
