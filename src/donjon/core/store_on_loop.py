"""A REST store among others, as the event loop runs it: the loop writes a small file itself and
has it fsynced on a C thread (storage/native_sync.py), parses it meanwhile and indexes it.

Python runs one thread at a time: when every step of every store ran on a worker, four clients kept
the threads handing Python's lock to each other (a quarter of the server's CPU in thread switches).
The stores whose files are written by the time the loop comes round share one index transaction:
a store's commit writes ~16 pages to the WAL (and later to the database file), most of them the
same pages as the next store's (the ends of the tables and indexes), so two stores in one
transaction write 11 pages each, four 8.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..dicom.parse import ParsedInstance, parse_instance
from ..index.protocol import FileInfo, WriterBusy
from ..registry import ContentType
from .attachments import start_attachment_write, write_attachment, writes_on_loop
from .store import (
    StoreOrigin,
    StoreResult,
    _finish,
    _in_flight,
    _index,
    _index_and_finish,
    _looks_like_dicom,
    _needs_header_file,
    _remove,
    keeps_header_files,
    store_instance,
)
from .turn_batches import TurnBatch, settle, settle_from

if TYPE_CHECKING:
    from .context import ServerContext

Offload = Callable[..., Awaitable[Any]]  # runs a blocking call on a worker; starts it at once


async def store_instance_on_loop(ctx: ServerContext, data: bytes, origin: StoreOrigin,
                                 offload: Offload) -> StoreResult:
    """A store among others goes this way when its one blocking step is its file's write. A store
    alone goes the way of `store_instance` on a worker, whose helper thread parses during the
    fsync: here the worker could only start once the parse has let go of Python's lock. So do the
    stores that would need more than one hand-over (a commit to fsync, a header attachment on a
    storage the loop cannot write), plugins' callbacks, and PostgreSQL's store (a round trip the
    loop must not wait for). Under recycling limits a store comes here too: its pass only reads two
    counters until it must delete a patient, and then a worker indexes it instead."""
    if not (_in_flight.busy() and _one_hand_over(ctx)):
        return await offload(store_instance, ctx, data, origin)  # type: ignore[no-any-return]
    with _in_flight.enter():
        return await _store_on_loop(ctx, data, origin, offload)


def _one_hand_over(ctx: ServerContext) -> bool:
    """Whether a store's only blocking steps are its files' writes: the rest runs on the loop. With a
    header attachment (compression) the storage must write on the loop too (a folder: both files
    written at once, their fsyncs side by side on C threads)."""
    return (ctx.plugins is None and hasattr(ctx.index, "write_many_if_idle") and ctx.index_sync.deferred
            and (not keeps_header_files(ctx) or hasattr(ctx.storage, "start_create")))


async def _store_on_loop(ctx: ServerContext, data: bytes, origin: StoreOrigin, offload: Offload) -> StoreResult:
    def write(content: bytes = data, content_type: int = ContentType.DICOM) -> Awaitable[FileInfo]:
        if not writes_on_loop(ctx.storage, ctx.attachment_policy, len(content)):
            return offload(write_attachment, ctx.storage, content, content_type, ctx.attachment_policy)
        try:
            return start_attachment_write(ctx.storage, content, content_type, ctx.attachment_policy)
        except Exception as e:  # reported once the parse has had its say, as a worker's failure is
            failed: asyncio.Future[FileInfo] = asyncio.get_running_loop().create_future()
            failed.set_exception(e)
            return failed

    written = write() if _looks_like_dicom(data) else None  # anything else is parsed first, never written
    try:
        parsed = parse_instance(data, ctx.default_encoding)
    except BaseException:
        if written is not None:
            await _discard(ctx, written)
        raise
    if written is None:
        written = write()
    header = (write(data[:parsed.pixel_data_offset], ContentType.DICOM_UNTIL_PIXEL_DATA)
              if _needs_header_file(ctx, parsed) else None)
    files = await _both(ctx, written, header)
    return await _batch(ctx).add(parsed, files, origin, offload)


async def _both(ctx: ServerContext, written: Awaitable[FileInfo], header: Awaitable[FileInfo] | None) -> list[FileInfo]:
    """The DICOM file's record, and its header attachment's when there is one; if either write
    fails, the other file is removed and the failure raised."""
    try:
        main = await written
    except BaseException:
        if header is not None:
            await _discard(ctx, header)
        raise
    if header is None:
        return [main]
    try:
        return [main, await header]
    except BaseException:
        _remove(ctx, [main])
        raise


async def _discard(ctx: ServerContext, written: Awaitable[FileInfo]) -> None:
    """Remove the file of a store that failed before its indexing (the store's error is reported)."""
    try:
        info = await written
    except Exception:
        return
    ctx.storage.remove(info.uuid, info.content_type)


class _Item:
    __slots__ = ("answer", "files", "offload", "origin", "parsed")

    def __init__(self, parsed: ParsedInstance, files: list[FileInfo], origin: StoreOrigin, offload: Offload,
                 answer: asyncio.Future[StoreResult]):
        self.parsed = parsed
        self.files = files
        self.origin = origin
        self.offload = offload
        self.answer = answer


class _IndexBatch(TurnBatch[_Item]):
    """The stores of one server context waiting for the loop's next turn to be indexed together.
    Each is settled entirely there (indexed and finished, or handed to a worker): a store whose
    caller stops waiting (a cancelled request) still ends as any other."""

    def __init__(self, ctx: ServerContext, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self._ctx = weakref.ref(ctx)  # (the registry of batches must not keep a context alive)

    @property
    def ctx(self) -> ServerContext:
        ctx = self._ctx()
        assert ctx is not None, "a store outlived its server context"
        return ctx

    def add(self, parsed: ParsedInstance, files: list[FileInfo], origin: StoreOrigin,
            offload: Offload) -> asyncio.Future[StoreResult]:
        answer: asyncio.Future[StoreResult] = self.loop.create_future()
        self._queue(_Item(parsed, files, origin, offload, answer))
        return answer

    def _run(self, items: list[_Item]) -> None:
        """One transaction (a savepoint per store: one failing leaves the others), without fsync
        (`_one_hand_over`: the index's sync is deferred), when the writer is idle; a store the loop
        cannot index (the writer busy, or a patient to recycle) goes to a worker."""
        ctx = self.ctx
        fns = [self._indexing(item) for item in items]
        try:
            requests = ctx.index.write_many_if_idle(fns, durable=False)  # type: ignore[attr-defined]
        except BaseException as e:  # (the index closed): every store of the batch fails, none hangs
            for item in items:
                _remove(ctx, item.files)
                settle(item.answer, error=e)
            return
        for i, item in enumerate(items):
            try:
                if requests is None:
                    raise WriterBusy()
                outcome = requests[i].outcome()
            except WriterBusy:
                self._to_worker(item)
                continue
            except BaseException as e:
                _remove(ctx, item.files)
                settle(item.answer, error=e)
                continue
            try:
                if outcome.status != "Success":
                    _remove(ctx, item.files)
                settle(item.answer, _finish(ctx, item.parsed.ids, item.files, outcome))
            except BaseException as e:
                settle(item.answer, error=e)

    def _indexing(self, item: _Item) -> Callable[[Any], Any]:
        ctx = self.ctx
        return lambda tx: _index(ctx, tx, item.parsed, item.files, item.origin, on_loop=True)

    def _to_worker(self, item: _Item) -> None:
        try:
            work = item.offload(_index_and_finish, self.ctx, item.parsed, item.files, item.origin)
        except BaseException as e:  # (the workers shut down)
            _remove(self.ctx, item.files)
            settle(item.answer, error=e)
            return
        settle_from(work, item.answer)


_batches: weakref.WeakKeyDictionary[ServerContext, _IndexBatch] = weakref.WeakKeyDictionary()


def _batch(ctx: ServerContext) -> _IndexBatch:
    loop = asyncio.get_running_loop()
    batch = _batches.get(ctx)
    if batch is None or batch.loop is not loop:
        batch = _batches[ctx] = _IndexBatch(ctx, loop)
    return batch
