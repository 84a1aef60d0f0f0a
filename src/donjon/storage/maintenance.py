"""What the offline storage commands work on: the index of a configuration, held exclusively, and a
walk over every attachment record it holds.

The commands run while no server uses the index: a SQLite index is guarded by `index.lock` (the
server holds it), a PostgreSQL index by its own advisory lock (`PostgreSQL.Lock`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from ..config import Configuration
from ..core.index_lock import IndexLock
from ..index.protocol import FileInfo
from ..registry import ContentType, Level, Metadata

_PAGE = 500
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Record:
    """One attachment record and the resource that owns it."""

    resource_id: int
    public_id: str
    info: FileInfo
    header_offset: int | None = None  # a DICOM file whose header (attachment 3) is missing: its length

    def failure(self, reason: str) -> str:
        """The line a command's report gives for a file it could not handle."""
        return f"{self.public_id} attachment {self.info.content_type} ({self.info.uuid}): {reason}"


class Workspace:
    """The index of `config`, opened for a maintenance command (refused while a server holds it)."""

    def __init__(self, config: Configuration):
        from ..index.factory import open_index, sqlite_path, uses_postgres

        self.config = config
        self.state_dir = os.path.dirname(sqlite_path(config))
        self.lock = None if uses_postgres(config) else IndexLock(self.state_dir)
        try:
            self.index: Any = open_index(config)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        index = getattr(self, "index", None)
        if index is not None:
            index.close()
            self.index = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _missing_header(tx: Any, rid: int, attachments: dict[int, FileInfo]) -> int | None:
    """The pixel data offset of an instance that has no attachment 3 (DICOM until the pixel data)."""
    if ContentType.DICOM not in attachments or ContentType.DICOM_UNTIL_PIXEL_DATA in attachments:
        return None
    found = tx.metadata_one(rid, Metadata.PIXEL_DATA_OFFSET)
    try:
        return int(found[0]) if found is not None else None
    except ValueError:
        return None


def records(index: Any, headers: bool = False) -> Iterator[Record]:
    """Every attachment record, patients first, resource by resource (one read transaction per page).

    With `headers`, DICOM files whose instance lacks attachment 3 carry their pixel data offset."""
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE):
        offset = 0
        while True:
            def page(tx: Any, offset: int = offset, level: Level = level) -> tuple[int, list[Record]]:
                public_ids = tx.list_level_public(int(level), offset, _PAGE)
                found = tx.lookup_many(public_ids)
                out: list[Record] = []
                for public_id in public_ids:
                    rid = found[public_id][0]
                    attachments = tx.attachments(rid)
                    offset = _missing_header(tx, rid, attachments) if headers else None
                    out.extend(Record(rid, public_id, info, offset if info.content_type == ContentType.DICOM
                                      else None) for info in attachments.values())
                return len(public_ids), out
            count, batch = index.read(page)
            yield from batch
            if count < _PAGE:
                break
            offset += count


def batched(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    """Lists of `size` items (the last one shorter), each given as soon as it is full.

    The commands handle a batch before reading further records, so that a long walk shows progress.
    """
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
