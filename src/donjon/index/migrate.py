"""`donjon migrate-index CONFIG...`: copy a SQLite index into the PostgreSQL index of CONFIG.

The files of the storage area are not touched: the PostgreSQL index points at the same files. Rows
keep their ids and sequence numbers (changes, exports), so `/changes?since=N` goes on where it was.
The copy runs in batches, each in one PostgreSQL transaction that also records how far it went
(table `migration_progress`): an interrupted migration resumes where it stopped when run again.
The SQLite index must not be in use (its server stopped); the PostgreSQL database must be empty or
hold an unfinished migration, and is locked against servers while the copy runs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ..errors import ErrorCode, OrthancError
from ..registry import ConfigurationError
from .identifiers import study_copies
from .postgres_find import strip_nul

log = logging.getLogger(__name__)

USAGE = """Usage: donjon migrate-index [--from=SQLITE_FILE] [--batch=N] CONFIGURATION...
Copy the SQLite index of a Donjon (IndexDirectory, else StorageDirectory, of CONFIGURATION; or
SQLITE_FILE) into the PostgreSQL index that CONFIGURATION enables ("PostgreSQL": {"EnableIndex": true}).
Stop the server first. Interrupted, the command resumes where it stopped when run again.
"""

_TABLES: dict[str, tuple[str, ...]] = {
    "identifiers": ("resource_id", "tag", "norm"),
    "metadata": ("resource_id", "type", "value", "revision"),
    "attachments": ("resource_id", "type", "uuid", "compressed_size", "uncompressed_size", "compression",
                    "uncompressed_md5", "compressed_md5", "revision"),
    "labels": ("resource_id", "label"),
}
_RESOURCE_COLUMNS = ("id", "level", "public_id", "parent_id", "tags", "patient_tags", "protected")
_CHANGE_COLUMNS = ("seq", "type", "resource_id", "level", "date")
_EXPORT_COLUMNS = ("seq", "level", "public_id", "remote_modality", "date", "patient_id", "study_uid",
                   "series_uid", "sop_uid")


class Progress:
    """A one-line progress bar on a terminal; a line every 10% otherwise."""

    def __init__(self, total: int, out: TextIO | None = None):
        self.total = max(total, 1)
        self.done = 0
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._last_tenth = -1
        self._started = time.monotonic()

    def advance(self, count: int, what: str) -> None:
        self.done = min(self.done + count, self.total)
        fraction = self.done / self.total
        if self.tty:
            width = 30
            filled = int(width * fraction)
            rate = self.done / max(time.monotonic() - self._started, 1e-6)
            self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}% "
                           f"{self.done}/{self.total} rows ({what}, {rate:.0f} rows/s) ")
            self.out.flush()
        elif int(fraction * 10) != self._last_tenth:
            self._last_tenth = int(fraction * 10)
            self.out.write(f"{fraction * 100:.0f}% ({self.done}/{self.total} rows, {what})\n")
            self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def _copy(conn: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _position(conn: Any, step: str) -> int:
    row = conn.execute("SELECT position FROM migration_progress WHERE step = %s", (step,)).fetchone()
    return int(row[0]) if row else -1


def _set_position(conn: Any, step: str, position: int) -> None:
    conn.execute("INSERT INTO migration_progress (step, position) VALUES (%s, %s) ON CONFLICT (step) "
                 "DO UPDATE SET position = excluded.position", (step, position))


class Migration:
    def __init__(self, source: sqlite3.Connection, pool: Any, batch: int, progress: Progress | None = None,
                 add_study_copies: bool = False):
        self.src = source
        self.add_study_copies = add_study_copies  # a source older than version 4 lacks them
        self.pool = pool
        self.batch = batch
        self.progress = progress

    def _advance(self, count: int, what: str) -> None:
        if self.progress is not None:
            self.progress.advance(count, what)

    def check_target(self) -> bool:
        """False when the migration was already finished; raises when the target holds other data."""
        with self.pool.connection() as conn:
            if _position(conn, "finished") >= 0:
                return False
            started = conn.execute("SELECT count(*) FROM migration_progress").fetchone()[0]
            has_rows = conn.execute("SELECT EXISTS (SELECT 1 FROM resources)").fetchone()[0]
            if has_rows and not started:
                raise OrthancError(ErrorCode.DATABASE, "The PostgreSQL index already holds resources that do not come from an "
                                       "unfinished migration: refusing to mix two indexes")
        return True

    def remaining(self) -> int:
        """Rows still to copy (a resumed migration starts where the previous one stopped)."""
        n = 0
        with self.pool.connection() as conn:
            positions = {t: _position(conn, t) for t in ("resources", "changes", "exports")}
        for table, key in (("resources", "id"), ("changes", "seq"), ("exports", "seq")):
            n += self.src.execute(f"SELECT count(*) FROM {table} WHERE {key} > ?", (positions[table],)).fetchone()[0]
        return int(n)

    def run(self) -> None:
        self._resources()
        self._sequenced("changes", _CHANGE_COLUMNS)
        self._sequenced("exports", _EXPORT_COLUMNS)
        self._finish()

    def _in_transaction(self, fn: Callable[[Any], None]) -> None:
        with self.pool.connection() as conn, conn.transaction():
            fn(conn)

    def _resources(self) -> None:
        while True:
            with self.pool.connection() as conn:
                after = _position(conn, "resources")
            rows = self.src.execute(
                f"SELECT {', '.join(_RESOURCE_COLUMNS)} FROM resources WHERE id > ? ORDER BY id LIMIT ?",
                (after, self.batch)).fetchall()
            if not rows:
                return
            low, high = rows[0][0], rows[-1][0]
            resources = [(*r[:6], bool(r[6])) for r in rows]

            def copy(conn: Any, resources: list[Any] = resources, low: int = low, high: int = high) -> None:
                _copy(conn, "resources", _RESOURCE_COLUMNS, resources)
                for table, columns in _TABLES.items():
                    part = self.src.execute(f"SELECT {', '.join(columns)} FROM {table} "
                                            "WHERE resource_id BETWEEN ? AND ?", (low, high)).fetchall()
                    if table == "metadata":  # bytea in PostgreSQL (text there cannot hold NUL)
                        part = [(r, t, v.encode(), rev) for r, t, v, rev in part]
                    elif table == "identifiers":
                        part = [(r, t, strip_nul(n)) for r, t, n in part]
                        if self.add_study_copies:
                            part += [(r[0], t, strip_nul(n)) for r in resources if r[1] == 2
                                     for t, n in study_copies(r[5])]
                    _copy(conn, table, columns, part)
                _set_position(conn, "resources", high)
            self._in_transaction(copy)
            self._advance(len(rows), "resources")

    def _sequenced(self, table: str, columns: tuple[str, ...]) -> None:
        while True:
            with self.pool.connection() as conn:
                after = _position(conn, table)
            rows = self.src.execute(f"SELECT {', '.join(columns)} FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?",
                                    (after, self.batch)).fetchall()
            if not rows:
                return

            def copy(conn: Any, rows: list[Any] = rows) -> None:
                _copy(conn, table, columns, [tuple(strip_nul(v) if isinstance(v, str) else v for v in r) for r in rows])
                _set_position(conn, table, rows[-1][0])
            self._in_transaction(copy)
            self._advance(len(rows), table)

    def _finish(self) -> None:
        src = self.src
        properties = src.execute("SELECT key, value FROM global_properties").fetchall()
        recycling = src.execute("SELECT seq, patient_id FROM recycling ORDER BY seq").fetchall()
        sequences = dict(src.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
        max_id = src.execute("SELECT coalesce(max(id), 0) FROM resources").fetchone()[0]

        def finish(conn: Any) -> None:
            for key, value in properties:
                conn.execute("INSERT INTO global_properties (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                             "DO UPDATE SET value = excluded.value", (key, value))
            conn.execute("DELETE FROM recycling")
            _copy(conn, "recycling", ("seq", "patient_id"), recycling)
            for name, value in (("resources_id_seq", max_id), ("changes_seq", sequences.get("changes", 0)),
                                ("exports_seq", sequences.get("exports", 0)),
                                ("recycling_seq", sequences.get("recycling", 0))):
                if value:
                    conn.execute("SELECT setval(%s, %s)", (name, int(value)))
            _set_position(conn, "finished", 1)
        self._in_transaction(finish)


def _parse(args: list[str]) -> tuple[list[str], str | None, int] | int:
    paths: list[str] = []
    source: str | None = None
    batch = 1000
    for arg in args:
        if arg in ("--help", "-h"):
            print(USAGE, end="")
            return 0
        if arg.startswith("--from="):
            source = arg[len("--from="):]
        elif arg.startswith("--batch="):
            try:
                batch = max(int(arg[len("--batch="):]), 1)
            except ValueError:
                print(f"Bad batch size: {arg}", file=sys.stderr)
                return -1
        elif arg.startswith("-"):
            print(f"Unknown option: {arg}\n{USAGE}", file=sys.stderr, end="")
            return -1
        else:
            paths.append(arg)
    return paths, source, batch


def main(args: list[str]) -> int:
    parsed = _parse(args)
    if isinstance(parsed, int):
        return parsed
    paths, source, batch = parsed
    from ..config import Configuration
    from .factory import postgres_settings, sqlite_path

    try:
        config = Configuration.load(paths)
        settings = postgres_settings(config)
    except ConfigurationError as e:
        print(f"donjon migrate-index: {e}", file=sys.stderr)
        return -1
    if not settings.enable_index:
        print('donjon migrate-index: the configuration does not enable the PostgreSQL index '
              '("PostgreSQL": {"EnableIndex": true, ...})', file=sys.stderr)
        return -1
    path = source or sqlite_path(config)
    if not os.path.isfile(path):
        print(f"donjon migrate-index: no SQLite index at {path}", file=sys.stderr)
        return -1
    try:
        return _migrate(path, dataclasses.replace(settings, lock=True), batch)
    except OrthancError as e:
        print(f"donjon migrate-index: {e.details or e.description}", file=sys.stderr)
        return -1


def _migrate(path: str, settings: Any, batch: int) -> int:
    from ..core.index_lock import IndexLock
    from .postgres import PostgresIndex

    lock = IndexLock(os.path.dirname(os.path.abspath(path)))  # refuses while a server uses the index
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        version = src.execute("PRAGMA user_version").fetchone()[0]
        if version not in (1, 2, 3, 4):  # (2 and 3 only change indexes, 4 adds identifier rows)
            print(f"donjon migrate-index: {path} is not a Donjon SQLite index of schema version 1 to 4",
                  file=sys.stderr)
            return -1
        index = PostgresIndex(settings)  # creates the schema; exclusive lock: no server may run meanwhile
        try:
            migration = Migration(src, index.pool, batch, add_study_copies=version < 4)
            if not migration.check_target():
                print(f"The index was already migrated to {settings.describe()}", file=sys.stderr)
                return 0
            progress = Progress(migration.remaining())
            migration.progress = progress
            started = time.monotonic()
            migration.run()
            progress.finish()
            counters = index.reader().counters()
            print(f"Migrated {path} to PostgreSQL ({settings.describe()}) in {time.monotonic() - started:.1f} s: "
                  f"{counters.get('level1', 0)} patients, {counters.get('level2', 0)} studies, "
                  f"{counters.get('level3', 0)} series, {counters.get('level4', 0)} instances", file=sys.stderr)
            return 0
        finally:
            index.close()
            src.close()
    finally:
        lock.release()
