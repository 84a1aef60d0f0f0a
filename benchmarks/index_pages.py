#!/usr/bin/env python3
"""How many pages a store writes to SQLite's WAL when K stores share one index transaction.

  index_pages.py [--data .bench/data/tiny] [--stores 400] K...

Stores 500 instances, checkpoints, then indexes `--stores` more K at a time (the files are written
first, as on the event loop's way, core/store_on_loop.py) and counts the frames the WAL received:
every frame is a page write now and, at the next checkpoint, a page write to the database file.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import tempfile
import time
from pathlib import Path

from donjon.config import Configuration
from donjon.core.attachments import write_attachment
from donjon.core.context import ServerContext
from donjon.core.store import StoreOrigin, _index, store_instance
from donjon.dicom.parse import parse_instance
from donjon.registry import ContentType

ROOT = Path(__file__).resolve().parents[1]


def pages_per_store(files: list[bytes], k: int, count: int) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="index-pages-"))
    ctx = ServerContext(Configuration({"StorageDirectory": str(work), "IndexDirectory": str(work),
                                       "StableAge": 3600}), no_jobs=True)
    try:
        for data in files[:500]:
            store_instance(ctx, data, StoreOrigin())
        ctx.index_sync.flush()
        prepared = []
        for data in files[500:500 + count]:
            prepared.append((parse_instance(data),
                             [write_attachment(ctx.storage, data, ContentType.DICOM, ctx.attachment_policy)]))
        writer = ctx.index._writer_conn  # type: ignore[attr-defined]
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # every frame of the run stays in the WAL
        writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        origin = StoreOrigin()
        start = time.perf_counter()
        for i in range(0, len(prepared), k):
            chunk = prepared[i:i + k]
            ctx.index.write(lambda tx, chunk=chunk: [_index(ctx, tx, p, f, origin) for p, f in chunk],
                            durable=False)
        elapsed = time.perf_counter() - start
        wal = next(work.rglob("*-wal")).read_bytes()
        page_size = struct.unpack(">I", wal[8:12])[0]
        frames = (len(wal) - 32) // (24 + page_size)
        return frames / len(prepared), elapsed / len(prepared)
    finally:
        ctx.close()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("k", type=int, nargs="+")
    parser.add_argument("--data", type=Path, default=ROOT / ".bench" / "data" / "tiny")
    parser.add_argument("--stores", type=int, default=400)
    args = parser.parse_args()
    files = [p.read_bytes() for p in sorted((args.data / "files").rglob("*")) if p.is_file()]
    if len(files) < 500 + args.stores:
        parser.error(f"{args.data} holds {len(files)} files; {500 + args.stores} needed")
    for k in args.k:
        pages, seconds = pages_per_store(files, k, args.stores)
        print(f"{k} store(s) per transaction: {pages:.1f} WAL pages per store, "
              f"{seconds * 1e6:.0f} µs of indexing per store")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
