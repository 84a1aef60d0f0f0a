"""The SQLite index upgrades an index of an older schema version in place, keeping its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from donjon.index.sqlite import SCHEMA_VERSION, SQLiteIndex


def test_a_version_1_index_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "index")
    index = SQLiteIndex(path)
    patient = index.write(lambda tx: tx.create_resource(1, "patient-a", None, b"{}", None))
    blob = b'{"0010,0010": "Caf\xc3\xa9^Anon", "0010,0020": "P1", "0008,0050": "not a patient tag"}'
    study = index.write(lambda tx: tx.create_resource(2, "study-a", patient, b"{}", blob))
    index.close()
    conn = sqlite3.connect(path, isolation_level=None)  # as version 1 left it: the indexes without ids
    conn.execute("DROP INDEX resources_level_ids")
    conn.execute("CREATE INDEX resources_level ON resources(level)")
    conn.execute("DROP INDEX resources_parent_ids")
    conn.execute("CREATE INDEX resources_parent ON resources(parent_id)")
    conn.execute("DELETE FROM identifiers")  # version 3 had no study copies of patient identifiers
    conn.execute("PRAGMA user_version = 1")
    conn.close()

    index = SQLiteIndex(path)
    try:
        assert index.reader().list_level_public(1, 0, 0) == ["patient-a"]
        conn = index.reader().conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "resources_level_ids" in names and "resources_level" not in names
        assert "resources_parent_ids" in names and "resources_parent" not in names
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT public_id FROM resources WHERE level = 1 ORDER BY id").fetchall()
        assert "COVERING INDEX resources_level_ids" in str(plan)  # listings do not read the big rows
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT parent_id, id, public_id FROM resources WHERE parent_id "
                            "IN (1, 2) ORDER BY parent_id, id").fetchall()
        assert "COVERING INDEX resources_parent_ids" in str(plan) and "TEMP B-TREE" not in str(plan)
        assert index.reader().children([1]) == {1: [(study, "study-a")]}
        copies = conn.execute("SELECT tag, norm FROM identifiers WHERE resource_id = ? ORDER BY tag", (study,))
        assert copies.fetchall() == [(-0x00100020, "P1"), (-0x00100010, "CAFÉ^ANON")]  # version 4: study copies
    finally:
        index.close()
