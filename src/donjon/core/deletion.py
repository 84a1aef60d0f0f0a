"""Deleting a resource: its descendants, then every ancestor left without children."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..index.protocol import FileInfo
from ..registry import Level, Metadata

if TYPE_CHECKING:
    from ..index.protocol import WriteTransaction


@dataclass
class Deletion:
    """What a deletion removed; files are removed from the storage area after the commit."""

    files: list[FileInfo] = field(default_factory=list)
    deleted: list[tuple[int, int, str]] = field(default_factory=list)  # (level, internal id, public id)
    remaining: tuple[int, str] | None = None  # (level, public id) of the nearest surviving ancestor

    def merge(self, other: Deletion) -> Deletion:
        return Deletion(self.files + other.files, self.deleted + other.deleted, self.remaining)


def delete_cascade(tx: WriteTransaction, internal_id: int, now: str,
                   subtree: list[tuple[int, int, str]] | None = None) -> Deletion:
    """`subtree`: `tx.subtree_resources(internal_id)`, when the caller has already read it."""
    tx.lock_tree(internal_id)  # with several writers: wait for the stores into this patient to commit
    row = tx.resource(internal_id)
    if row is None:
        return Deletion()
    deleted = subtree if subtree is not None else tx.subtree_resources(internal_id)
    files = tx.delete_resource(internal_id)
    parent = row.parent_id
    while parent is not None and not tx.has_children(parent):
        prow = tx.resource(parent)
        if prow is None:
            parent = None
            break
        deleted.append((prow.level, prow.id, prow.public_id))
        files += tx.delete_resource(parent)
        parent = prow.parent_id
    remaining = None
    if parent is not None:
        prow = tx.resource(parent)
        if prow is not None:
            remaining = (prow.level, prow.public_id)
            # newer Orthanc (1.12.1+) touches the surviving ancestors
            ancestor: int | None = parent
            while ancestor is not None:
                tx.set_metadata(ancestor, Metadata.LAST_UPDATE, now)
                arow = tx.resource(ancestor)
                ancestor = arow.parent_id if arow is not None and arow.level > Level.PATIENT else None
    return Deletion(files, deleted, remaining)
