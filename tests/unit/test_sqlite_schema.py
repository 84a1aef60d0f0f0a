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
    conn = sqlite3.connect(path, isolation_level=None)  # as version 1 left it: the indexes without ids
    conn.execute("DROP INDEX resources_level_ids")
    conn.execute("CREATE INDEX resources_level ON resources(level)")
    conn.execute("DROP INDEX resources_parent_ids")
    conn.execute("CREATE INDEX resources_parent ON resources(parent_id)")
    conn.execute("PRAGMA user_version = 1")
    conn.close()

    index = SQLiteIndex(path)
    try:
        assert index.reader().list_level_public(1, 0, 0) == ["patient-a"]
        conn = index.reader().conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "resources_level_ids" in names and "resources_level" not in names
        assert "resources_parent_ids" in names and "resources_parent" not in names
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT public_id FROM resources WHERE level = 1 ORDER BY id").fetchall()
        assert "COVERING INDEX resources_level_ids" in str(plan)  # listings do not read the big rows
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT parent_id, id, public_id FROM resources WHERE parent_id "
                            "IN (1, 2) ORDER BY parent_id, id").fetchall()
        assert "COVERING INDEX resources_parent_ids" in str(plan) and "TEMP B-TREE" not in str(plan)
        assert index.reader().children([1]) == {1: []}
    finally:
        index.close()
