#!/usr/bin/env python3
"""What a Python plugin costs: REST ingest and a cheap GET, without and with a plugin loaded.

  plugins.py [--instances N] [--rounds R] [--clients C]      over HTTP, a fresh server per configuration
  plugins.py --in-process [--instances N] [--rounds R]        `ServerContext.store()` called directly:
                                                              the cost per instance without HTTP noise
  plugins.py --hooks [--instances N]                          the plugin's ingest hooks around a store
                                                              that does nothing: their own cost

Configurations, each on a fresh Donjon:
  none        no PythonScript (the hooks of the core are one `is None` test each)
  route-only  a plugin with one REST route and nothing on the ingest path
  ingest      a plugin with trivial received-instance, stored-instance and on-change callbacks
  http-filter a plugin with a trivial incoming HTTP request filter

Instances are copies of a sample with fresh UIDs (one study per 20 instances). Figures are medians
over the rounds, printed as Markdown table rows. Run with the project's venv python.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parent))
from features import run_clients, server  # a sibling module of the benchmarks

SAMPLE = Path("/work/shared/dicom/Brainix/Flair/IM-0001-0001.dcm")
SCRIPTS = {
    "none": None,
    "route-only": "import orthanc\n"
                  "orthanc.RegisterRestCallback('/bench', lambda output, uri, **r: output.AnswerBuffer('ok', 'text/plain'))\n",
    "ingest": "import orthanc\n"
              "orthanc.RegisterReceivedInstanceCallback(lambda data, origin: (orthanc.ReceivedInstanceAction.KEEP_AS_IS, None))\n"
              "orthanc.RegisterOnStoredInstanceCallback(lambda instance, instance_id: None)\n"
              "orthanc.RegisterOnChangeCallback(lambda change, level, resource: None)\n",
    "http-filter": "import orthanc\n"
                   "orthanc.RegisterIncomingHttpRequestFilter(lambda uri, **request: True)\n",
}


def instances(count: int) -> list[bytes]:
    ds = pydicom.dcmread(SAMPLE)
    out = []
    for i in range(count):
        if i % 20 == 0:
            ds.StudyInstanceUID = generate_uid()
            ds.SeriesInstanceUID = generate_uid()
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        buffer = io.BytesIO()
        ds.save_as(buffer)
        out.append(buffer.getvalue())
    return out


def measure(name: str, files: list[bytes], clients: int) -> tuple[float, float]:
    extra: dict[str, object] = {}
    script = SCRIPTS[name]
    if script is not None:
        path = Path(tempfile.mkdtemp(prefix="bench-plugin-")) / "bench_plugin.py"
        path.write_text(script)
        extra["PythonScript"] = str(path)
    with server("donjon", extra) as port:
        ingest = run_clients(port, [("POST", "/instances", f) for f in files], clients)
        time.sleep(0.5)
        gets = run_clients(port, [("GET", "/system", b"")] * 2000, clients)
    return ingest, gets


def store_in_process(name: str, files: list[bytes]) -> float:
    """Microseconds per `ctx.store()` of a fresh context (one thread, no HTTP)."""
    from donjon.api.app import DonjonApp
    from donjon.config import Configuration
    from donjon.core.context import ServerContext
    from donjon.core.store import StoreOrigin
    from donjon.plugins import load_python_plugin

    work = Path(tempfile.mkdtemp(prefix="bench-plugin-"))
    raw: dict[str, object] = {"StorageDirectory": str(work / "storage"), "StableAge": 3600,
                              "SyncStorageArea": False}  # no fsync: the CPU cost, not the disk
    if SCRIPTS[name] is not None:
        (work / "bench_plugin.py").write_text(SCRIPTS[name] or "")
        raw["PythonScript"] = str(work / "bench_plugin.py")
    config = Configuration(raw)
    host = load_python_plugin(config)
    ctx = ServerContext(config, no_jobs=True)
    if host is not None:
        host.attach(ctx, DonjonApp(ctx))
    try:
        origin = StoreOrigin()
        start = time.perf_counter()
        for data in files:
            ctx.store(data, origin)
        return (time.perf_counter() - start) / len(files) * 1e6
    finally:
        if host is not None:
            host.stopping()
            host.close()
        ctx.close()
        sys.modules.pop("bench_plugin", None)


def main_in_process(files: list[bytes], rounds: int) -> int:
    results: dict[str, list[float]] = {name: [] for name in ("none", "route-only", "ingest")}
    for _ in range(rounds):
        for name in results:
            results[name].append(store_in_process(name, files))
    print(f"| plugin ({len(files)} instances, median of {rounds}) | µs per store |")
    print("|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):.0f} |")
    return 0


def hooks_only(files: list[bytes]) -> int:
    """µs per instance spent in `PluginHost.store()` itself, the store proper being a no-op."""
    from donjon.config import Configuration
    from donjon.core.store import StoreOrigin, StoreResult
    from donjon.dicom.parse import parse_instance
    from donjon.plugins import load_python_plugin

    work = Path(tempfile.mkdtemp(prefix="bench-plugin-"))
    (work / "bench_plugin.py").write_text(SCRIPTS["ingest"] or "")
    host = load_python_plugin(Configuration({"PythonScript": str(work / "bench_plugin.py")}))
    assert host is not None
    results = [StoreResult("Success", parse_instance(f).ids) for f in files]
    origin = StoreOrigin()

    class Ctx:  # what the hooks read of a context
        default_encoding = "latin_1"
    print("| ingest hooks (trivial callbacks) | µs per instance |")
    print("|---|---|")
    for label, store in (("no plugin (direct call)", None), ("received + stored callbacks", host.store)):
        start = time.perf_counter()
        for data, result in zip(files, results, strict=True):
            if store is None:
                (lambda c, d, o, r=result: r)(Ctx, data, origin)
            else:
                store(Ctx, data, origin, lambda c, d, o, r=result: r)  # type: ignore[arg-type]
        print(f"| {label} | {(time.perf_counter() - start) / len(files) * 1e6:.0f} |")
    host.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--hooks", action="store_true")
    args = parser.parse_args()
    files = instances(args.instances)
    if args.hooks:
        return hooks_only(files)
    if args.in_process:
        return main_in_process(files, args.rounds)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in SCRIPTS}
    for _ in range(args.rounds):
        for name in SCRIPTS:  # interleaved, so that a busy machine hurts every configuration alike
            results[name].append(measure(name, files, args.clients))
    print(f"| plugin ({args.clients} clients, {args.instances} instances, median of {args.rounds}) "
          "| ingest (instances/s) | GET /system (requests/s) |")
    print("|---|---|---|")
    for name, rows in results.items():
        print(f"| {name} | {statistics.median(r[0] for r in rows):.0f} | {statistics.median(r[1] for r in rows):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
