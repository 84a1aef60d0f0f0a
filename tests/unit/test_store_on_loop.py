"""`POST /instances` among other stores runs the Python steps of a store on the event loop and hands
only the file's write to a worker (core/store_on_loop.py): the answers, the files
left on disk, the index and the journal must be those of the store that runs everything on a worker,
whatever fails, and the work must go where the design says (one hand-over for a common store)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import donjon.core.recycling as recycling
import donjon.core.store as store_module
from donjon.config import Configuration
from donjon.core.attachments import read_attachment
from donjon.core.context import ServerContext
from donjon.core.store import StoreOrigin, StoreResult
from donjon.core.store_on_loop import store_instance_on_loop
from donjon.dicom.parse import parse_instance
from donjon.errors import ErrorCode, OrthancError
from donjon.registry import ChangeType, ContentType
from donjon.storage import native_sync
from tests.faults.crafted import base_dataset, to_bytes
from tests.support.aio import run_in_own_thread
from tests.support.stored import folder_uuids


@pytest.fixture
def among_others() -> Iterator[None]:
    """Another store in flight: the way of stores among others (a store alone goes another way)."""
    with store_module._in_flight.enter():
        yield


Maker = Callable[..., ServerContext]


@pytest.fixture
def context(tmp_path: Path) -> Iterator[Maker]:
    """Makes the test's server context (with options), closed at the end."""
    made: list[ServerContext] = []

    def make(**options: Any) -> ServerContext:
        raw = {"StorageDirectory": str(tmp_path / "storage"), "IndexDirectory": str(tmp_path / "index"),
               "StableAge": 3600, **options}
        made.append(ServerContext(Configuration(raw), no_jobs=True))
        return made[-1]

    yield make
    for ctx in made:
        ctx.close()


class _Offload:
    """A worker pool that records what it was handed (the work starts at once, as `Api.submit`'s),
    and the fsyncs handed to native threads (storage/native_sync.py; real ones). With `gate` = n,
    the fsyncs' completions are held until n are done, then given all in one turn of the loop:
    their stores are then ready to be indexed together, as when a busy loop comes round to several
    finished writes at once."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.calls: list[str] = []
        self.gate = 0
        self.held: list[tuple[asyncio.Future[None], asyncio.Future[None]]] = []
        self.releasing: asyncio.Task[None] | None = None

    def __call__(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        self.calls.append(fn.__name__)
        return asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def fsync(self, synced: asyncio.Future[None]) -> asyncio.Future[None]:
        self.calls.append("fsync")
        if not self.gate:
            return synced
        outer: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held.append((synced, outer))
        if len(self.held) == self.gate:
            held = list(self.held)

            async def release() -> None:
                await asyncio.gather(*(i for i, _ in held))
                for _, o in held:
                    o.set_result(None)

            self.releasing = asyncio.ensure_future(release())
        return outer


@pytest.fixture
def offload(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Offload]:
    pool = _Offload()
    real = native_sync.fsync
    monkeypatch.setattr(native_sync, "fsync", lambda fd: pool.fsync(real(fd)))
    yield pool
    pool.pool.shutdown()


def _store(ctx: ServerContext, data: bytes, offload: _Offload) -> StoreResult:
    async def main() -> StoreResult:
        return await store_instance_on_loop(ctx, data, StoreOrigin(), offload)
    return run_in_own_thread(main)  # type: ignore[no-any-return]


def _unsettled(ctx: ServerContext) -> int:
    ctx.index_sync.flush()
    return len(ctx.storage.journal._pending)  # type: ignore[attr-defined]


def _instances(ctx: ServerContext) -> int:
    return ctx.index.reader().counters()["level4"]


def test_a_small_store_runs_on_the_loop_with_its_fsync_on_a_native_thread(
        tmp_path: Path, among_others: None, context: Maker, offload: _Offload) -> None:
    ctx = context()
    data = to_bytes(base_dataset("LOOP"))
    result = _store(ctx, data, offload)
    assert result.status == "Success"
    assert offload.calls == ["fsync"]  # written, parsed and indexed on the loop; no Python worker
    files = folder_uuids(tmp_path / "storage")
    assert len(files) == 1
    uuid = next(iter(files))
    assert (tmp_path / "storage" / uuid[0:2] / uuid[2:4] / uuid).read_bytes() == data
    assert ctx.instance_file(result.ids.instance) is not None
    assert _instances(ctx) == 1

    again = _store(ctx, data, offload)
    assert again.status == "AlreadyStored"
    assert again.ids == result.ids
    assert folder_uuids(tmp_path / "storage") == files  # the second copy was written, then removed
    assert _unsettled(ctx) == 0
    assert _instances(ctx) == 1
    changes = [c.change_type for c in ctx.index.reader().changes(0, 100)]
    assert changes == [ChangeType.NEW_INSTANCE, ChangeType.NEW_SERIES, ChangeType.NEW_STUDY, ChangeType.NEW_PATIENT]


def test_a_big_file_is_written_by_a_worker(tmp_path: Path, among_others: None, context: Maker,
                                          offload: _Offload) -> None:
    """Its copy into the page cache and its MD5 would hold the loop: a worker writes it."""
    ctx = context()
    ds = base_dataset("BIG")
    ds.PixelData = b"\x00\x01" * 40_000
    ds["PixelData"].VR = "OW"
    data = to_bytes(ds)
    result = _store(ctx, data, offload)
    assert result.status == "Success"
    assert offload.calls == ["write_attachment"]
    uuid = next(iter(folder_uuids(tmp_path / "storage")))
    assert (tmp_path / "storage" / uuid[0:2] / uuid[2:4] / uuid).read_bytes() == data
    assert _unsettled(ctx) == 0


def test_malformed_file_with_a_dicom_preamble_leaves_nothing(tmp_path: Path, among_others: None, context: Maker,
                                                             offload: _Offload) -> None:
    ctx = context()
    ds = base_dataset("LOOP")
    del ds.SOPInstanceUID
    data = to_bytes(ds)
    with pytest.raises(OrthancError) as expected:
        parse_instance(data)
    with pytest.raises(OrthancError) as error:
        _store(ctx, data, offload)
    assert error.value.code == expected.value.code == ErrorCode.INEXISTENT_TAG
    assert offload.calls == ["fsync"]  # written while it was parsed, then removed
    assert folder_uuids(tmp_path / "storage") == set()
    assert _unsettled(ctx) == 0
    assert _instances(ctx) == 0


def test_garbage_is_never_written(tmp_path: Path, among_others: None, context: Maker, offload: _Offload) -> None:
    ctx = context()
    with pytest.raises(OrthancError) as error:
        _store(ctx, b"\x00" * 64 + b"not DICOM at all" * 10, offload)
    assert error.value.code == ErrorCode.BAD_FILE_FORMAT
    assert offload.calls == []
    assert folder_uuids(tmp_path / "storage") == set()


def test_a_busy_writer_sends_the_indexing_to_a_worker(tmp_path: Path, among_others: None, context: Maker,
                                                     offload: _Offload) -> None:
    """Another thread's batch holds the writer: the loop does not wait for it."""
    ctx = context()
    inside, release = threading.Event(), threading.Event()

    def hold(tx: Any) -> None:
        inside.set()
        release.wait(10)

    holder = threading.Thread(target=ctx.index.write, args=(hold,))
    try:
        holder.start()
        assert inside.wait(10)
        threading.Timer(0.3, release.set).start()
        result = _store(ctx, to_bytes(base_dataset("BUSY")), offload)
        assert result.status == "Success"
        assert offload.calls == ["fsync", "_index_and_finish"]
        assert _instances(ctx) == 1
        assert len(folder_uuids(tmp_path / "storage")) == 1
        assert _unsettled(ctx) == 0
    finally:
        release.set()
        holder.join()


def test_a_fsynced_commit_runs_the_store_on_a_worker(tmp_path: Path, among_others: None, context: Maker,
                                                     offload: _Offload) -> None:
    """A commit to fsync blocks: never on the loop, and one hand-over for the whole store rather
    than two."""
    ctx = context(IndexSyncInterval=0)
    first = _store(ctx, to_bytes(base_dataset("WORKER1")), offload)
    second = _store(ctx, to_bytes(base_dataset("WORKER2")), offload)
    assert first.status == second.status == "Success"
    assert offload.calls == ["store_instance"] * 2
    assert ctx.index.reader().counters()["level1"] == 2
    assert len(folder_uuids(tmp_path / "storage")) == 2


def test_a_recycling_pass_deletes_a_small_patient_on_the_loop(tmp_path: Path, among_others: None,
                                                              context: Maker, offload: _Offload) -> None:
    """Under a limit, a store that must recycle a small patient deletes its rows on the loop; the
    recycled files stay on disk until the index is durable (core/index_sync.py), then go."""
    ctx = context(MaximumPatientCount=1)
    first = _store(ctx, to_bytes(base_dataset("RECYCLED")), offload)
    second = _store(ctx, to_bytes(base_dataset("KEPT")), offload)
    assert first.status == second.status == "Success"
    assert offload.calls == ["fsync", "fsync"]
    reader = ctx.index.reader()
    assert reader.counters()["level1"] == 1
    assert reader.lookup(first.ids.patient) is None
    assert reader.lookup(second.ids.instance) is not None
    assert len(folder_uuids(tmp_path / "storage")) == 2  # the deletion's commit is not durable yet
    assert _unsettled(ctx) == 0  # (flushes the index, then removes the file)
    assert len(folder_uuids(tmp_path / "storage")) == 1
    changes = [c.change_type for c in reader.changes(0, 100)]  # (the recycled patient's went with it)
    assert changes == [ChangeType.NEW_INSTANCE, ChangeType.NEW_SERIES, ChangeType.NEW_STUDY, ChangeType.NEW_PATIENT]


def test_a_recycling_pass_that_deletes_a_large_patient_runs_on_a_worker(
        tmp_path: Path, among_others: None, context: Maker, offload: _Offload, monkeypatch: pytest.MonkeyPatch) -> None:
    """A patient of more resources than `LIGHT_RESOURCES` (rows of any number) is not deleted by
    the loop: the store is rolled back there and indexed by a worker."""
    monkeypatch.setattr(recycling, "LIGHT_RESOURCES", 3)  # a patient of one instance has 4 resources
    ctx = context(MaximumPatientCount=1)
    first = _store(ctx, to_bytes(base_dataset("RECYCLED")), offload)
    assert offload.calls == ["fsync"]
    second = _store(ctx, to_bytes(base_dataset("KEPT")), offload)
    assert first.status == second.status == "Success"
    assert offload.calls == ["fsync", "fsync", "_index_and_finish"]
    reader = ctx.index.reader()
    assert reader.counters()["level1"] == 1
    assert reader.lookup(first.ids.patient) is None
    assert reader.lookup(second.ids.instance) is not None
    assert _unsettled(ctx) == 0
    assert len(folder_uuids(tmp_path / "storage")) == 1  # the recycled patient's file is gone
    changes = [c.change_type for c in reader.changes(0, 100)]  # logged once, not by the rolled-back try
    assert changes == [ChangeType.NEW_INSTANCE, ChangeType.NEW_SERIES, ChangeType.NEW_STUDY, ChangeType.NEW_PATIENT]


def test_a_full_storage_in_reject_mode_refuses_on_the_loop(tmp_path: Path, among_others: None, context: Maker,
                                                          offload: _Offload) -> None:
    ctx = context(MaximumPatientCount=1, MaximumStorageMode="Reject")
    assert _store(ctx, to_bytes(base_dataset("FIRST")), offload).status == "Success"
    with pytest.raises(OrthancError) as refused:
        _store(ctx, to_bytes(base_dataset("REFUSED")), offload)
    assert refused.value.code == ErrorCode.FULL_STORAGE
    assert offload.calls == ["fsync", "fsync"]
    assert ctx.index.reader().counters()["level1"] == 1
    assert len(folder_uuids(tmp_path / "storage")) == 1  # the refused instance's file is removed
    assert _unsettled(ctx) == 0


def test_compressed_storage_writes_both_files_on_the_loop(
        tmp_path: Path, among_others: None, context: Maker, offload: _Offload) -> None:
    """A small compressed store: the loop compresses and writes the DICOM file and its header
    attachment, their two fsyncs on native threads; both records are those of a worker's store."""
    ctx = context(StorageCompression=True)
    ds = base_dataset("COMPRESSED")
    ds.PixelData = b"\x00\x01" * 64
    ds["PixelData"].VR = "OW"
    data = to_bytes(ds)
    result = _store(ctx, data, offload)
    assert result.status == "Success"
    assert offload.calls == ["fsync", "fsync"]  # no Python worker
    reader = ctx.index.reader()
    internal = reader.lookup(result.ids.instance)
    assert internal is not None
    records = reader.attachments(internal[0])
    assert sorted(records) == [ContentType.DICOM, ContentType.DICOM_UNTIL_PIXEL_DATA]
    offset = parse_instance(data).pixel_data_offset
    for content_type, expected in ((ContentType.DICOM, data), (ContentType.DICOM_UNTIL_PIXEL_DATA, data[:offset])):
        info = records[content_type]
        assert info.compression == 2 and info.uncompressed_size == len(expected)
        assert read_attachment(ctx.storage, info) == expected
        stored = (tmp_path / "storage" / info.uuid[0:2] / info.uuid[2:4] / info.uuid).read_bytes()
        assert hashlib.md5(stored).hexdigest() == info.compressed_md5 and len(stored) == info.compressed_size
        assert hashlib.md5(expected).hexdigest() == info.uncompressed_md5
    assert len(folder_uuids(tmp_path / "storage")) == 2
    assert _unsettled(ctx) == 0


def test_a_big_compressed_file_is_compressed_by_a_worker(
        tmp_path: Path, among_others: None, context: Maker, offload: _Offload) -> None:
    """Compressing it would hold the loop: a worker writes the DICOM file, the loop its small header."""
    ctx = context(StorageCompression=True)
    ds = base_dataset("BIGCOMPRESSED")
    ds.PixelData = bytes(range(256)) * 200
    ds["PixelData"].VR = "OB"
    data = to_bytes(ds)
    result = _store(ctx, data, offload)
    assert result.status == "Success"
    assert sorted(offload.calls) == ["fsync", "write_attachment"]
    info = ctx.instance_file(result.ids.instance)
    assert info is not None and read_attachment(ctx.storage, info) == data
    assert len(folder_uuids(tmp_path / "storage")) == 2


def test_a_failed_header_write_leaves_no_file(tmp_path: Path, among_others: None, context: Maker,
                                              offload: _Offload, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DICOM file is written, its header attachment's write fails: the store fails, the DICOM
    file is removed, nothing is indexed."""
    ctx = context(StorageCompression=True)
    folder = ctx.storage.inner.inner  # type: ignore[attr-defined]  # (journal, cache, folder)
    real = folder.start_create

    def failing(uuid: str, data: bytes, content_type: int | None = None) -> Any:
        if content_type == ContentType.DICOM_UNTIL_PIXEL_DATA:
            raise OrthancError(ErrorCode.CANNOT_WRITE_FILE, "disk full (test)")
        return real(uuid, data, content_type)

    monkeypatch.setattr(folder, "start_create", failing)
    ds = base_dataset("HEADERFAILS")
    ds.PixelData = b"\x00\x01" * 64
    ds["PixelData"].VR = "OW"
    with pytest.raises(OrthancError) as failed:
        _store(ctx, to_bytes(ds), offload)
    assert failed.value.code == ErrorCode.CANNOT_WRITE_FILE
    assert folder_uuids(tmp_path / "storage") == set()
    assert _instances(ctx) == 0
    assert _unsettled(ctx) == 0


def test_a_store_alone_runs_on_a_worker(context: Maker, offload: _Offload) -> None:
    """Alone, a store's worker parses on a helper during the fsync (tests/unit/test_store_overlap.py),
    which the loop's parse cannot do: the worker would wait for the parse to let go of Python's lock."""
    ctx = context()
    result = _store(ctx, to_bytes(base_dataset("ALONE")), offload)
    assert result.status == "Success"
    assert offload.calls == ["store_instance"]
    assert _instances(ctx) == 1


def _store_together(ctx: ServerContext, payloads: list[bytes],
                    offload: _Offload) -> tuple[list[int], list[StoreResult]]:
    """Stores the payloads at once; the sizes of the index's loop transactions, and the results."""
    sizes: list[int] = []
    real = ctx.index.write_many_if_idle  # type: ignore[attr-defined]

    def recording(fns: list[Any], durable: bool = True) -> Any:
        sizes.append(len(fns))
        return real(fns, durable)

    ctx.index.write_many_if_idle = recording  # type: ignore[attr-defined]

    async def main() -> list[StoreResult]:
        return list(await asyncio.gather(*(store_instance_on_loop(ctx, p, StoreOrigin(), offload) for p in payloads)))

    return sizes, run_in_own_thread(main)


def test_stores_ready_in_one_turn_share_one_transaction(tmp_path: Path, among_others: None,
                                                        context: Maker, offload: _Offload) -> None:
    """Each store's commit would write ~16 pages, most of them the same as the next one's."""
    ctx = context()
    offload.gate = 3
    sizes, results = _store_together(ctx, [to_bytes(base_dataset(f"SHARED{i}")) for i in range(3)], offload)
    assert sizes == [3]
    assert [r.status for r in results] == ["Success"] * 3
    assert offload.calls == ["fsync"] * 3
    assert _instances(ctx) == 3
    assert len(folder_uuids(tmp_path / "storage")) == 3
    assert _unsettled(ctx) == 0
    for r in results:
        assert ctx.instance_file(r.ids.instance) is not None
    new_instances = [c for c in ctx.index.reader().changes(0, 100) if c.change_type == ChangeType.NEW_INSTANCE]
    assert len(new_instances) == 3


def test_a_store_in_a_shared_transaction_fails_alone(tmp_path: Path, among_others: None, context: Maker,
                                                     offload: _Offload) -> None:
    """The same instance twice in one transaction: the second is AlreadyStored, its file removed,
    and the third store is indexed as if alone."""
    ctx = context()
    twice = to_bytes(base_dataset("TWICE"))
    offload.gate = 3
    sizes, results = _store_together(ctx, [twice, twice, to_bytes(base_dataset("OTHER"))], offload)
    assert sizes == [3]
    assert [r.status for r in results] == ["Success", "AlreadyStored", "Success"]
    assert _instances(ctx) == 2
    assert len(folder_uuids(tmp_path / "storage")) == 2
    assert _unsettled(ctx) == 0


def test_only_the_store_that_must_recycle_leaves_the_shared_transaction(
        tmp_path: Path, among_others: None, context: Maker, offload: _Offload, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store that must recycle a large patient: its savepoint is rolled back and a worker indexes
    it, recycling the oldest patient."""
    monkeypatch.setattr(recycling, "LIGHT_RESOURCES", 3)
    ctx = context(MaximumPatientCount=2)
    oldest = _store(ctx, to_bytes(base_dataset("OLDEST")), offload)
    kept = _store(ctx, to_bytes(base_dataset("KEPT")), offload)
    offload.calls.clear()
    offload.gate = 2
    sizes, results = _store_together(ctx, [to_bytes(base_dataset("KEPT")), to_bytes(base_dataset("NEWEST"))], offload)
    assert sizes == [2]
    assert [r.status for r in results] == ["Success", "Success"]
    assert offload.calls == ["fsync", "fsync", "_index_and_finish"]
    reader = ctx.index.reader()
    assert reader.lookup(oldest.ids.patient) is None
    assert reader.lookup(kept.ids.patient) is not None
    assert reader.lookup(results[1].ids.patient) is not None
    assert reader.counters()["level1"] == 2
    assert _instances(ctx) == 3
    assert _unsettled(ctx) == 0  # (the index made durable: the recycled file removed)
    assert len(folder_uuids(tmp_path / "storage")) == 3


def test_a_closed_index_fails_the_store_and_leaves_no_file(tmp_path: Path, among_others: None, context: Maker,
                                                           offload: _Offload) -> None:
    """A batch that cannot run at all settles every store of it (none waits forever)."""
    ctx = context()
    ctx.index.close()
    with pytest.raises(OrthancError) as error:
        _store(ctx, to_bytes(base_dataset("CLOSED")), offload)
    assert error.value.code == ErrorCode.DATABASE_UNAVAILABLE
    assert folder_uuids(tmp_path / "storage") == set()


def test_the_loop_deletes_few_resources_in_all_for_one_store(
        tmp_path: Path, among_others: None, context: Maker, offload: _Offload, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small patients, but many of them to make room for one large instance: past `LIGHT_RESOURCES`
    in all, the store goes to a worker, which recycles them all."""
    monkeypatch.setattr(recycling, "LIGHT_RESOURCES", 6)  # one patient of one instance: 4 resources
    ctx = context(MaximumStorageSize=1)
    for name in ("OLD1", "OLD2", "OLD3"):
        ds = base_dataset(name)
        ds.add_new(0x00091010, "OB", bytes(300_000))  # (a private element: 300 KB files)
        assert _store(ctx, to_bytes(ds), offload).status == "Success"
    offload.calls.clear()
    big = base_dataset("BIG")
    big.add_new(0x00091010, "OB", bytes(900_000))
    assert _store(ctx, to_bytes(big), offload).status == "Success"
    assert "_index_and_finish" in offload.calls  # rolled back on the loop, indexed by a worker
    assert ctx.index.reader().counters()["level1"] == 1
    assert _unsettled(ctx) == 0
    assert len(folder_uuids(tmp_path / "storage")) == 1
