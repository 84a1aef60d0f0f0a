"""Metadata over the index: list, read, write and delete with Orthanc's rules.

Core keys (< 1024) are written by the server only; REST clients may write keys 1024-65535, each
write bumps a real revision and logs `UpdatedMetadata`. Nothing here touches the DICOM file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..registry import ChangeType, Level, is_user_key
from .bounded import put_bounded
from .clock import now_utc
from .events import ChangeEvent
from .revisions import Revision, check_delete_header, check_replace, md5_text

if TYPE_CHECKING:
    from ..index.sqlite import SQLiteReader, SQLiteWriter
    from .context import ServerContext

# Metadata are small strings kept in the index; bigger data belong in an attachment. Orthanc has no
# limit; Donjon refuses a PUT body above this with 413 so that one client cannot bloat the index.
MAX_METADATA_BYTES = 1024 * 1024

_READS_CACHED = 10_000  # values up to _CACHED_CHARS: at most ~10 MB of memory
_CACHED_CHARS = 1024


def _resource(tx: SQLiteReader, public_id: str, level: Level | None = None) -> tuple[int, int]:
    found = tx.lookup(public_id)
    if found is None or (level is not None and found[1] != level):
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return found


def _resource_and_value(tx: SQLiteReader, public_id: str, key: int) -> tuple[int, int, str | None, int]:
    """(internal id, level, value or None, revision): a write's read of its resource, one statement."""
    found = tx.metadata_row(public_id, key)
    if found is None:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return found


def list_metadata(ctx: ServerContext, level: Level, public_id: str) -> list[tuple[int, str]]:
    """(key, value) in ascending key order; the resource must be of `level`."""
    def run(tx: SQLiteReader) -> list[tuple[int, str]]:
        rid, _ = _resource(tx, public_id, level)
        return [(key, value) for key, (value, _rev) in tx.metadata(rid).items()]
    return ctx.index.read(run)


class MetadataReads:
    """Reads of one metadata answered from memory while the index has committed nothing since.

    A client polling a value (a viewer, a script waiting for a flag) then costs no SQL statement: a
    cold one is a third of such a request's CPU. The entries are tagged with the index's count of
    commits read before the statement, so any commit (a store, a deletion, a PUT) retires them all;
    that needs an index this process alone writes (`commits`, not `shared`), else every read asks it.
    """

    def __init__(self, index: object):
        self._index = index
        self._counted = getattr(index, "commits", None) is not None and not getattr(index, "shared", True)
        self._entries: dict[tuple[str, int], tuple[int, tuple[int, str | None, int] | None]] = {}

    def get(self, public_id: str, key: int) -> tuple[int, str | None, int] | None:
        """(level, value, revision) as `resource_metadata`; None when there is no such resource."""
        index = self._index
        if not self._counted:
            return index.reader().resource_metadata(public_id, key)  # type: ignore[attr-defined]
        commits: int = index.commits  # type: ignore[attr-defined]
        entry = self._entries.get((public_id, key))
        if entry is not None and entry[0] == commits:
            return entry[1]
        found = index.reader().resource_metadata(public_id, key)  # type: ignore[attr-defined]
        if found is None or found[1] is None or len(found[1]) <= _CACHED_CHARS:
            put_bounded(self._entries, (public_id, key), (commits, found), _READS_CACHED)
        return found


def get_metadata(ctx: ServerContext, level: Level, public_id: str, key: int) -> tuple[str, int] | None:
    """(value, revision), None if the resource lacks that key; one statement at most, no transaction."""
    found = ctx.metadata_reads.get(public_id, key)
    if found is None or found[0] != level:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    _, value, revision = found
    return None if value is None else (value, revision)


def check_writable(key: int, trusted: bool = False) -> None:
    """Core keys are read-only to REST clients: Orthanc answers a bare 403."""
    if not trusted and not is_user_key(key):
        raise EmptyAnswer(403)


def set_metadata(ctx: ServerContext, public_id: str, key: int, value: str, if_match: Revision | None,
                 trusted: bool = False) -> int:
    """Write a value (any level: only the existence of the id is checked); returns its new revision."""
    check_writable(key, trusted)
    check_revisions = bool(ctx.config["CheckRevisions"])
    now = now_utc()

    def run(tx: SQLiteWriter) -> tuple[int, int]:
        rid, level, current, current_revision = _resource_and_value(tx, public_id, key)
        if current is not None and (if_match is not None or check_revisions):  # (no MD5 to compute else)
            check_replace(current_revision, md5_text(current), if_match, check_revisions)
        revision = tx.set_metadata(rid, key, value)
        if is_user_key(key):
            tx.log_change(ChangeType.UPDATED_METADATA, rid, level, now)
        return revision, level

    revision, level = ctx.index.write(run, durable=False)
    if is_user_key(key):
        ctx.events.publish([ChangeEvent(ChangeType.UPDATED_METADATA, level, public_id, now)])
    return revision


def delete_metadata(ctx: ServerContext, public_id: str, key: int, if_match: Revision | None,
                    trusted: bool = False) -> None:
    check_writable(key, trusted)
    check_delete_header(if_match, bool(ctx.config["CheckRevisions"]))
    now = now_utc()

    def run(tx: SQLiteWriter) -> int:
        rid, level, current, current_revision = _resource_and_value(tx, public_id, key)
        if current is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        if if_match is not None:
            check_replace(current_revision, md5_text(current), if_match, False)
        tx.delete_metadata(rid, key)
        if is_user_key(key):
            tx.log_change(ChangeType.UPDATED_METADATA, rid, level, now)
        return level

    level = ctx.index.write(run, durable=False)
    if is_user_key(key):
        ctx.events.publish([ChangeEvent(ChangeType.UPDATED_METADATA, level, public_id, now)])
