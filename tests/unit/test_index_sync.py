"""`IndexSync.after_flush`: what must wait for the index to be durable (the unlink of the files of
patients a store recycled, core/context.py `after_deletion`) runs only after a durable commit, and
is kept for the next one when that commit fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from donjon.core.index_sync import IndexSync
from donjon.index.sqlite import SQLiteIndex
from donjon.storage.journal import InflightJournal


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SQLiteIndex]:
    opened = SQLiteIndex(str(tmp_path / "index"))
    yield opened
    opened.close()


class _Recorder:
    """Records, with each task run, the durable commits made before it."""

    def __init__(self, index: SQLiteIndex):
        self.durable_commits = 0
        self.ran: list[tuple[str, int]] = []
        real = index.write

        def write(fn: Any, durable: bool = True) -> Any:
            value = real(fn, durable)
            if durable:
                self.durable_commits += 1
            return value

        index.write = write  # type: ignore[method-assign]

    def task(self, name: str) -> Any:
        return lambda: self.ran.append((name, self.durable_commits))


@pytest.fixture
def deferred(index: SQLiteIndex, tmp_path: Path) -> Iterator[tuple[_Recorder, IndexSync]]:
    """A deferred index sync whose ticker never fires during a test (flushes are the test's)."""
    recorder = _Recorder(index)
    sync = IndexSync(index, InflightJournal(str(tmp_path / "journal")), interval=3600)
    yield recorder, sync
    sync.close()


def test_a_task_waits_for_the_next_durable_commit(deferred: tuple[_Recorder, IndexSync]) -> None:
    recorder, sync = deferred
    sync.after_flush(recorder.task("remove"))
    assert recorder.ran == []
    sync.flush()
    assert recorder.ran == [("remove", 1)]  # after the durable commit, not before
    sync.flush()  # nothing waits: no commit, nothing run again
    assert recorder.durable_commits == 1 and recorder.ran == [("remove", 1)]


def test_without_deferral_a_task_runs_at_once(index: SQLiteIndex, tmp_path: Path) -> None:
    recorder = _Recorder(index)
    sync = IndexSync(index, InflightJournal(str(tmp_path / "journal")), interval=0)
    sync.after_flush(recorder.task("remove"))
    assert recorder.ran == [("remove", 0)]  # every commit was fsynced already
    sync.close()


def test_a_failed_flush_keeps_the_task_for_the_next(index: SQLiteIndex,
                                                    deferred: tuple[_Recorder, IndexSync]) -> None:
    recorder, sync = deferred
    sync.after_flush(recorder.task("remove"))
    working = index.write

    def failing(fn: Any, durable: bool = True) -> Any:
        raise OSError("disk unplugged")

    index.write = failing  # type: ignore[method-assign]
    with pytest.raises(OSError):
        sync.flush()
    assert recorder.ran == []
    index.write = working  # type: ignore[method-assign]
    sync.flush()
    assert recorder.ran == [("remove", 1)]


def test_closing_runs_what_waits(deferred: tuple[_Recorder, IndexSync]) -> None:
    recorder, sync = deferred
    sync.after_flush(recorder.task("remove"))
    sync.close()
    assert recorder.ran == [("remove", 1)]


def test_a_failing_task_does_not_stop_the_others(deferred: tuple[_Recorder, IndexSync]) -> None:
    recorder, sync = deferred

    def broken() -> None:
        raise OSError("cannot unlink")

    sync.after_flush(broken)
    sync.after_flush(recorder.task("next"))
    sync.flush()
    assert recorder.ran == [("next", 1)]
