"""The way of one instance: parse once, write the files, index everything in one transaction."""

from __future__ import annotations

import logging
import threading
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
from ..index.identifiers import PATIENT_IDENTIFIER_TAGS, on_study
from ..index.protocol import FileInfo
from ..registry import NEW_RESOURCE_CHANGE, ChangeType, ContentType, Level, Metadata, Origin
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
    Level.PATIENT: PATIENT_IDENTIFIER_TAGS,
    Level.STUDY: (0x0020000D, 0x00080050, 0x00081030, 0x00080020),
    Level.SERIES: (0x0020000E, 0x00080060),
    Level.INSTANCE: (0x00080018,),
}
_SIGNATURES = {level: signature(level) for level in Level}
_helpers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-parse")  # see _parse_and_write


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
    parsed, files = _parse_and_write(ctx, data)
    if files is None:
        return StoreResult("AlreadyStored", parsed.ids)
    return _index_and_finish(ctx, parsed, files, origin)


def _index_files(ctx: ServerContext, parsed: ParsedInstance, files: list[FileInfo],
                 origin: StoreOrigin) -> _Indexed:
    """Index an instance whose files are written; they are removed unless it is indexed."""
    try:
        # the commit is fsynced here, or with the next ones (core/index_sync.py): the files stay in
        # the in-flight journal until then, for a power cut's recovery
        outcome = _index_in_one_statement(ctx, parsed, files, origin)
        if outcome is None:
            outcome = ctx.index.write(lambda tx: _index(ctx, tx, parsed, files, origin),
                                      durable=not ctx.index_sync.deferred)
    except BaseException:
        _remove(ctx, files)
        raise
    if outcome.status != "Success":
        _remove(ctx, files)
    return outcome


def _remove(ctx: ServerContext, files: list[FileInfo]) -> None:
    for f in files:
        ctx.storage.remove(f.uuid, f.content_type)


def _finish(ctx: ServerContext, ids: InstanceIds, files: list[FileInfo], outcome: _Indexed) -> StoreResult:
    """What follows a store's commit: the journal, the caches, deletions, stability, events."""
    if outcome.status != "Success":
        return StoreResult(outcome.status, ids)
    ctx.index_sync.committed([f.uuid for f in files])
    ctx.remember_instance_file(ids.instance, files[0])  # (the DICOM file comes first)
    if outcome.deletion is not None:  # (a store's commit is fsynced unless the index sync is deferred)
        ctx.after_deletion(outcome.deletion, durable=not ctx.index_sync.deferred)
    ctx.stable.mark_unstable(outcome.chain)
    ctx.events.publish(outcome.events)
    return StoreResult("Success", ids)


def _index_and_finish(ctx: ServerContext, parsed: ParsedInstance, files: list[FileInfo],
                      origin: StoreOrigin) -> StoreResult:
    return _finish(ctx, parsed.ids, files, _index_files(ctx, parsed, files, origin))


def _prepare(ctx: ServerContext, data: bytes) -> tuple[ParsedInstance, bool]:
    """The parsed instance, and whether it is already indexed (False: not known to be, or overwriting).
    An index that stores in one statement finds an existing instance itself, and a lookup there is
    one more round trip: the file is written, then removed (as Orthanc does for every index)."""
    parsed = parse_instance(data, ctx.default_encoding)
    if ctx.overwrite_instances or hasattr(ctx.index, "store_new_instance"):
        return parsed, False
    return parsed, ctx.index.reader().lookup(parsed.ids.instance) is not None  # one statement


def _parse_and_write(ctx: ServerContext, data: bytes) -> tuple[ParsedInstance, list[FileInfo] | None]:
    """Parse, look up, write the files (None: the instance is already stored, nothing kept).

    A store alone (one client, one association) writes a file that looks like DICOM first, and
    parses and looks it up on a helper thread while this one waits for the file's fsync
    (storage/wait_hook.py): the parse (~0.15 ms for a small file) and the lookup (a round trip with
    PostgreSQL) leave its latency. Orthanc also writes before it knows whether the instance is new;
    an instance stored again has its new file removed. Concurrent stores fill each other's waits
    already (the hand-over would only add thread switches), and anything that does not look like
    DICOM is parsed first, so that garbage never reaches the disk."""
    with _in_flight.enter() as alone:
        if alone and _looks_like_dicom(data):
            return _parse_while_writing(ctx, data)
        parsed, exists = _prepare(ctx, data)
        return parsed, None if exists else _write_files(ctx, data, parsed)


def _looks_like_dicom(data: bytes) -> bool:
    """A DICOM file's preamble and prefix: only such a body is written before it is parsed."""
    return len(data) >= 132 and data[128:132] == b"DICM"


class _InFlight:
    """Counts the stores between their start and their files written (on an event loop: their end)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    @contextmanager
    def enter(self) -> Iterator[bool]:
        """True when no other store is in flight."""
        with self._lock:
            self._count += 1
            alone = self._count == 1
        try:
            yield alone
        finally:
            with self._lock:
                self._count -= 1

    def busy(self) -> bool:
        return self._count > 0


_in_flight = _InFlight()


def _parse_while_writing(ctx: ServerContext, data: bytes) -> tuple[ParsedInstance, list[FileInfo] | None]:
    started: list[Future[tuple[ParsedInstance, bool]]] = []

    def start() -> None:
        try:
            started.append(_helpers.submit(_prepare, ctx, data))
        except RuntimeError:  # the interpreter is shutting down: prepared in this thread below
            pass

    set_before_wait(start)
    try:
        main = write_attachment(ctx.storage, data, ContentType.DICOM, ctx.attachment_policy)
    except BaseException:
        # a malformed file is answered as such, as when it is parsed first
        started[0].result() if started else parse_instance(data, ctx.default_encoding)
        raise
    finally:
        set_before_wait(None)
    try:
        parsed, exists = started[0].result() if started else _prepare(ctx, data)
        files = None if exists else [main, *_header_files(ctx, data, parsed)]
    except BaseException:
        ctx.storage.remove(main.uuid, main.content_type)
        raise
    if files is None:
        ctx.storage.remove(main.uuid, main.content_type)
    return parsed, files


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
    if not _needs_header_file(ctx, parsed):
        return []
    return [write_attachment(ctx.storage, data[:parsed.pixel_data_offset], ContentType.DICOM_UNTIL_PIXEL_DATA,
                             ctx.attachment_policy)]


def _needs_header_file(ctx: ServerContext, parsed: ParsedInstance) -> bool:
    return parsed.pixel_data_offset is not None and keeps_header_files(ctx)


def keeps_header_files(ctx: ServerContext) -> bool:
    """Whether stores write the header attachment (compressed files, or a storage without ranges)."""
    return ctx.attachment_policy.compress or not ctx.storage.has_read_range()


def _tags_blob(tags: list[tuple[int, str]]) -> bytes:
    return orjson.dumps({format_tag(t): v for t, v in tags})


def _index(ctx: ServerContext, tx: WriteTransaction, parsed: ParsedInstance, files: list[FileInfo],
           origin: StoreOrigin, on_loop: bool = False) -> _Indexed:
    """`on_loop`: an event loop's write, where a recycling pass that must delete raises `WriterBusy`."""
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
    recycled = ctx.recycler.make_room(tx, sum(f.compressed_size for f in files), patient_id, now,
                                      light_only=on_loop)
    if recycled is not None:
        deletion = recycled if deletion is None else deletion.merge(recycled)

    chain = [(Level.SERIES, series_id, ids.series), (Level.STUDY, study_id, ids.study),
             (Level.PATIENT, patient_id, ids.patient)]
    return _Indexed("Success", created, chain, events, deletion)


def _identifiers(parsed: ParsedInstance, level: Level) -> list[tuple[int, str]]:
    """The normalised values of the indexed tags of a level (`/tools/find` lookups); a study also
    keeps its own copy of the patient's (index/identifiers.py)."""
    tag_values = dict(parsed.main_tags[level])
    rows = [(t, normalize(tag_values[t])) for t in INDEXED_TAGS[level] if t in tag_values]
    if level == Level.STUDY:
        rows += [(on_study(t), norm) for t, norm in _identifiers(parsed, Level.PATIENT)]
    return rows


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
