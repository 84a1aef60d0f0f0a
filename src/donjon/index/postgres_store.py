"""The arguments of `donjon_store_instance` (store_postgres.sql): a common store in one statement.

Through the general path (`core/store.py` `_index` over `PgWriter`) a store is five or six
statements in a pipelined transaction; psycopg's cost per statement, not PostgreSQL's, made the
PostgreSQL index ingest at half the rate of the SQLite one (docs/postgresql.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .postgres_queries import strip_nul
from .protocol import FileInfo

if TYPE_CHECKING:
    from .postgres import PostgresIndex

_CALL = ("SELECT o_ids, o_created FROM donjon_store_instance(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
         "%s, %s, %s, %s, %s, %s, %s, %s)")


def store_new_instance(index: PostgresIndex, public: Sequence[str], tags: Sequence[bytes], patient_tags: bytes,
                       identifiers: Sequence[tuple[int, int, str]], metadata: Sequence[tuple[int, int, str, bool]],
                       files: Sequence[FileInfo], changes: Sequence[int], date: str,
                       durable: bool) -> tuple[list[int], list[bool]] | None:
    """Index a new instance in one round trip: (internal ids, created flags), patient first; None
    when the instance is already indexed. `identifiers` are (level, tag, normalised value),
    `metadata` (level, type, value, only for a resource this store creates), `changes` the
    change type of a new resource per level."""
    params: list[Any] = [
        list(public), list(tags), patient_tags,
        [i[0] for i in identifiers], [i[1] for i in identifiers], [strip_nul(i[2]) for i in identifiers],
        [m[0] for m in metadata], [m[1] for m in metadata], [m[2].encode() for m in metadata],
        [m[3] for m in metadata],
        [f.content_type for f in files], [f.uuid for f in files], [f.compressed_size for f in files],
        [f.uncompressed_size for f in files], [f.compression for f in files],
        [f.uncompressed_md5 for f in files], [f.compressed_md5 for f in files],
        list(changes), date, durable,
    ]
    row = index.write_statement(_CALL, params)
    if row is None or row[0] is None:
        return None
    return [int(i) for i in row[0]], list(row[1])
