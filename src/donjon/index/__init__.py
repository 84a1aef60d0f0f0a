"""The index: the database that is the single source of truth (SQLite by default)."""
