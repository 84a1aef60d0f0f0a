"""Rows a PostgreSQL write adds without reading anything back, sent together as one statement.

A store adds identifiers, metadata, attachment records, changes and moves its patient in the
recycling order: five to eight statements that return nothing. They are kept here and sent as one statement (data-modifying CTEs over arrays) just
before the writer's next statement or the commit, so that psycopg's per-statement cost is paid once.
The writer flushes before every other statement, so what a transaction reads always includes them.
"""

from __future__ import annotations

from typing import Any

from .protocol import FileInfo

_IDENTIFIERS = ("i AS (INSERT INTO identifiers (resource_id, tag, norm) "
                "SELECT * FROM unnest(%s::bigint[], %s::int[], %s::text[]) "
                "ON CONFLICT (resource_id, tag) DO UPDATE SET norm = excluded.norm)")
# Rows that already hold the value are not rewritten (nor locked: concurrent stores into one study
# would queue on the LastUpdate rows of its series, study and patient). The test is a scalar subquery,
# one primary-key lookup per row: written as NOT EXISTS, the prepared plan made while the table was
# young (never analysed) became a hash anti-join over a scan of the whole table, 3.5 ms per store
# after 1,000 instances and growing with the index (auto_explain).
_METADATA = ("m AS (INSERT INTO metadata (resource_id, type, value, revision) "
             "SELECT u.r, u.t, u.v, 0 FROM unnest(%s::bigint[], %s::int[], %s::bytea[]) AS u(r, t, v) "
             "WHERE (SELECT x.value FROM metadata x WHERE x.resource_id = u.r AND x.type = u.t) "
             "IS DISTINCT FROM u.v "
             "ON CONFLICT (resource_id, type) DO UPDATE SET value = excluded.value, revision = metadata.revision + 1)")
_ATTACHMENTS = ("a AS (INSERT INTO attachments (resource_id, type, uuid, compressed_size, uncompressed_size, "
                "compression, uncompressed_md5, compressed_md5, revision) SELECT * FROM unnest(%s::bigint[], "
                "%s::int[], %s::text[], %s::bigint[], %s::bigint[], %s::int[], %s::text[], %s::text[], %s::int[]))")
_CHANGES = ("c AS (INSERT INTO changes (type, resource_id, level, date) "
            "SELECT * FROM unnest(%s::int[], %s::bigint[], %s::smallint[], %s::text[]))")
# the recycling order: nothing is written when the patient is already the most recent one, so that
# concurrent stores into one patient do not queue on its row
_TOUCH = ("t AS (INSERT INTO recycling (patient_id) SELECT id FROM resources WHERE id = %s AND NOT protected "
          "AND id IS DISTINCT FROM (SELECT patient_id FROM recycling ORDER BY seq DESC LIMIT 1) "
          "ON CONFLICT (patient_id) DO UPDATE SET seq = nextval('recycling_seq'))")


class PendingRows:
    def __init__(self) -> None:
        self.identifiers: dict[tuple[int, int], str] = {}
        self.metadata: dict[tuple[int, int], bytes] = {}
        self.attachments: list[tuple[int, FileInfo]] = []
        self.changes: list[tuple[int, int, int, str]] = []
        self.touch: int | None = None  # patient to move to the recent end of the recycling order

    def __bool__(self) -> bool:
        return bool(self.identifiers or self.metadata or self.attachments or self.changes
                    or self.touch is not None)

    def statement(self) -> tuple[str, list[Any]]:
        """The one statement that inserts everything pending; the buffers are emptied."""
        parts: list[str] = []
        params: list[Any] = []
        if self.identifiers:
            keys = list(self.identifiers)
            parts.append(_IDENTIFIERS)
            params += [[k[0] for k in keys], [k[1] for k in keys], [self.identifiers[k] for k in keys]]
        if self.metadata:
            keys = list(self.metadata)
            parts.append(_METADATA)
            params += [[k[0] for k in keys], [k[1] for k in keys], [self.metadata[k] for k in keys]]
        if self.attachments:
            rows = self.attachments
            parts.append(_ATTACHMENTS)
            params += [[r for r, _ in rows], [f.content_type for _, f in rows], [f.uuid for _, f in rows],
                       [f.compressed_size for _, f in rows], [f.uncompressed_size for _, f in rows],
                       [f.compression for _, f in rows], [f.uncompressed_md5 for _, f in rows],
                       [f.compressed_md5 for _, f in rows], [f.revision for _, f in rows]]
        if self.changes:
            rows4 = self.changes
            parts.append(_CHANGES)
            params += [[c[0] for c in rows4], [c[1] for c in rows4], [c[2] for c in rows4], [c[3] for c in rows4]]
        if self.touch is not None:
            parts.append(_TOUCH)
            params.append(self.touch)
        self.touch = None
        self.identifiers = {}
        self.metadata = {}
        self.attachments = []
        self.changes = []
        return "WITH " + ", ".join(parts) + " SELECT 1", params
