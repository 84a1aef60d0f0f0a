"""The server context: the core's parts wired from a configuration, and its operations."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import limits
from ..config import Configuration
from ..dicom.values import DEFAULT_ENCODINGS
from ..errors import ErrorCode, OrthancError
from ..index.factory import open_index
from ..index.protocol import FileInfo
from ..index.sqlite import SQLiteIndex
from ..registry import (
    CHANGE_NAMES,
    STABLE_CHANGE,
    ChangeType,
    ContentType,
    Level,
    build_content_type_names,
    build_metadata_names,
)
from ..storage.cache import CachingStorage
from ..storage.factory import open_storage
from ..storage.folder import FolderStorage
from ..storage.journal import doom
from ..storage.protocol import StorageArea
from .attachments import AttachmentPolicy
from .bounded import put_bounded
from .clock import now_utc
from .deletion import Deletion, delete_cascade
from .events import ChangeEvent, EventBus
from .index_lock import IndexLock
from .index_sync import IndexSync
from .inflight import adopt
from .inflight import install as install_journal
from .metadata import MetadataReads
from .recycling import Recycler
from .shared_index import stable_change_is_due
from .stable import StableMonitor
from .store import StoreOrigin, StoreResult, store_instance

if TYPE_CHECKING:
    from ..plugins.host import PluginHost

log = logging.getLogger(__name__)
_FILE_CACHE_SIZE = 100_000


@dataclass
class DeleteResult:
    remaining: tuple[int, str] | None


class ServerContext:
    """Owns the index, the storage area and the in-memory state; every face calls into it."""

    def __init__(self, config: Configuration, index: SQLiteIndex | None = None,
                 storage: StorageArea | None = None, no_jobs: bool = False):
        self.config = config
        self.metadata_names = build_metadata_names(config["UserMetadata"])
        self.content_names = build_content_type_names(config["UserContentType"])
        storage_dir = config.path("StorageDirectory")
        index_dir = config.path("IndexDirectory") if config.get("IndexDirectory") else storage_dir
        self.storage: StorageArea = storage or open_storage(config)
        cache_mb = config["MaximumStorageCacheSize"]
        if cache_mb > 0:
            self.storage = CachingStorage(
                self.storage, cache_mb * 1024 * 1024, keep_written=not isinstance(self.storage, FolderStorage)
            )
        self.index = index or open_index(config)  # SQLite, or PostgreSQL (`PostgreSQL.EnableIndex`)
        self._lock: IndexLock | None = None
        if index is None and isinstance(self.index, SQLiteIndex):  # one process per SQLite index
            try:
                self._lock = IndexLock(index_dir)
            except OrthancError:
                self.index.close()
                raise
        limits.configure(config)  # limits.py: bounds of the DICOM scanner and the pixel decoders
        # storage/journal.py: removes the orphan files of a crash; complete DICOM files are adopted below
        self.journal, leftovers = install_journal(self)
        interval = config["IndexSyncInterval"] if config["SyncStorageArea"] else 0.0
        self.index_sync = IndexSync(self.index, self.journal, interval)  # deferred index fsyncs
        self.attachment_policy = AttachmentPolicy(
            compress=config["StorageCompression"], level=config["StorageCompressionLevel"],
            md5=config["StoreMD5ForAttachments"])
        self.overwrite_instances: bool = config["OverwriteInstances"]
        self.default_encoding = DEFAULT_ENCODINGS.get(config["DefaultEncoding"], "latin_1")
        self.recycler = Recycler(config["MaximumStorageSize"], config["MaximumPatientCount"],
                                 config["MaximumStorageMode"] == "Reject")
        self.events = EventBus()
        self.plugins: PluginHost | None = None  # set by the Python plugin host, if a script is configured
        self._file_cache: dict[str, FileInfo] = {}
        self.metadata_reads = MetadataReads(self.index)
        self.stable = StableMonitor(config["StableAge"], self._record_stable)
        self.stable.start()
        if self.recycler.active():
            self.index.write(lambda tx: self.recycler.make_room(tx, 0, None, now_utc(), reject_applies=False))
        from ..jobs.service import JobsService
        self.jobs = JobsService(self, reload_saved=not no_jobs)
        adopt(self, leftovers)

    def close(self) -> None:
        self.jobs.close()
        self.stable.stop()
        self.index_sync.close()
        self.index.close()
        self.journal.close()
        if self._lock is not None:
            self._lock.release()

    # -- store and delete -------------------------------------------------------------------------
    def store(self, data: bytes, origin: StoreOrigin) -> StoreResult:
        return store_instance(self, data, origin)

    def delete(self, level: Level, public_id: str) -> DeleteResult | None:
        """None when the resource does not exist at that level."""
        def run(tx):  # type: ignore[no-untyped-def]
            found = tx.lookup(public_id)
            if found is None or found[1] != level:
                return None
            return delete_cascade(tx, found[0], now_utc())
        deletion = self.index.write(run)
        if deletion is None:
            return None
        self.after_deletion(deletion)
        return DeleteResult(deletion.remaining)

    def instance_file(self, public_id: str, refresh: bool = False) -> FileInfo | None:
        """The DICOM file record of an instance, cached (the hot path of downloads).

        A stale entry can only name a file that was replaced or deleted: reading it fails and the
        caller asks again with `refresh`. Valid while this process is the index's only writer: with
        several processes (`index.shared`) every call asks the index.
        """
        cache = self._file_cache
        if self.index.shared:
            found = self.index.reader().instance_attachment(public_id, ContentType.DICOM)
            return found if isinstance(found, FileInfo) else None
        if not refresh:
            info = cache.get(public_id)
            if info is not None:
                return info
        found = self.index.reader().instance_attachment(public_id, ContentType.DICOM)
        if not found:
            cache.pop(public_id, None)
            return None
        assert isinstance(found, FileInfo)
        self.remember_instance_file(public_id, found)
        return found

    def remember_instance_file(self, public_id: str, info: FileInfo) -> None:
        """Cache the DICOM file record of an instance: read, or just stored (a client often reads
        what just arrived: a viewer, a forward to a peer; Orthanc keeps those files in memory)."""
        if self.index.shared:
            return
        put_bounded(self._file_cache, public_id, info, _FILE_CACHE_SIZE)

    def after_deletion(self, deletion: Deletion, durable: bool = True) -> None:
        """What follows a deletion's commit. `durable=False`: a commit not fsynced (a store's
        recycling, core/index_sync.py), whose files are removed once it is."""
        if deletion.files:
            # journaled first: a crash before the removals leaves no orphan (storage/journal.py)
            doom(self.storage, [f.uuid for f in deletion.files])
            if durable:
                self._remove_files(deletion.files)
            else:
                self.index_sync.after_flush(lambda: self._remove_files(deletion.files))
        now = now_utc()
        events = []
        for level, internal_id, public_id in deletion.deleted:
            self.stable.forget(level, internal_id)
            self._file_cache.pop(public_id, None)
            events.append(ChangeEvent(ChangeType.DELETED, level, public_id, now))
        self.events.publish(events)

    def _remove_files(self, files: list[FileInfo]) -> None:
        for f in files:
            try:
                self.storage.remove(f.uuid, f.content_type)
            except Exception:
                log.exception("cannot remove the file %s", f.uuid)

    # -- stable events ----------------------------------------------------------------------------
    def _record_stable(self, level: int, internal_id: int, public_id: str) -> None:
        change = STABLE_CHANGE[Level(level)]
        now = now_utc()

        def run(tx):  # type: ignore[no-untyped-def]
            if self.index.shared and not stable_change_is_due(tx, internal_id, change, self.stable.stable_age):
                return False
            row = tx.resource(internal_id)
            if row is None or row.public_id != public_id:
                return False
            tx.log_change(change, internal_id, level, now)
            return True
        if self.index.write(run, durable=False):
            log.debug("%s %s", CHANGE_NAMES[change], public_id)
            self.events.publish([ChangeEvent(change, level, public_id, now)])

    # -- helpers ----------------------------------------------------------------------------------
    def lookup(self, level: Level, public_id: str) -> int:
        """Internal id of a resource of that level, else UnknownResource."""
        found = self.index.read(lambda tx: tx.lookup(public_id))
        if found is None or found[1] != level:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        return found[0]
