"""The SQLite index upgrades an index of an older schema version in place, keeping its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from donjon.index.sqlite import SCHEMA_VERSION, SQLiteIndex


def test_a_version_1_index_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "index")
    index = SQLiteIndex(path)
    index.write(lambda tx: tx.create_resource(1, "patient-a", None, b"{}", None))
    index.close()
    conn = sqlite3.connect(path, isolation_level=None)  # as version 1 left it: the index without ids
    conn.execute("DROP INDEX resources_level_ids")
    conn.execute("CREATE INDEX resources_level ON resources(level)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()

    index = SQLiteIndex(path)
    try:
        assert index.reader().list_level_public(1, 0, 0) == ["patient-a"]
        conn = index.reader().conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "resources_level_ids" in names and "resources_level" not in names
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT public_id FROM resources WHERE level = 1 ORDER BY id").fetchall()
        assert "COVERING INDEX resources_level_ids" in str(plan)  # listings do not read the big rows
    finally:
        index.close()
