"""What a test server holds in its index, whether SQLite (the default) or PostgreSQL.

Tests that look into the index directly (a global property in Orthanc's format...) use these helpers,
so that they also run with `DONJON_TEST_INDEX=postgresql`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from .servers import Server


def global_property(server: Server, key: int) -> str | None:
    row = query_one(server.config, "SELECT value FROM global_properties WHERE key = ?", (key,))
    return row[0] if row else None


def query_one(config: dict[str, Any], sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """One row of a read-only query (`?` placeholders) on the index of a server's configuration,
    which may be in use by a running server or command."""
    section = config.get("PostgreSQL") or {}
    if section.get("EnableIndex"):
        import psycopg

        with psycopg.connect(host=section["Host"], port=section["Port"], dbname=section["Database"],
                             user=section["Username"], password=section["Password"]) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchone()  # type: ignore[arg-type]
    folder = config.get("IndexDirectory") or config["StorageDirectory"]
    with sqlite3.connect(f"file:{Path(folder) / 'index'}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(sql, params).fetchone()  # type: ignore[no-any-return]
