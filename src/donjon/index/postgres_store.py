"""The arguments of `donjon_store_instance` (store_postgres.sql): a common store in one statement.

Through the general path (`core/store.py` `_index` over `PgWriter`) a store is five or six
statements in a pipelined transaction; psycopg's cost per statement, not PostgreSQL's, made the
PostgreSQL index ingest at half the rate of the SQLite one (docs/postgresql.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

from . import postgres_fast as fast
from .postgres_find import strip_nul
from .protocol import FileInfo

if TYPE_CHECKING:
    from .postgres import PostgresIndex

_CALL = fast.Statement("store_instance", "SELECT o_ids, o_created FROM donjon_store_instance($1::text[], "
                       "$2::bytea[], $3::bytea, $4::jsonb, $5::text, $6::boolean)")


def store_new_instance(index: PostgresIndex, public: Sequence[str], tags: Sequence[bytes], patient_tags: bytes,
                       identifiers: Sequence[tuple[int, int, str]], metadata: Sequence[tuple[int, int, str, bool]],
                       files: Sequence[FileInfo], changes: Sequence[int], date: str,
                       durable: bool) -> tuple[list[int], list[bool]] | None:
    """Index a new instance in one round trip: (internal ids, created flags), patient first; None
    when the instance is already indexed, or when a value cannot travel as JSON (the general path
    then does the work). `identifiers` are (level, tag, normalised value), `metadata` (level, type,
    value, only for a resource this store creates), `changes` the change type of a new resource per
    level."""
    if any("\x00" in m[2] for m in metadata):
        return None  # JSON text in PostgreSQL cannot hold NUL: the general path stores it as bytes
    try:
        rows = orjson.dumps({
            "i": [(level, tag, strip_nul(norm)) for level, tag, norm in identifiers],
            "m": metadata,
            "a": [(f.content_type, f.uuid, f.compressed_size, f.uncompressed_size, f.compression,
                   f.uncompressed_md5, f.compressed_md5) for f in files],
            "c": changes,
        })
    except orjson.JSONEncodeError:  # a string that is not valid Unicode
        return None
    result = index.write_statement(_CALL, [fast.text_array(public), fast.bytea_array(tags),
                                           b"\\x" + patient_tags.hex().encode(), rows, date.encode(),
                                           b"t" if durable else b"f"])
    ids, created = result.get_value(0, 0), result.get_value(0, 1)
    if ids is None or created is None:
        return None
    return fast.int_array(ids), fast.bool_array(created)
