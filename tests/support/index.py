"""What a test server holds in its index, whether SQLite (the default) or PostgreSQL.

Tests that look into the index directly (a global property in Orthanc's format...) use these helpers,
so that they also run with `DONJON_TEST_INDEX=postgresql`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .servers import Server


def global_property(server: Server, key: int) -> str | None:
    section = server.config.get("PostgreSQL") or {}
    if section.get("EnableIndex"):
        import psycopg

        with psycopg.connect(host=section["Host"], port=section["Port"], dbname=section["Database"],
                             user=section["Username"], password=section["Password"]) as conn:
            row = conn.execute("SELECT value FROM global_properties WHERE key = %s", (key,)).fetchone()
    else:
        folder = server.config.get("IndexDirectory") or server.config["StorageDirectory"]
        with sqlite3.connect(Path(folder) / "index") as db:
            row = db.execute("SELECT value FROM global_properties WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None
