"""WAL checkpoints of the SQLite index run on the index-sync thread, off the threads that commit (the
event loop, core/store_on_loop.py): commits no longer copy the WAL into the database, the thread
does at its next tick, holding the writer so that the checkpoint completes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from donjon.core.index_sync import IndexSync
from donjon.index.sqlite import SQLiteIndex
from donjon.storage.journal import InflightJournal

_PAGE_FILLER = "x" * 3000  # one property, about one page


def _fill(index: SQLiteIndex, pages: int) -> None:
    """Commits that write about `pages` pages to the WAL, 50 properties a commit."""
    for start in range(0, pages, 50):
        def write(tx, start=start):  # type: ignore[no-untyped-def]
            for key in range(start, start + 50):
                tx.set_global_property(100_000 + key, _PAGE_FILLER + str(key))
        index.write(write, durable=False)


def _db_size(path: Path) -> int:
    return path.stat().st_size


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SQLiteIndex]:
    opened = SQLiteIndex(str(tmp_path / "index"))
    yield opened
    opened.close()


def test_commits_checkpoint_by_themselves_by_default(tmp_path: Path, index: SQLiteIndex) -> None:
    before = _db_size(tmp_path / "index")
    _fill(index, 1500)
    assert _db_size(tmp_path / "index") > before + 500 * 4096  # copied by the commit past 1,000 pages


def test_taken_over_checkpoints_run_only_when_asked(tmp_path: Path, index: SQLiteIndex) -> None:
    index.take_over_checkpoints()
    before = _db_size(tmp_path / "index")
    _fill(index, 1500)
    assert _db_size(tmp_path / "index") == before  # everything still in the WAL
    assert index.wal_frames_to_copy() >= 1500
    assert not index.checkpoint(min_pages=5000)
    assert index.checkpoint(min_pages=1000)
    assert _db_size(tmp_path / "index") > before + 1000 * 4096
    assert index.wal_frames_to_copy() == 0
    wal = (tmp_path / "index-wal").stat().st_size
    _fill(index, 100)  # the checkpoint was complete: the next commits start the WAL again
    assert (tmp_path / "index-wal").stat().st_size == wal
    assert 100 <= index.wal_frames_to_copy() < 1000
    assert not index.checkpoint(min_pages=1000)  # the WAL file is big, its new frames are few


def test_a_checkpoint_waits_for_the_running_batch_and_holds_the_writer(index: SQLiteIndex) -> None:
    index.take_over_checkpoints()
    _fill(index, 1200)
    inside, release = threading.Event(), threading.Event()

    def hold(tx):  # type: ignore[no-untyped-def]
        inside.set()
        release.wait(10)

    holder = threading.Thread(target=index.write, args=(hold,))
    holder.start()
    assert inside.wait(10)
    done = threading.Event()
    checkpointer = threading.Thread(target=lambda: (index.checkpoint(1000), done.set()))
    checkpointer.start()
    time.sleep(0.1)
    assert not done.is_set()  # the batch holds the writer
    release.set()
    holder.join()
    checkpointer.join(10)
    assert done.is_set()
    with index.writes_if_idle():  # and the writer is free again
        index.write(lambda tx: tx.set_global_property(99_999, "after"), durable=False)


def test_the_index_sync_thread_runs_the_checkpoints(tmp_path: Path, index: SQLiteIndex) -> None:
    journal = InflightJournal(str(tmp_path / "journal"))
    sync = IndexSync(index, journal, interval=0.05)
    try:
        before = _db_size(tmp_path / "index")
        _fill(index, 1500)
        deadline = time.monotonic() + 10
        while _db_size(tmp_path / "index") <= before + 1000 * 4096 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _db_size(tmp_path / "index") > before + 1000 * 4096
    finally:
        sync.close()
        journal.close()
