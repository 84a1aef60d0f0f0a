"""The way of one instance: parse once, write the files, index everything in one transaction."""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid as uuidlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ..dicom.main_tags import format_tag, signature
from ..dicom.parse import ParsedInstance, parse_instance
from ..errors import ErrorCode, OrthancError
from ..ids import InstanceIds
from ..index.protocol import FileInfo
from ..registry import NEW_RESOURCE_CHANGE, ChangeType, CompressionType, ContentType, Level, Metadata, Origin
from ..storage.wait_hook import set_before_wait
from .attachments import write_attachment
from .clock import now_utc
from .deletion import Deletion, delete_cascade
from .events import ChangeEvent
from .matching import normalize

if TYPE_CHECKING:
    from ..index.protocol import WriteTransaction
    from .context import ServerContext

log = logging.getLogger(__name__)

# Tags copied, normalised, into the identifiers table for indexed lookups, per level.
INDEXED_TAGS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (0x00100020, 0x00100010, 0x00100030),
    Level.STUDY: (0x0020000D, 0x00080050, 0x00081030, 0x00080020),
    Level.SERIES: (0x0020000E, 0x00080060),
    Level.INSTANCE: (0x00080018,),
}
_SIGNATURES = {level: signature(level) for level in Level}
_helpers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-parse")  # see _store_while_syncing


@dataclass
class StoreOrigin:
    origin: str = Origin.REST_API
    remote_ip: str = ""
    remote_aet: str = ""
    called_aet: str = ""
    username: str = ""


@dataclass
class StoreResult:
    status: str  # Success, AlreadyStored, FilteredOut
    ids: InstanceIds
    dimse_status: int = 0  # the C-STORE status of an instance a plugin filtered out

    def answer(self) -> dict[str, str]:
        return {
            "ID": self.ids.instance,
            "ParentPatient": self.ids.patient,
            "ParentSeries": self.ids.series,
            "ParentStudy": self.ids.study,
            "Path": f"/instances/{self.ids.instance}",
            "Status": self.status,
        }


@dataclass
class _Indexed:
    status: str
    created: list[tuple[int, int, str]]  # (level, internal id, public id), patient first
    chain: list[tuple[int, int, str]]  # series, study, patient of the instance
    events: list[ChangeEvent]
    deletion: Deletion | None


def store_instance(ctx: ServerContext, data: bytes, origin: StoreOrigin) -> StoreResult:
    if ctx.plugins is not None:  # the plugin's ingest callbacks run around the store
        return ctx.plugins.store(ctx, data, origin, _store)
    return _store(ctx, data, origin)


def _store(ctx: ServerContext, data: bytes, origin: StoreOrigin) -> StoreResult:
    with _in_flight.enter() as alone:
        if alone and len(data) >= 132 and data[128:132] == b"DICM":
            parsed, files, outcome = _store_while_syncing(ctx, data, origin)
        else:
            parsed, files, outcome = _store_in_order(ctx, data, origin)
    ids = parsed.ids
    if outcome is None or outcome.status != "Success":  # (its files are already removed)
        return StoreResult(outcome.status if outcome is not None else "AlreadyStored", ids)
    # the commit is fsynced with the next ones (core/index_sync.py): the files stay in the in-flight
    # journal until then, for a power cut's recovery
    ctx.index_sync.committed([f.uuid for f in files])
    if outcome.deletion is not None:
        ctx.after_deletion(outcome.deletion)
    ctx.stable.mark_unstable(outcome.chain)
    ctx.events.publish(outcome.events)
    return StoreResult("Success", ids)


def _prepare(ctx: ServerContext, data: bytes) -> tuple[ParsedInstance, bool]:
    """The parsed instance, and whether it is already indexed (False: not known to be, or overwriting).
    An index that stores in one statement finds an existing instance itself, and a lookup there is
    one more round trip: the file is written, then removed (as Orthanc does for every index)."""
    parsed = parse_instance(data, ctx.default_encoding)
    if ctx.overwrite_instances or hasattr(ctx.index, "store_new_instance"):
        return parsed, False
    return parsed, ctx.index.reader().lookup(parsed.ids.instance) is not None  # one statement


def _index_files(ctx: ServerContext, parsed: ParsedInstance, files: list[FileInfo], origin: StoreOrigin,
                 remove_on_failure: bool = True) -> _Indexed:
    """Index the instance and its written files (removed again if it is not indexed)."""
    try:
        outcome = _index_in_one_statement(ctx, parsed, files, origin)
        if outcome is None:
            outcome = ctx.index.write(lambda tx: _index(ctx, tx, parsed, files, origin),
                                      durable=not ctx.index_sync.deferred)
    except BaseException:
        if remove_on_failure:
            _remove(ctx, files)
        raise
    if outcome.status != "Success" and remove_on_failure:
        _remove(ctx, files)
    return outcome


def _remove(ctx: ServerContext, files: list[FileInfo]) -> None:
    for f in files:
        ctx.storage.remove(f.uuid, f.content_type)


def _store_in_order(ctx: ServerContext, data: bytes, origin: StoreOrigin
                    ) -> tuple[ParsedInstance, list[FileInfo], _Indexed | None]:
    """Parse and look up, write the files, index them: (parsed, files, outcome or None when the
    instance was already there)."""
    parsed, exists = _prepare(ctx, data)
    if exists:
        return parsed, [], None
    files = _write_files(ctx, data, parsed)
    return parsed, files, _index_files(ctx, parsed, files, origin)


class _InFlight:
    """Counts the stores in progress."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def enter(self) -> Iterator[bool]:
        """True when no other store is in progress."""
        with self._lock:
            self._count += 1
            alone = self._count == 1
        try:
            yield alone
        finally:
            with self._lock:
                self._count -= 1


_in_flight = _InFlight()

_Early = tuple[FileInfo, _Indexed]  # the file's record and the outcome of its indexing


def _store_while_syncing(ctx: ServerContext, data: bytes, origin: StoreOrigin
                         ) -> tuple[ParsedInstance, list[FileInfo], _Indexed | None]:
    """`_store_in_order` for a store alone (one client, one association), with the disk's wait filled.

    The DICOM file is written first; when this thread is about to wait for its fsync
    (storage/wait_hook.py), a helper thread parses the file, looks it up and, where it is safe,
    indexes it, so that the parse (~0.15 ms for a small file), the lookup (a round trip with
    PostgreSQL) and the index transaction (~0.2 ms) leave the latency. Orthanc also writes before it
    knows whether the instance is new; an instance stored again has its new file removed. Concurrent
    stores fill each other's waits already, and the hand-over would only add thread switches.

    Indexing before the fsync returns is safe because the store is acknowledged only after both, the
    file can already be read back (it is in the page cache), and the in-flight journal still announces
    it: after a power cut that kept the index commit but not the whole file, the start-up sweep takes
    the instance out of the index again (core/inflight.py). It is not done where a failed fsync could
    not be undone cleanly (recycling, overwriting, compression's second file, another storage, an
    index shared with other processes)."""
    uuid = str(uuidlib.uuid4())
    early = _may_index_early(ctx)
    started: list[Future[tuple[ParsedInstance, bool, _Early | None]]] = []

    def work(index_now: bool) -> tuple[ParsedInstance, bool, _Early | None]:
        parsed, exists = _prepare(ctx, data)
        if exists or not index_now:
            return parsed, exists, None
        info = _dicom_file_info(ctx, data, uuid)
        return parsed, False, (info, _index_files(ctx, parsed, [info], origin, remove_on_failure=False))

    def start(readable: bool) -> None:
        try:
            started.append(_helpers.submit(work, early and readable))
        except RuntimeError:  # the interpreter is shutting down: done in this thread below
            pass

    set_before_wait(start)
    try:
        if early:
            ctx.storage.create(uuid, data, ContentType.DICOM)  # (its record: `_dicom_file_info`)
        else:
            main = write_attachment(ctx.storage, data, ContentType.DICOM, ctx.attachment_policy, uuid=uuid)
    except BaseException:  # the write failed, and took its file away (JournaledStorage)
        set_before_wait(None)
        if not started:
            parse_instance(data, ctx.default_encoding)  # a malformed file is answered as such first
        else:
            parsed, _, indexed = started[0].result()  # (likewise: a parse error is raised here)
            if indexed is not None and indexed[1].status == "Success":
                _unindex(ctx, parsed)
        raise
    finally:
        set_before_wait(None)
    try:
        parsed, exists, indexed = started[0].result() if started else work(False)
    except BaseException:
        ctx.storage.remove(uuid, ContentType.DICOM)
        raise
    if indexed is not None:
        info, outcome = indexed
        if outcome.status != "Success":
            _remove(ctx, [info])
        return parsed, [info], outcome
    if exists:
        ctx.storage.remove(uuid, ContentType.DICOM)
        return parsed, [], None
    if early:  # the storage did not wait (no fsync): the record was not made
        main = _dicom_file_info(ctx, data, uuid)
    try:
        files = [main, *_header_files(ctx, data, parsed)]
    except BaseException:
        ctx.storage.remove(uuid, ContentType.DICOM)
        raise
    return parsed, files, _index_files(ctx, parsed, files, origin)


def _may_index_early(ctx: ServerContext) -> bool:
    """Whether a store may be indexed while its file's fsync runs (see `_store_while_syncing`)."""
    policy = ctx.attachment_policy
    return not (policy.compress or ctx.overwrite_instances or ctx.recycler.active()
                or getattr(ctx.index, "shared", False) or not ctx.storage.has_read_range())


def _dicom_file_info(ctx: ServerContext, data: bytes, uuid: str) -> FileInfo:
    """The record of a DICOM file written as it is (no compression)."""
    md5 = hashlib.md5(data).hexdigest() if ctx.attachment_policy.md5 else ""
    return FileInfo(uuid=uuid, content_type=ContentType.DICOM, uncompressed_size=len(data), uncompressed_md5=md5,
                    compression=int(CompressionType.NONE), compressed_size=len(data), compressed_md5=md5,
                    revision=0)


def _unindex(ctx: ServerContext, parsed: ParsedInstance) -> None:
    """Take out of the index an instance indexed while its file was written, when the write failed."""
    now = now_utc()

    def run(tx: WriteTransaction) -> Deletion | None:
        found = tx.lookup(parsed.ids.instance)
        return delete_cascade(tx, found[0], now) if found is not None else None
    try:
        deletion = ctx.index.write(run)
    except Exception:
        log.exception("Cannot take %s out of the index after its file failed", parsed.ids.instance)
        return
    if deletion is not None:
        ctx.after_deletion(deletion)


def _write_files(ctx: ServerContext, data: bytes, parsed: ParsedInstance) -> list[FileInfo]:
    main = write_attachment(ctx.storage, data, ContentType.DICOM, ctx.attachment_policy)
    try:
        return [main, *_header_files(ctx, data, parsed)]
    except BaseException:
        ctx.storage.remove(main.uuid, main.content_type)
        raise


def _header_files(ctx: ServerContext, data: bytes, parsed: ParsedInstance) -> list[FileInfo]:
    """The header up to the pixel data, as attachment 3, where reading it from the DICOM file would
    mean reading (or decompressing) the whole file."""
    if parsed.pixel_data_offset is None or not (ctx.attachment_policy.compress or not ctx.storage.has_read_range()):
        return []
    return [write_attachment(ctx.storage, data[:parsed.pixel_data_offset], ContentType.DICOM_UNTIL_PIXEL_DATA,
                             ctx.attachment_policy)]


def _tags_blob(tags: list[tuple[int, str]]) -> bytes:
    return orjson.dumps({format_tag(t): v for t, v in tags})


def _index(ctx: ServerContext, tx: WriteTransaction, parsed: ParsedInstance, files: list[FileInfo],
           origin: StoreOrigin) -> _Indexed:
    ids = parsed.ids
    now = now_utc()
    deletion: Deletion | None = None
    if ctx.recycler.active():
        tx.lock_recycling()  # first, before any row is locked: one recycling pass at a time
    public = (ids.patient, ids.study, ids.series, ids.instance)
    known = tx.lookup_many(public)  # the four levels in one query
    existing = known.get(ids.instance)
    if existing is not None:
        if not ctx.overwrite_instances:
            return _Indexed("AlreadyStored", [], [], [], None)
        deletion = delete_cascade(tx, existing[0], now)
        known = tx.lookup_many(public[:3])  # the deletion may have taken childless ancestors along

    internal: list[int] = []
    created: list[tuple[int, int, str]] = []
    parent: int | None = None
    for level in (Level.PATIENT, Level.STUDY, Level.SERIES, Level.INSTANCE):
        pub = public[level - 1]
        found = known.get(pub) if level != Level.INSTANCE else None
        if found is None and level != Level.INSTANCE:
            # not there a moment ago: create it, unless a concurrent writer (another process) just did
            rid, found_level, is_new = tx.get_or_create_resource(
                level, pub, parent, _tags_blob(parsed.main_tags[level]),
                _tags_blob(parsed.main_tags[Level.PATIENT]) if level == Level.STUDY else None)
            if not is_new:
                found = (rid, found_level)
        if found is not None:
            if found[1] != level:
                raise OrthancError(ErrorCode.DATABASE, f"Identifier collision between levels: {pub}")
            parent = found[0]
            internal.append(parent)
            continue
        if level == Level.INSTANCE:
            rid = tx.create_resource(level, pub, parent, _tags_blob(parsed.main_tags[level]), None)
        tx.set_identifiers(rid, _identifiers(parsed, level))
        internal.append(rid)
        created.append((level, rid, pub))
        parent = rid
    patient_id, study_id, series_id, instance_id = internal
    created_levels = {c[0] for c in created}

    md = [(internal[level - 1], md_type, value)
          for level, md_type, value, only_new in _core_metadata(parsed, origin, now)
          if not only_new or level in created_levels]
    tx.set_metadata_many(md)

    for f in files:
        tx.add_attachment(instance_id, f)

    # change log: NewInstance, then NewSeries / NewStudy / NewPatient for what was created
    for level, rid, _ in reversed(created):
        tx.log_change(NEW_RESOURCE_CHANGE[Level(level)], rid, level, now)
    completed = bool(parsed.expected_instances) and _series_complete(tx, series_id)
    if completed:
        tx.log_change(ChangeType.COMPLETED_SERIES, series_id, Level.SERIES, now)
    events = _events(ids, created, completed, now)

    tx.touch_patient(patient_id)
    recycled = ctx.recycler.make_room(tx, sum(f.compressed_size for f in files), patient_id, now)
    if recycled is not None:
        deletion = recycled if deletion is None else deletion.merge(recycled)

    chain = [(Level.SERIES, series_id, ids.series), (Level.STUDY, study_id, ids.study),
             (Level.PATIENT, patient_id, ids.patient)]
    return _Indexed("Success", created, chain, events, deletion)


def _identifiers(parsed: ParsedInstance, level: Level) -> list[tuple[int, str]]:
    """The normalised values of the indexed tags of a level (`/tools/find` lookups)."""
    tag_values = dict(parsed.main_tags[level])
    return [(t, normalize(tag_values[t])) for t in INDEXED_TAGS[level] if t in tag_values]


def _core_metadata(parsed: ParsedInstance, origin: StoreOrigin, now: str) -> list[tuple[Level, int, str, bool]]:
    """(level, type, value, only when this store creates that level's resource): the core metadata
    recorded by a store, where and as Orthanc records them."""
    instance, series = Level.INSTANCE, Level.SERIES
    is_dicom = origin.origin == Origin.DICOM_PROTOCOL
    remote_aet = origin.remote_aet if is_dicom else ""
    md: list[tuple[Level, int, str, bool]] = []
    if parsed.index_in_series is not None:
        md.append((instance, Metadata.INDEX_IN_SERIES, parsed.index_in_series, False))
    md.append((instance, Metadata.RECEPTION_DATE, now, False))
    md.append((instance, Metadata.REMOTE_AET, remote_aet, False))
    md.append((instance, Metadata.ORIGIN, origin.origin, False))
    if parsed.transfer_syntax:
        md.append((instance, Metadata.TRANSFER_SYNTAX, parsed.transfer_syntax, False))
    if parsed.sop_class_uid:
        md.append((instance, Metadata.SOP_CLASS_UID, parsed.sop_class_uid, False))
    if origin.origin in (Origin.DICOM_PROTOCOL, Origin.REST_API):
        md.append((instance, Metadata.REMOTE_IP, origin.remote_ip, False))
    if is_dicom:
        md.append((instance, Metadata.CALLED_AET, origin.called_aet, False))
    if origin.origin == Origin.REST_API:
        md.append((instance, Metadata.HTTP_USERNAME, origin.username, False))
    if parsed.pixel_data_offset is not None:
        md.append((instance, Metadata.PIXEL_DATA_OFFSET, str(parsed.pixel_data_offset), False))
        if parsed.pixel_data_vr is not None:
            md.append((instance, Metadata.PIXEL_DATA_VR, parsed.pixel_data_vr, False))
    for level in Level:
        md.append((level, Metadata.MAIN_DICOM_TAGS_SIGNATURE, _SIGNATURES[level], True))
    md.append((series, Metadata.REMOTE_AET, remote_aet, True))
    if parsed.expected_instances is not None:
        md.append((series, Metadata.EXPECTED_NUMBER_OF_INSTANCES, str(parsed.expected_instances), True))
    for level in (Level.SERIES, Level.STUDY, Level.PATIENT):
        md.append((level, Metadata.LAST_UPDATE, now, False))
    return md


def _events(ids: InstanceIds, created: list[tuple[int, int, str]], completed: bool, now: str) -> list[ChangeEvent]:
    """What the store publishes: NewInstance then NewSeries / NewStudy / NewPatient for what was
    created (the change log's order), CompletedSeries, and a NewChildInstance per ancestor."""
    events = [ChangeEvent(NEW_RESOURCE_CHANGE[Level(level)], level, pub, now) for level, _, pub in reversed(created)]
    if completed:
        events.append(ChangeEvent(ChangeType.COMPLETED_SERIES, Level.SERIES, ids.series, now))
    for level, pub in ((Level.SERIES, ids.series), (Level.STUDY, ids.study), (Level.PATIENT, ids.patient)):
        events.append(ChangeEvent(ChangeType.NEW_CHILD_INSTANCE, level, pub, now))
    return events


def _index_in_one_statement(ctx: ServerContext, parsed: ParsedInstance, files: list[FileInfo],
                            origin: StoreOrigin) -> _Indexed | None:
    """The common store through the index's one-statement path, where it has one (PostgreSQL:
    index/store_postgres.sql): a new instance, no recycling, no series completion to check. None
    when it does not apply (the caller runs `_index`)."""
    store_new = getattr(ctx.index, "store_new_instance", None)
    if store_new is None or ctx.recycler.active() or parsed.expected_instances:
        return None
    ids = parsed.ids
    now = now_utc()
    public = (ids.patient, ids.study, ids.series, ids.instance)
    identifiers = [(level, tag, norm) for level in Level for tag, norm in _identifiers(parsed, level)]
    blobs = [_tags_blob(parsed.main_tags[level]) for level in Level]  # patient first
    found = store_new(public, blobs, blobs[0], identifiers,
                      _core_metadata(parsed, origin, now), files,
                      [int(NEW_RESOURCE_CHANGE[level]) for level in Level], now, not ctx.index_sync.deferred)
    if found is None:
        return None  # the instance exists: AlreadyStored or an overwrite, by the general path
    internal, created_flags = found
    created = [(level, internal[level - 1], public[level - 1]) for level in Level if created_flags[level - 1]]
    chain = [(Level.SERIES, internal[2], ids.series), (Level.STUDY, internal[1], ids.study),
             (Level.PATIENT, internal[0], ids.patient)]
    return _Indexed("Success", created, chain, _events(ids, created, False, now), None)


def _series_complete(tx: WriteTransaction, series_id: int) -> bool:
    expected = tx.metadata_one(series_id, Metadata.EXPECTED_NUMBER_OF_INSTANCES)
    if expected is None:
        return False
    values = tx.children_metadata(series_id, Metadata.INDEX_IN_SERIES)
    return series_status(expected[0], values) == "Complete"


def series_status(expected: str | None, indexes: list[str]) -> str:
    """Orthanc's series Status from ExpectedNumberOfInstances and the children's IndexInSeries."""
    if expected is None:
        return "Unknown"
    try:
        count = int(expected)
    except ValueError:
        return "Unknown"
    seen: set[int] = set()
    for text in indexes:
        try:
            i = int(text)
        except ValueError:
            return "Unknown"
        if i < 1 or i > count or i in seen:
            return "Inconsistent"
        seen.add(i)
    return "Complete" if len(seen) == count else "Missing"
