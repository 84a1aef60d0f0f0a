"""The PostgreSQL index: a psycopg 3 connection pool, one database transaction per write, retries.

Every write runs in its own pooled connection and transaction (READ COMMITTED), in psycopg's pipeline
mode: PostgreSQL commits concurrent transactions together by itself, so there is no group committer
here, and a statement whose result is not needed costs no round trip. A write that meets
another writer (deadlock, serialization failure, a row created or deleted meanwhile) is rolled back
and run again, up to `_WRITE_ATTEMPTS` times; write functions only act on their transaction, so this
is safe. Statements are prepared by psycopg once a connection has run them a few times.

`Lock` (default true): the process holds an exclusive advisory lock for its lifetime, so a second
Donjon (or a misconfigured one) cannot open the database. With `Lock: false` every process holds the
shared form of that lock, `shared` is true and the core coordinates through the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from importlib import resources as pkg_resources
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import PGresult, TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import ErrorCode, OrthancError
from . import postgres_fast as fast
from .identifiers import STUDIES_AFTER, study_copy_batches
from .postgres_find import strip_nul
from .postgres_jobs import PgJobStore
from .postgres_queries import PgReader, PgWriter
from .postgres_settings import PostgresSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA_VERSION = 2
_INSTANCE_LOCK = 0x446F6E6A6F6E00  # advisory lock of the database: exclusive with Lock, else shared
_SCHEMA_LOCK = 0x446F6E6A6F6E02
_WRITE_ATTEMPTS = 12
_RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.UniqueViolation,
              pg_errors.ForeignKeyViolation, pg_errors.LockNotAvailable, pg_errors.InvalidSqlStatementName)


def _drop_if_stale(conn: psycopg.Connection[Any], error: BaseException) -> bool:
    """True (and the connection closed, so that the pool replaces it) when psycopg's cache of prepared
    statements no longer matches the server's: seen rarely after a conflict aborted a pipelined
    transaction under concurrent writers. The statement can simply be run again on a fresh connection."""
    if isinstance(error, pg_errors.InvalidSqlStatementName):
        log.debug("stale prepared statement (%s): connection replaced", error)
        conn.close()
        return True
    return False


def _database_error(e: BaseException) -> OrthancError:
    if isinstance(e, OrthancError):
        return e
    if isinstance(e, (psycopg.OperationalError, PoolTimeout)):
        return OrthancError(ErrorCode.DATABASE_UNAVAILABLE, f"PostgreSQL: {e}")
    return OrthancError(ErrorCode.DATABASE, f"PostgreSQL: {e}")


def add_study_copies(conn: psycopg.Connection[Any]) -> None:
    """Each study's copy of its patient identifiers (index/identifiers.py), in the caller's transaction."""
    query = STUDIES_AFTER.format("%s")
    for rows in study_copy_batches(lambda after: conn.execute(query, (after,)).fetchall()):
        if rows:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO identifiers (resource_id, tag, norm) VALUES (%s, %s, %s) ON CONFLICT "
                                "(resource_id, tag) DO UPDATE SET norm = excluded.norm",
                                [(rid, tag, strip_nul(norm)) for rid, tag, norm in rows])


class _MostRecentFirstPool(ConnectionPool[psycopg.Connection[Any]]):
    """psycopg_pool hands its idle connections out in turn (first in, first out): after a burst of
    concurrent stores had grown the pool, each later request met a connection whose PostgreSQL
    process, caches and prepared statements were cold (`/tools/find` repeated 10 times after a
    4-client ingest: 1.09 ms against 0.73 ms). Handing out the connection returned last keeps the
    few that a sequential client needs hot; the others only serve bursts."""

    def _add_to_pool(self, conn: psycopg.Connection[Any]) -> None:
        super()._add_to_pool(conn)
        lock, idle = getattr(self, "_lock", None), getattr(self, "_pool", None)
        if lock is None or idle is None:  # another psycopg_pool than 3.x: its own order, still correct
            return
        with lock:  # (psycopg_pool 3.x takes idle connections from the left of `_pool`)
            if idle and idle[-1] is conn:
                idle.rotate(1)


class _PooledReader:
    """`index.reader()`: each method borrows a connection for one statement (autocommit)."""

    def __init__(self, index: PostgresIndex):
        self._index = index

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(PgReader, name)
        index = self._index

        def call(*args: Any, **kwargs: Any) -> Any:
            current = getattr(index._local, "tx", None)
            if current is not None:  # inside a read or a write of this thread: same connection
                return method(current, *args, **kwargs)
            for attempt in range(2):
                try:
                    with index.pool.connection() as conn:
                        reader = PgReader(conn)
                        reader.fast = True  # one statement in autocommit: libpq directly may serve it
                        try:
                            return method(reader, *args, **kwargs)
                        except psycopg.Error as e:
                            if attempt == 0 and _drop_if_stale(conn, e):
                                continue
                            raise
                except (psycopg.Error, PoolTimeout) as e:
                    raise _database_error(e) from None
            raise AssertionError("unreachable")
        return call


class PostgresIndex:
    """The index in a PostgreSQL database (created with its schema if empty)."""

    pipeline = True  # psycopg's pipeline mode for transactions (False: one round trip per statement)

    def __init__(self, settings: PostgresSettings):
        self.settings = settings
        self.shared = not settings.lock
        self._local = threading.local()
        self._closed = False
        self._lock_conn = self._connect_with_retries()
        try:
            self._take_instance_lock()
            self._migrate()
            self.pool: ConnectionPool[psycopg.Connection[Any]] = _MostRecentFirstPool(
                settings.conninfo(), min_size=min(2, settings.connections), max_size=settings.connections,
                kwargs={"autocommit": True, "prepare_threshold": 2}, name="donjon-index", open=True, timeout=60)
        except BaseException:
            self._lock_conn.close()
            raise
        self._reader = _PooledReader(self)
        self.jobs_store = PgJobStore(self)
        if settings.enable_storage:
            log.warning('"PostgreSQL.EnableStorage" is ignored: the DICOM files stay in the storage area')
        log.warning("The index is in PostgreSQL (%s), %s", settings.describe(),
                    "shared with other processes" if self.shared else "locked by this process")

    # -- start-up -----------------------------------------------------------------------------------
    def _connect_with_retries(self) -> psycopg.Connection[Any]:
        s = self.settings
        attempts = max(s.max_retries, 0) + 1
        for attempt in range(attempts):
            try:
                return psycopg.connect(s.conninfo(), autocommit=True)
            except psycopg.OperationalError as e:
                reason = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
                if attempt + 1 >= attempts:
                    raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE,
                                       f"Cannot connect to PostgreSQL at {s.describe()}: {reason}") from None
                log.warning("Cannot connect to PostgreSQL at %s (%s), retrying in %d s (%d/%d)",
                            s.describe(), reason, s.retry_interval, attempt + 1, s.max_retries)
                time.sleep(s.retry_interval)
        raise AssertionError("unreachable")

    def _take_instance_lock(self) -> None:
        fn = "pg_try_advisory_lock" if self.settings.lock else "pg_try_advisory_lock_shared"
        row = self._lock_conn.execute(f"SELECT {fn}(%s)", (_INSTANCE_LOCK,)).fetchone()  # type: ignore[arg-type]
        if not row or not row[0]:
            self._lock_conn.close()
            if self.settings.lock:
                detail = "The PostgreSQL database is locked by another instance of Donjon"
            else:
                detail = ("The PostgreSQL database is locked by an instance of Donjon running with "
                          '"Lock": true')
            raise OrthancError(ErrorCode.DATABASE, detail)

    def _migrate(self) -> None:
        conn = self._lock_conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            exists = conn.execute("SELECT to_regclass('donjon_schema') IS NOT NULL").fetchone()
            if exists and exists[0]:
                row = conn.execute("SELECT max(version) FROM donjon_schema").fetchone()
                version = int(row[0]) if row and row[0] is not None else 0
                if version > SCHEMA_VERSION:
                    raise OrthancError(ErrorCode.INCOMPATIBLE_DATABASE_VERSION,
                                       f"The PostgreSQL index has schema version {version}, newer than this "
                                       f"Donjon ({SCHEMA_VERSION})")
                if version < 2:  # the studies' own copies of their patient identifiers
                    log.warning("Upgrading the PostgreSQL index to schema version 2 (identifiers of patients "
                                "copied on their studies)")
                    add_study_copies(conn)
                    conn.execute("UPDATE donjon_schema SET version = 2")
                # further migrations: `if version < 3: ...; UPDATE donjon_schema SET version = 3`
                self._create_functions(conn)
                return
            other = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                                 "current_schema()").fetchone()
            if other and other[0]:
                raise OrthancError(ErrorCode.INCOMPATIBLE_DATABASE_VERSION,
                                   f"The PostgreSQL database {self.settings.describe()} is not empty and is not a "
                                   "Donjon index (an Orthanc index cannot be opened)")
            schema = pkg_resources.files("donjon.index").joinpath("schema_postgres.sql").read_text()
            conn.execute(schema)  # type: ignore[arg-type] - no parameters: run as one script
            conn.execute("INSERT INTO donjon_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            log.warning("Created the PostgreSQL index (schema version %d)", SCHEMA_VERSION)
            self._create_functions(conn)

    @staticmethod
    def _create_functions(conn: psycopg.Connection[Any]) -> None:
        """The server-side functions, replaced at each start (inside `_migrate`'s lock and transaction)."""
        conn.execute(pkg_resources.files("donjon.index").joinpath("store_postgres.sql").read_text())  # type: ignore[arg-type]

    # -- public API -------------------------------------------------------------------------------
    def reader(self) -> PgReader:
        """For reads of one statement, outside any transaction (each call borrows a connection)."""
        return self._reader  # type: ignore[return-value]

    def read(self, fn: Callable[[PgReader], T], snapshot: bool = True) -> T:
        """Run `fn` on one snapshot (a REPEATABLE READ, read-only transaction); with `snapshot`
        false, its statements run in autocommit: two round trips less (BEGIN, COMMIT: ~0.2 ms of a
        0.7 ms `/tools/find`), and libpq directly may serve the hottest ones."""
        current = getattr(self._local, "tx", None)
        if current is not None:
            return fn(current)
        if self._closed:
            raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE, "The index is closed")
        for attempt in range(2):
            try:
                with self.pool.connection() as conn:
                    reader = PgReader(conn)
                    self._local.tx = reader
                    try:  # (pipeline mode measured slower here: reads wait for each answer anyway)
                        if not snapshot:
                            reader.fast = True
                            return fn(reader)
                        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        value = fn(reader)
                        conn.execute("COMMIT")
                        return value
                    except psycopg.Error as e:
                        if attempt == 0 and _drop_if_stale(conn, e):
                            continue
                        raise
                    finally:
                        self._local.tx = None
                        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                            conn.execute("ROLLBACK")
            except (psycopg.Error, PoolTimeout) as e:
                raise _database_error(e) from None
        raise AssertionError("unreachable")

    def write(self, fn: Callable[[PgWriter], T], durable: bool = True) -> T:
        """Run `fn` in a write transaction; returns once committed. Retried on conflicts."""
        current = getattr(self._local, "tx", None)
        if isinstance(current, PgWriter):
            return fn(current)  # a write nested in a write joins its transaction
        return self._with_retries(lambda: self._write_once(fn, durable))

    def write_statement(self, statement: fast.Statement, params: Sequence[bytes | None]) -> PGresult:
        """One prepared statement that is a whole write transaction by itself (autocommit, one round
        trip, through libpq directly: postgres_fast.py). Retried on conflicts like `write`."""
        if isinstance(getattr(self._local, "tx", None), PgWriter):
            raise RuntimeError("write_statement inside a write transaction")
        return self._with_retries(lambda: (self._statement_once(statement, params), []))

    def store_new_instance(self, *args: Any) -> tuple[list[int], list[bool]] | None:
        """A common store in one statement (postgres_store.py); used by `core/store.py`."""
        from .postgres_store import store_new_instance

        return store_new_instance(self, *args)

    def _with_retries(self, attempt_once: Callable[[], tuple[T, list[Callable[[], None]]]]) -> T:
        if self._closed:
            raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE, "The index is closed")
        delay = 0.002
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                value, actions = attempt_once()
            except _RETRYABLE as e:
                if attempt + 1 >= _WRITE_ATTEMPTS:
                    raise _database_error(e) from None
                log.debug("write conflict (%s), retrying", type(e).__name__)
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            except psycopg.OperationalError as e:
                # a broken connection (server restart): the pool replaces it; one more try
                if attempt + 1 >= 2:
                    raise _database_error(e) from None
                continue
            except (psycopg.Error, PoolTimeout) as e:
                raise _database_error(e) from None
            for action in actions:
                try:
                    action()
                except Exception:
                    log.exception("post-commit action failed")
            return value
        raise AssertionError("unreachable")

    def _statement_once(self, statement: fast.Statement, params: Sequence[bytes | None]) -> PGresult:
        with self.pool.connection() as conn:
            try:
                return fast.execute(conn, statement, params)
            except BaseException as e:
                _drop_if_stale(conn, e)
                raise

    def _write_once(self, fn: Callable[[PgWriter], T], durable: bool) -> tuple[T, list[Callable[[], None]]]:
        with self.pool.connection() as conn:
            writer = PgWriter(conn)
            self._local.tx = writer
            try:
                # pipeline mode: statements whose result is not read cost no round trip; an error is
                # raised at the next read or at the end of the block
                with conn.pipeline() if self.pipeline else nullcontext():
                    conn.execute("BEGIN")
                    if not durable:
                        conn.execute("SET LOCAL synchronous_commit = off")
                    value = fn(writer)
                    writer.flush()
                    commit = conn.execute("COMMIT")
                if commit.statusmessage != "COMMIT":
                    # a statement failed and the function went on: the server rolled back instead
                    raise OrthancError(ErrorCode.DATABASE, "PostgreSQL: the transaction was aborted")
            except BaseException as e:
                if not _drop_if_stale(conn, e) and not conn.closed \
                        and conn.info.transaction_status != TransactionStatus.IDLE:
                    try:
                        conn.execute("ROLLBACK")
                    except psycopg.Error:
                        pass
                raise
            finally:
                self._local.tx = None
        return value, writer._after_commit

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.pool.close(timeout=10)
        finally:
            try:
                self._lock_conn.close()  # releases the advisory lock
            except psycopg.Error:
                pass
