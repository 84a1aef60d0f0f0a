"""Attachments over REST: list, read, replace, delete, (un)compress and verify, with Orthanc's rules.

A new content always gets a new uuid and file; the old file is removed only after the index
transaction that forgets it has committed, and a file written for a failed transaction is removed.
Reading a record never parses the DICOM file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..registry import (
    CONTENT_TYPE_EXTENSION,
    ChangeType,
    CompressionType,
    ContentType,
    Level,
    is_user_key,
)
from ..storage import compression
from ..storage.journal import doom, settle
from .attachments import read_attachment, read_range, write_attachment
from .clock import now_utc
from .deletion import Deletion
from .events import ChangeEvent
from .revisions import Revision, check_delete_header, check_replace

if TYPE_CHECKING:
    from ..index.sqlite import SQLiteReader, SQLiteWriter
    from .context import ServerContext

log = logging.getLogger(__name__)


@dataclass
class _Written:
    info: FileInfo
    old: FileInfo | None
    level: int
    deletion: Deletion | None


def list_attachments(ctx: ServerContext, level: Level, public_id: str) -> dict[int, FileInfo]:
    """Records by content type, ascending; the resource must be of `level`."""
    def run(tx: SQLiteReader) -> dict[int, FileInfo]:
        found = tx.lookup(public_id)
        if found is None or found[1] != level:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        return tx.attachments(found[0])
    return ctx.index.read(run)


def get_attachment(ctx: ServerContext, public_id: str, content_type: int) -> FileInfo:
    """The record (any level: only the existence of the id counts); one statement, no transaction."""
    found = ctx.index.reader().resource_attachment(public_id, content_type)
    if found is None or found[2] is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return found[2]


def filename_of(info: FileInfo) -> str:
    """The `Content-Disposition` file name Orthanc gives to `data`."""
    return info.uuid + CONTENT_TYPE_EXTENSION.get(info.content_type, "")


def read_data(ctx: ServerContext, info: FileInfo) -> bytes:
    """The user-visible (decompressed) bytes."""
    return read_attachment(ctx.storage, info)


def read_stored(ctx: ServerContext, info: FileInfo) -> bytes:
    """The bytes exactly as on disk (`compressed-data`)."""
    return ctx.storage.read(info.uuid, info.content_type)


def read_window(ctx: ServerContext, info: FileInfo, start: int, end: int) -> bytes:
    """User-visible bytes [start, end): a range read when stored raw, else decompress and slice."""
    return read_range(ctx.storage, info, start, end)


def can_put(content_type: int) -> bool:
    """Only user types may be written by REST clients (Orthanc answers a bare 403 otherwise)."""
    return is_user_key(content_type)


def can_delete(ctx: ServerContext, content_type: int) -> bool:
    """User types, plus the legacy DICOM-as-JSON cache when DICOM files are stored (Orthanc 1.2)."""
    if is_user_key(content_type):
        return True
    return content_type == ContentType.DICOM_AS_JSON and bool(ctx.config["StoreDicom"])


def _commit(ctx: ServerContext, new: FileInfo, run: Callable[[SQLiteWriter], _Written]) -> _Written:
    """Index a freshly written file; on failure remove it, on success remove what it replaced."""
    try:
        written: _Written = ctx.index.write(run)
    except BaseException:
        ctx.storage.remove(new.uuid, new.content_type)
        raise
    settle(ctx.storage, [new.uuid])  # indexed: no longer in the in-flight journal
    if written.old is not None:
        _remove_file(ctx, written.old)
    if written.deletion is not None:
        ctx.after_deletion(written.deletion)
    return written


def _remove_file(ctx: ServerContext, info: FileInfo) -> None:
    """Remove the file of an attachment the index no longer names (its commit is durable): marked
    in the in-flight journal first, so that a crash before the unlink leaves no orphan."""
    try:
        doom(ctx.storage, [info.uuid])
        ctx.storage.remove(info.uuid, info.content_type)
    except Exception:
        log.exception("cannot remove the file %s", info.uuid)


def _replace(ctx: ServerContext, tx: SQLiteWriter, rid: int, level: int, info: FileInfo, now: str) -> _Written:
    old = tx.replace_attachment(rid, info)
    if is_user_key(info.content_type):
        tx.log_change(ChangeType.UPDATED_ATTACHMENT, rid, level, now)
    deletion = ctx.recycler.make_room(tx, info.compressed_size, tx.patient_of(rid), now, reject_applies=False)
    return _Written(info, old, level, deletion)


def _publish(ctx: ServerContext, content_type: int, level: int, public_id: str, now: str) -> None:
    if is_user_key(content_type):
        ctx.events.publish([ChangeEvent(ChangeType.UPDATED_ATTACHMENT, level, public_id, now)])


def put_attachment(ctx: ServerContext, public_id: str, content_type: int, data: bytes,
                   if_match: Revision | None, trusted: bool = False) -> FileInfo:
    """Store `data` as the attachment (new uuid, revision + 1, `StorageCompression` applies)."""
    if not trusted and not can_put(content_type):
        raise EmptyAnswer(403)
    check_revisions = bool(ctx.config["CheckRevisions"])
    if ctx.index.reader().lookup(public_id) is None:  # do not write a file for nothing
        raise OrthancError(ErrorCode.INEXISTENT_ITEM)
    new = write_attachment(ctx.storage, data, content_type, ctx.attachment_policy)
    now = now_utc()

    def run(tx: SQLiteWriter) -> _Written:
        found = tx.lookup(public_id)
        if found is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM)
        rid, level = found
        current = tx.attachment(rid, content_type)
        revision = 0
        if current is not None:
            check_replace(current.revision, current.uncompressed_md5, if_match, check_revisions)
            revision = current.revision + 1
        return _replace(ctx, tx, rid, level, dataclasses.replace(new, revision=revision), now)

    written = _commit(ctx, new, run)
    _publish(ctx, content_type, written.level, public_id, now)
    return written.info


def delete_attachment(ctx: ServerContext, public_id: str, content_type: int, if_match: Revision | None,
                      trusted: bool = False) -> None:
    if not trusted and not can_delete(ctx, content_type):
        raise EmptyAnswer(403)
    check_delete_header(if_match, bool(ctx.config["CheckRevisions"]))
    now = now_utc()

    def run(tx: SQLiteWriter) -> tuple[FileInfo, int]:
        found = tx.lookup(public_id)
        if found is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        rid, level = found
        current = tx.attachment(rid, content_type)
        if current is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        if if_match is not None:
            check_replace(current.revision, current.uncompressed_md5, if_match, False)
        tx.delete_attachment(rid, content_type)
        if is_user_key(content_type):
            tx.log_change(ChangeType.UPDATED_ATTACHMENT, rid, level, now)
        return current, level

    old, level = ctx.index.write(run)
    _remove_file(ctx, old)
    _publish(ctx, content_type, level, public_id, now)


def change_compression(ctx: ServerContext, public_id: str, content_type: int, compress: bool) -> None:
    """Rewrite the attachment compressed or not (a no-op if it already is); any type, `dicom` included."""
    info = get_attachment(ctx, public_id, content_type)
    target = CompressionType.ZLIB_WITH_SIZE if compress else CompressionType.NONE
    if info.compression == target:
        return
    data = read_attachment(ctx.storage, info)
    new = write_attachment(ctx.storage, data, content_type, ctx.attachment_policy, compress=compress)
    now = now_utc()

    def run(tx: SQLiteWriter) -> _Written:
        found = tx.lookup(public_id)
        current = tx.attachment(found[0], content_type) if found is not None else None
        if found is None or current is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        if current.uuid != info.uuid:  # replaced meanwhile: what was re-encoded is stale
            raise OrthancError(ErrorCode.REVISION)
        rid, level = found
        return _replace(ctx, tx, rid, level, dataclasses.replace(new, revision=current.revision + 1), now)

    written = _commit(ctx, new, run)
    _publish(ctx, content_type, written.level, public_id, now)


def verify_md5(ctx: ServerContext, public_id: str, content_type: int) -> bool:
    """Whether the stored file matches its MD5s; False also when absent or when no MD5 is stored."""
    found = ctx.index.reader().resource_attachment(public_id, content_type)
    if found is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    info = found[2]
    if info is None or not info.compressed_md5 or not info.uncompressed_md5:
        return False
    disk = getattr(ctx.storage, "inner", ctx.storage)  # verify what is on disk, not the memory cache
    stored = disk.read(info.uuid, info.content_type)
    if hashlib.md5(stored).hexdigest() != info.compressed_md5:
        return False
    if info.compression == CompressionType.NONE:
        return True
    return hashlib.md5(compression.decompress(stored)).hexdigest() == info.uncompressed_md5
