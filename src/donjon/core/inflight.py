"""Wiring of the in-flight journal (storage/journal.py) into a server context, and its start-up sweep."""

from __future__ import annotations

import os
import socket
import sqlite3
from typing import TYPE_CHECKING, Any

from ..storage.journal import InflightJournal, JournaledStorage, sweep

if TYPE_CHECKING:
    from .context import ServerContext


def journal_path(config: Any, shared: bool = False) -> str:
    """One journal per process: several processes sharing an index and a storage folder must never
    sweep each other's in-flight files, so they are told apart by a name that survives a restart."""
    folder = config.path("IndexDirectory") if config.get("IndexDirectory") else config.path("StorageDirectory")
    server = config.get("DatabaseServerIdentifier") or (
        f"{socket.gethostname()}-{config['HttpPort']}" if shared else "")
    suffix = f"-{''.join(c for c in server if c.isalnum() or c in '-_.')}" if server else ""
    return os.path.join(folder, f"donjon-inflight{suffix}.journal")


def install(ctx: ServerContext) -> InflightJournal:
    """Journal the new files of `ctx.storage` (under its memory cache, if any), then remove the orphans
    a crash of the previous run left behind."""
    journal = InflightJournal(journal_path(ctx.config, bool(getattr(ctx.index, "shared", False))))
    storage = ctx.storage
    cached = getattr(storage, "inner", None)
    if cached is not None and hasattr(storage, "max_bytes"):  # CachingStorage: journal what it wraps
        storage.inner = JournaledStorage(cached, journal)  # type: ignore[attr-defined]
    else:
        ctx.storage = JournaledStorage(storage, journal)  # type: ignore[assignment]
    sweep(journal, lambda uuids: _referenced(ctx, uuids), ctx.storage.remove)
    return journal


def _referenced(ctx: ServerContext, uuids: list[str]) -> set[str]:
    """Which of `uuids` the index references (one scan, only after a crash)."""
    def run(tx: Any) -> set[str]:
        conn = getattr(tx, "conn", None)
        if isinstance(conn, sqlite3.Connection):
            found: set[str] = set()
            for i in range(0, len(uuids), 500):
                chunk = uuids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                found.update(r[0] for r in conn.execute(f"SELECT uuid FROM attachments WHERE uuid IN ({marks})",
                                                        chunk))
            return found
        return set(tx.all_attachment_uuids()) & set(uuids)
    return ctx.index.read(run)
