"""Fuzzing target (atheris) of the find-query path: `core/matching.py` and `core/find.py`, over a real
index holding a few instances. Any query must be answered or refused with an OrthancError, in bounded
time (no regular-expression backtracking: run with -timeout), and a page (since/limit) must be part of
the whole answer.

    .venv/bin/python tests/fuzz/fuzz_find.py -max_total_time=600 -timeout=5 CORPUS_DIR
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports(include=["donjon.core.matching", "donjon.core.find"]):
    from donjon.config import Configuration
    from donjon.core.context import ServerContext
    from donjon.core.find import build_query, find
    from donjon.core.matching import parse_constraint
    from donjon.core.store import StoreOrigin
    from donjon.errors import OrthancError
    from donjon.registry import Level

TAGS = (0x00100010, 0x00100020, 0x00100030, 0x00080020, 0x00080030, 0x00080050, 0x00081030, 0x0020000D,
        0x0020000E, 0x00080060, 0x00080061, 0x00080018, 0x00200013, 0x00180015, 0x00280010, 0x00324000)
SAMPLES = os.environ.get("DONJON_SAMPLES", "/work/shared/dicom")
_ctx: ServerContext | None = None


def context() -> ServerContext:
    """A server context on a temporary folder, with the small sample files stored (built once)."""
    global _ctx
    if _ctx is None:
        folder = tempfile.mkdtemp(prefix="donjon-fuzz-find-")
        path = os.path.join(folder, "config.json")
        with open(path, "w") as f:
            json.dump({"StorageDirectory": os.path.join(folder, "storage"), "StableAge": 1000}, f)
        _ctx = ServerContext(Configuration.load([path]), no_jobs=True)
        for name in ("DummyCT.dcm", "2017-06-27-XSSInjection.dcm", "ColorTestMalaterre.dcm",
                     "Issue22-NoPixelData.dcm"):
            try:
                with open(os.path.join(SAMPLES, name), "rb") as f:
                    _ctx.store(f.read(), StoreOrigin())
            except OSError:
                pass
    return _ctx


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    level = Level(fdp.ConsumeIntInRange(1, 4))
    case_sensitive = fdp.ConsumeBool()
    query: dict[int, str] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        query[TAGS[fdp.ConsumeIntInRange(0, len(TAGS) - 1)]] = fdp.ConsumeUnicodeNoSurrogates(40)
    candidate = fdp.ConsumeUnicodeNoSurrogates(64)
    try:
        for tag, value in query.items():
            c = parse_constraint(tag, value, case_sensitive)
            if c is not None:
                c.matches(candidate)
                c.index_operation()
        q = build_query(level, query, case_sensitive)
    except OrthancError:
        return
    q.limit = fdp.ConsumeIntInRange(0, 5)
    q.since = fdp.ConsumeIntInRange(0, 3)
    ctx = context()
    try:
        narrowed = ctx.index.read(lambda tx: find(ctx, tx, q))
    except OrthancError:
        return
    limit = q.limit
    q.limit = q.since = 0
    full = ctx.index.read(lambda tx: find(ctx, tx, q))
    assert set(narrowed) <= set(full) and (not limit or len(narrowed) <= limit), (query, narrowed, full)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
