"""Deferred fsync of the index commits of stores, without weakening "acknowledged means durable".

A store writes and fsyncs its file, then commits its index rows. Fsyncing that commit too costs a
second fsync per instance (~0.3 ms here, a fifth of a small instance's store); Orthanc does not pay
it (its SQLite index runs in WAL mode without syncing commits). Donjon commits a store's rows without
the fsync and makes them durable by batches: every `IndexSyncInterval` seconds one small durable
commit (SQLite: `synchronous=FULL`; PostgreSQL: a synchronous commit) flushes the log, and with it
every commit before it; only then are the stores' files settled in the in-flight journal.

What a crash can take: after a process crash nothing (the OS keeps what was written). After a power
cut, the index commits of the last interval; their files are fsynced and still announced in the
journal, so the next start-up finds them and stores them again (core/inflight.py `adopt`): no
acknowledged instance is lost, and the index never names a missing file.

The same holds the other way: the files of patients recycled by a store (whose deletion commits
without its fsync) are removed by this thread after the next durable commit (`after_flush`), never
before: a power cut cannot bring back index rows that name files already unlinked. It also takes the
unlinks (~0.1 ms each here) off the store that recycled.

With SQLite the same thread runs the WAL checkpoints (`SQLiteIndex.take_over_checkpoints`): a
commit past 1,000 WAL pages used to copy them into the database and fsync it twice in the thread
that committed, most often the event loop, which then answered nobody for several milliseconds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..registry import GlobalProperty
from ..storage.journal import InflightJournal
from .clock import now_utc

log = logging.getLogger(__name__)
_CHECKPOINT_PAGES = 1000  # a checkpoint at the first tick past SQLite's own threshold


class IndexSync:
    def __init__(self, index: Any, journal: InflightJournal, interval: float):
        self.index = index
        self.journal = journal
        self.interval = interval
        self.deferred = interval > 0  # False: every store commit is fsynced (and settled) at once
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._awaiting: list[str] = []
        self._after: list[Callable[[], None]] = []  # run once the commits before them are durable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # SQLite: this thread also runs the WAL checkpoints, off the threads that commit (the loop)
        self._checkpoints = self.deferred and hasattr(index, "take_over_checkpoints")
        if self._checkpoints:
            index.take_over_checkpoints()
        if self.deferred:
            self._thread = threading.Thread(target=self._run, name="index-sync", daemon=True)
            self._thread.start()

    def committed(self, uuids: Iterable[str]) -> None:
        """The files of a store whose index commit returned (durable at once unless deferred)."""
        if not self.deferred:
            self.journal.settle(uuids)
            return
        with self._lock:
            self._awaiting.extend(uuids)

    def after_flush(self, fn: Callable[[], None]) -> None:
        """Run `fn` (on this thread) once every commit made so far is durable: at once when each
        commit is fsynced (not deferred), else after the next flush."""
        if not self.deferred:
            fn()
            return
        with self._lock:
            self._after.append(fn)

    def flush(self) -> None:
        """Make every store committed so far durable, then settle its files in the journal and run
        what waited for it (`after_flush`)."""
        with self._flush_lock:
            with self._lock:
                taken, self._awaiting = self._awaiting, []
                after, self._after = self._after, []
            if not taken and not after:
                return
            try:
                stamp = now_utc()
                self.index.write(lambda tx: tx.set_global_property(GlobalProperty.INDEX_SYNC_MARK, stamp),
                                 durable=True)
            except Exception:
                with self._lock:
                    self._awaiting[:0] = taken  # try again at the next tick; the journal keeps them
                    self._after[:0] = after
                raise
            self.journal.settle(taken)
            for fn in after:
                try:
                    fn()
                except Exception:
                    log.exception("A task held until the index was durable failed")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
                if self._checkpoints:
                    self.index.checkpoint(min_pages=_CHECKPOINT_PAGES)
            except Exception as e:  # an index that is closing or unreachable: the next tick retries
                log.warning("Cannot make the index durable: %s", e)

    def close(self) -> None:
        """Stop the ticker and flush (before the index closes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception as e:
            log.warning("Cannot make the index durable at shut-down: %s", e)
