"""Which index a configuration asks for: SQLite in the index folder (default) or PostgreSQL."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .postgres_settings import PostgresSettings, validate

if TYPE_CHECKING:
    from ..config import Configuration


def postgres_settings(config: Configuration) -> PostgresSettings:
    return validate(config.get("PostgreSQL"))


def uses_postgres(config: Configuration) -> bool:
    return postgres_settings(config).enable_index


def sqlite_path(config: Configuration) -> str:
    storage_dir = config.path("StorageDirectory")
    index_dir = config.path("IndexDirectory") if config.get("IndexDirectory") else storage_dir
    return os.path.join(index_dir, "index")


def open_index(config: Configuration) -> Any:
    """A `PostgresIndex` when `PostgreSQL.EnableIndex` is true, else the `SQLiteIndex` of the folders."""
    settings = postgres_settings(config)
    if settings.enable_index:
        from .postgres import PostgresIndex

        return PostgresIndex(settings)
    from .sqlite import SQLiteIndex

    return SQLiteIndex(sqlite_path(config), synchronous=config["SyncStorageArea"])
