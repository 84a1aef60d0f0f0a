"""The SQLite index: WAL, leader/follower group commit, per-thread readers.

Writes are functions run in one transaction each (a savepoint per function inside a batch, so one
failure does not undo the others). Concurrent writers share one commit and one fsync; a lone writer
runs in its own thread. A durable write (anything acknowledging an instance, or removing files after
the commit) is fsynced before it returns; other writes (metadata, labels...) use SQLite's NORMAL mode,
safe against a crash of the process, as Orthanc's own index is.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources as pkg_resources
from typing import Any, TypeVar

from ..errors import ErrorCode, OrthancError
from .group_commit import GroupCommitter, WriteRequest
from .identifiers import STUDIES_AFTER, study_copy_batches
from .protocol import WriterBusy
from .sqlite_queries import SQLiteReader, SQLiteWriter

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["SCHEMA_VERSION", "SQLiteIndex", "SQLiteReader", "SQLiteWriter"]

SCHEMA_VERSION = 4
_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
_SAFETY_CHECKPOINT_PAGES = 20000  # when another thread runs the checkpoints (`take_over_checkpoints`)
_WRITER_CACHE_KB = 8192
_READER_CACHE_KB = 2048


def _in_one_transaction(conn: sqlite3.Connection, version: int, statements: tuple[str, ...],
                        then: Callable[[], None] | None = None) -> None:
    """Schema statements (then `then`) and the new `user_version`, all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in statements:
            conn.execute(statement)
        if then is not None:
            then()
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise


def _add_study_copies(conn: sqlite3.Connection) -> None:
    """Each study's copy of its patient identifiers (index/identifiers.py)."""
    query = STUDIES_AFTER.format("?")
    for rows in study_copy_batches(lambda after: conn.execute(query, (after,)).fetchall()):
        conn.executemany("INSERT OR REPLACE INTO identifiers (resource_id, tag, norm) VALUES (?, ?, ?)", rows)


class SQLiteIndex:
    """The default index. `path` is the database file (created with its schema if missing)."""

    shared = False  # one process owns the file: in-process caches of index rows stay valid

    def __init__(self, path: str, synchronous: bool = True):
        self.path = path
        self.synchronous = synchronous
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        self._local = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer_conn = self._connect(writer=True)
        self._migrate(self._writer_conn)
        self._writer = SQLiteWriter(self._writer_conn)
        self._sync_mode = ""
        self._committer: GroupCommitter[SQLiteWriter] = GroupCommitter(self._run_batch)
        self._closed = False
        # Commits so far: a row read from a reader when this was N is current while it stays N (the
        # count moves after each commit; core/metadata.py's `MetadataReads`).
        self.commits = 0

    # -- connections ------------------------------------------------------------------------------
    def _connect(self, writer: bool) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   cached_statements=512, timeout=30)
        except sqlite3.Error as e:
            raise OrthancError(ErrorCode.DATABASE, f"Cannot open the index {self.path}: {e}") from None
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA temp_store = MEMORY")
        if writer:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                log.warning("SQLite index is not in WAL mode (%s)", mode)
            conn.execute(f"PRAGMA cache_size = -{_WRITER_CACHE_KB}")
            # Checkpoints run as the writer: under a continuous stream of writes, only a checkpoint
            # holding the writer completes and lets the WAL be reset (a background checkpointer let
            # it grow to 100 MB for 2 MB of data): the commit past 1,000 pages, or the index-sync
            # thread (`take_over_checkpoints`). The WAL file is cut back to 16 MB after a reset.
            conn.execute(f"PRAGMA wal_autocheckpoint = {_AUTOCHECKPOINT_PAGES}")
            conn.execute("PRAGMA journal_size_limit = 16777216")
        else:
            conn.execute(f"PRAGMA cache_size = -{_READER_CACHE_KB}")
            conn.execute("PRAGMA query_only = ON")
        return conn

    def _reader_conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE, "The index is closed")
            conn = self._connect(writer=False)
            self._local.conn = conn
            with self._readers_lock:
                self._all_readers.append(conn)
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise OrthancError(ErrorCode.INCOMPATIBLE_DATABASE_VERSION,
                               f"The index {self.path} has schema version {version}, newer than this Donjon "
                               f"({SCHEMA_VERSION})")
        if version == 0:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            if tables:
                raise OrthancError(ErrorCode.INCOMPATIBLE_DATABASE_VERSION,
                                   f"{self.path} is not a Donjon index (an Orthanc index cannot be opened)")
            schema = pkg_resources.files("donjon.index").joinpath("schema_sqlite.sql").read_text()
            _in_one_transaction(conn, SCHEMA_VERSION, tuple(_split_sql(schema)))
            return
        if version < 2:  # a covering index for listings (GET /patients: 6 µs a row without it at 20,000)
            self._upgrade(conn, 2, "one new index", (
                "CREATE INDEX IF NOT EXISTS resources_level_ids ON resources(level, id, public_id)",
                "DROP INDEX IF EXISTS resources_level"))
        if version < 3:  # the children of resources without reading their rows (`?expand`: 4.2 -> 2.2 ms)
            self._upgrade(conn, 3, "one index replaced", (
                "CREATE INDEX IF NOT EXISTS resources_parent_ids ON resources(parent_id, id, public_id)",
                "DROP INDEX IF EXISTS resources_parent"))
        if version < 4:  # the studies' own copies of their patient identifiers (index/identifiers.py)
            log.warning("Upgrading the index %s to schema version 4 (identifiers of patients copied on "
                        "their studies)", self.path)
            _in_one_transaction(conn, 4, (), lambda: _add_study_copies(conn))
        # further migrations: `if version < 5: ...` each in its own transaction

    def _upgrade(self, conn: sqlite3.Connection, version: int, what: str, statements: tuple[str, ...]) -> None:
        log.warning("Upgrading the index %s to schema version %d (%s)", self.path, version, what)
        _in_one_transaction(conn, version, statements)

    # -- public API -------------------------------------------------------------------------------
    def reader(self) -> SQLiteReader:
        """This thread's reader, outside any transaction: for reads of one statement."""
        reader = getattr(self._local, "reader", None)
        if reader is None:
            reader = SQLiteReader(self._reader_conn())
            self._local.reader = reader
        return reader

    def read(self, fn: Callable[[SQLiteReader], T], snapshot: bool = True) -> T:
        """Run `fn` in a read transaction (one consistent snapshot for several statements; always,
        since a transaction costs nothing here)."""
        reader = self.reader()
        conn = reader.conn
        conn.execute("BEGIN")
        try:
            return fn(reader)
        finally:
            conn.execute("COMMIT")

    def write(self, fn: Callable[[SQLiteWriter], T], durable: bool = True) -> T:
        """Run `fn` in a write transaction; returns once committed (fsynced when `durable`)."""
        if self._committer.in_batch():
            return fn(self._writer)  # a write nested in a write function joins its transaction
        if self._closed:
            raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE, "The index is closed")
        if getattr(self._local, "if_idle", False):
            ran, value = self._committer.execute_if_idle(fn, durable)
            if not ran:
                raise WriterBusy()
            return value  # type: ignore[return-value]
        return self._committer.execute(fn, durable)

    def write_many_if_idle(self, fns: list[Callable[[SQLiteWriter], Any]],
                           durable: bool = True) -> list[WriteRequest[SQLiteWriter]] | None:
        """Several writes in one transaction, run at once in this thread when the writer is idle
        (else None, without waiting): an event loop's stores share their commit (core/store_on_loop.py).
        Each request holds its own outcome: one failing rolls back only itself."""
        if self._closed:
            raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE, "The index is closed")
        return self._committer.execute_many_if_idle(fns, durable)

    def take_over_checkpoints(self) -> None:
        """From now on the caller runs the checkpoints (`checkpoint`, from its own thread): a commit
        runs one only past a safety limit. A checkpoint copies ~1,000 pages into the database and
        fsyncs it twice; run by the commit that crosses the limit, it lands on whichever thread
        commits, the event loop most often (core/store_on_loop.py)."""
        with self._committer.exclusive():
            self._writer_conn.execute(f"PRAGMA wal_autocheckpoint = {_SAFETY_CHECKPOINT_PAGES}")

    def checkpoint(self, min_pages: int = 0) -> bool:
        """Copy the WAL into the database when `min_pages` or more wait to be copied, holding the writer: a
        checkpoint beside a stream of commits never completes, and only a complete one lets the
        next commit start the WAL again (a background checkpointer let it grow to 100 MB)."""
        if self.wal_frames_to_copy() < min_pages:
            return False
        with self._committer.exclusive():
            if self._closed:
                return False
            self._writer_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return True

    def wal_frames_to_copy(self) -> int:
        """Frames in the WAL not yet copied into the database, read from the WAL-index (the `-shm`
        file: `mxFrame` in its header, `nBackfill` after the header's two copies; SQLite's documented
        format, in the machine's byte order). The WAL file itself keeps its size once grown."""
        try:
            with open(self.path + "-shm", "rb") as shm:
                head = shm.read(100)
        except OSError:
            return 0
        if len(head) < 100:
            return 0
        last_frame, copied = struct.unpack_from("=I", head, 16)[0], struct.unpack_from("=I", head, 96)[0]
        return max(last_frame - copied, 0)

    @contextmanager
    def writes_if_idle(self) -> Iterator[None]:
        """Within this block, a write of this thread runs at once if the writer is idle, else raises
        `WriterBusy` without waiting: an event loop runs a short write itself, sparing the hand-off to
        a worker thread (two thread switches, more than the write), and never waits behind a batch."""
        self._local.if_idle = True
        try:
            yield
        finally:
            self._local.if_idle = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._committer.execute(lambda tx: None, True)  # wait for a running batch to finish
        with self._readers_lock:
            for conn in self._all_readers:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all_readers.clear()
        try:
            self._writer_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass
        self._writer_conn.close()

    # -- batches ----------------------------------------------------------------------------------
    def _set_sync(self, durable: bool) -> None:
        mode = "FULL" if durable and self.synchronous else "NORMAL"
        if mode != self._sync_mode:
            self._writer_conn.execute(f"PRAGMA synchronous = {mode}")
            self._sync_mode = mode

    def _run_batch(self, batch: list[WriteRequest[SQLiteWriter]]) -> None:
        conn = self._writer_conn
        writer = self._writer
        try:
            self._set_sync(any(r.durable for r in batch))
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            err = OrthancError(ErrorCode.DATABASE, str(e))
            for req in batch:
                req.fail(err)
            return
        actions: list[Callable[[], None]] = []
        results: list[tuple[WriteRequest[SQLiteWriter], Any, BaseException | None]] = []
        alone = len(batch) == 1  # a failure rolls the whole transaction back: no savepoint needed
        for req in batch:
            writer._after_commit = []
            if not alone:
                conn.execute("SAVEPOINT item")
            try:
                value = req.fn(writer)
                if not alone:
                    conn.execute("RELEASE item")
                results.append((req, value, None))
                actions.extend(writer._after_commit)
            except BaseException as e:
                try:
                    if alone:
                        conn.execute("ROLLBACK")
                    else:
                        conn.execute("ROLLBACK TO item")
                        conn.execute("RELEASE item")
                except sqlite3.Error:
                    pass
                if isinstance(e, sqlite3.Error):
                    e = OrthancError(ErrorCode.DATABASE, str(e))
                if alone:
                    req.fail(e)
                    return
                results.append((req, None, e))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            err = OrthancError(ErrorCode.DATABASE, f"Cannot commit the index transaction: {e}")
            for req, _, _ in results:
                req.fail(err)
            return
        self.commits += 1
        for action in actions:
            try:
                action()
            except Exception:  # post-commit clean-up must never break the writer
                log.exception("post-commit action failed")
        for req, value, error in results:
            if error is None:
                req.succeed(value)
            else:
                req.fail(error)


def _split_sql(script: str) -> list[str]:
    """Split a schema script into statements (triggers contain inner semicolons)."""
    statements: list[str] = []
    current: list[str] = []
    in_trigger = False
    for line in script.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        current.append(line)
        if stripped.upper().startswith("CREATE TRIGGER"):
            in_trigger = True
        if in_trigger:
            if stripped.upper() == "END;":
                statements.append("\n".join(current))
                current = []
                in_trigger = False
        elif stripped.endswith(";"):
            statements.append("\n".join(current))
            current = []
    if current:
        statements.append("\n".join(current))
    return statements
