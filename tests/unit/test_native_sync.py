"""A file written on the event loop, fsynced on a native thread (storage/native_sync.py, caio): the
outcome of the real fsync reaches the loop, a full queue falls back to a Python worker, and a store
that stops waiting never closes its file under a running fsync."""

from __future__ import annotations

import asyncio
import errno
import os
import uuid as uuidlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from donjon.errors import ErrorCode, OrthancError
from donjon.storage import native_sync
from donjon.storage.cache import CachingStorage
from donjon.storage.folder import FolderStorage
from donjon.storage.journal import InflightJournal, JournaledStorage
from tests.support.aio import run_in_own_thread

pytestmark = pytest.mark.skipif(not native_sync.available(), reason="caio (a dependency on Linux) is missing")


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_fsync_of_an_open_file_completes(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"data")

        async def main() -> None:
            await native_sync.fsync(fd)
        run_in_own_thread(main)
    finally:
        os.close(fd)


def test_a_failed_fsync_raises_its_os_error() -> None:
    read_end, write_end = os.pipe()  # a pipe cannot be fsynced: EINVAL from the native thread
    try:
        async def main() -> None:
            await native_sync.fsync(write_end)
        with pytest.raises(OSError) as error:
            run_in_own_thread(main)
        assert error.value.errno == errno.EINVAL
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.fixture
def tiny_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A real caio pool whose queue holds one request: the others overflow to a Python worker."""
    from caio.thread_aio import Context

    context = Context(max_requests=1, pool_size=1)
    monkeypatch.setattr(native_sync, "_pool", lambda: context)
    yield
    context.close()


def test_a_full_queue_falls_back_to_a_python_worker(tmp_path: Path, tiny_queue: None) -> None:
    fds = [os.open(tmp_path / f"f{i}", os.O_WRONLY | os.O_CREAT, 0o644) for i in range(6)]
    try:
        async def main() -> None:
            await asyncio.gather(*(native_sync.fsync(fd) for fd in fds))
        run_in_own_thread(main)
    finally:
        for fd in fds:
            os.close(fd)


def _storage(tmp_path: Path) -> tuple[CachingStorage, InflightJournal]:
    journal = InflightJournal(str(tmp_path / "journal"))
    return CachingStorage(JournaledStorage(FolderStorage(str(tmp_path / "files")), journal), 1 << 20), journal


def test_a_file_started_on_the_loop_is_journaled_written_and_cached(tmp_path: Path) -> None:
    storage, journal = _storage(tmp_path)
    uid = str(uuidlib.uuid4())

    async def main() -> None:
        creating = storage.start_create(uid, b"payload", 1)
        assert [e.uuid for e in journal.leftovers()] == [uid]  # announced before the data exists
        await creating
    run_in_own_thread(main)
    assert (tmp_path / "files" / uid[0:2] / uid[2:4] / uid).read_bytes() == b"payload"
    assert storage._get(uid) == b"payload"
    journal.close()


def test_an_existing_file_is_refused_at_once_and_its_journal_line_settled(tmp_path: Path) -> None:
    storage, journal = _storage(tmp_path)
    uid = str(uuidlib.uuid4())
    storage.create(uid, b"first", 1)
    journal.settle([uid])

    async def main() -> None:
        storage.start_create(uid, b"second", 1)
    with pytest.raises(OrthancError) as error:
        run_in_own_thread(main)
    assert error.value.code == ErrorCode.INTERNAL_ERROR
    assert journal.leftovers() == []
    journal.close()


def test_a_cancelled_store_closes_its_file_only_after_the_fsync(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal wrapper removes the file of a store that stopped waiting; its descriptor is closed
    once the native thread's fsync is done, never under it."""
    storage, journal = _storage(tmp_path)
    uid = str(uuidlib.uuid4())
    real = native_sync.fsync
    held: list[asyncio.Future[None]] = []

    def slow(fd: int) -> asyncio.Future[None]:
        synced = real(fd)
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        synced.add_done_callback(lambda _: asyncio.get_running_loop().call_later(0.05, gate.set_result, None))
        held.append(gate)
        return gate

    monkeypatch.setattr(native_sync, "fsync", slow)

    async def main() -> tuple[int, int, int]:
        before = _open_fds()
        task = asyncio.ensure_future(storage.start_create(uid, b"payload", 1))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        during = _open_fds()  # the fsync is not done: the file is still open
        await held[0]
        await asyncio.sleep(0)
        return before, during, _open_fds()

    before, during, after = run_in_own_thread(main)
    assert during == before + 1
    assert after == before
    assert not (tmp_path / "files" / uid[0:2] / uid[2:4] / uid).exists()  # removed with its journal line
    assert journal.leftovers() == []
    journal.close()
