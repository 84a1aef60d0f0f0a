"""Wiring of the in-flight journal (storage/journal.py) into a server context, its start-up sweep, and
the adoption of the complete DICOM files that a crash left without their index rows."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from typing import TYPE_CHECKING, Any

from ..registry import ContentType, Origin
from ..storage import compression
from ..storage.journal import InflightJournal, JournaledStorage, Leftover, sweep

log = logging.getLogger(__name__)

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


def install(ctx: ServerContext) -> tuple[InflightJournal, list[Leftover]]:
    """Journal the new files of `ctx.storage` (under its memory cache, if any), then remove the orphans
    a crash of the previous run left behind; the DICOM files to adopt (`adopt`, once the context is
    ready) are returned."""
    journal = InflightJournal(journal_path(ctx.config, bool(getattr(ctx.index, "shared", False))))
    storage = ctx.storage
    cached = getattr(storage, "inner", None)
    if cached is not None and hasattr(storage, "max_bytes"):  # CachingStorage: journal what it wraps
        storage.inner = JournaledStorage(cached, journal)  # type: ignore[attr-defined]
    else:
        ctx.storage = JournaledStorage(storage, journal)  # type: ignore[assignment]
    _, adoptable = sweep(journal, lambda uuids: _referenced(ctx, uuids), ctx.storage.remove,
                         lambda entry: _complete_dicom(ctx, entry))
    return journal, adoptable


def _complete_dicom(ctx: ServerContext, entry: Leftover) -> bool:
    """A DICOM file written whole (the size announced in the journal): its store may have been
    acknowledged before a power cut took the index commit away (core/index_sync.py)."""
    if entry.content_type != ContentType.DICOM or entry.size is None:
        return False
    try:
        return len(ctx.storage.read(entry.uuid, entry.content_type)) == entry.size
    except Exception:
        return False


def adopt(ctx: ServerContext, entries: list[Leftover]) -> int:
    """Store these files again through the normal path (Origin "Unknown": the original one was in the
    lost commit), then remove them; a file that does not store is removed. The number stored."""
    from .store import StoreOrigin

    stored = 0
    for entry in entries:
        try:
            data = ctx.storage.read(entry.uuid, entry.content_type)
            if data[128:132] != b"DICM" and compression.looks_compressed(data):
                data = compression.decompress(data)
            result = ctx.store(data, StoreOrigin(origin=Origin.UNKNOWN))
            stored += result.status == "Success"
        except Exception as e:
            log.warning("Cannot store again the file %s left by a crash, removed: %s", entry.uuid, e)
        try:
            ctx.storage.remove(entry.uuid, entry.content_type)
        except Exception:
            log.exception("cannot remove the file %s", entry.uuid)
    if entries:
        log.warning("Stored again %d of %d instance(s) whose index commit a crash took away", stored,
                    len(entries))
    return stored


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
