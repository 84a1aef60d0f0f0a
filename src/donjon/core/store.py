"""The way of one instance: parse once, write the files, index everything in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ..dicom.main_tags import format_tag, signature
from ..dicom.parse import ParsedInstance, parse_instance
from ..errors import ErrorCode, OrthancError
from ..ids import InstanceIds
from ..index.protocol import FileInfo
from ..registry import NEW_RESOURCE_CHANGE, ChangeType, ContentType, Level, Metadata, Origin
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
    parsed = parse_instance(data, ctx.default_encoding)
    ids = parsed.ids
    if not ctx.overwrite_instances:
        existing = ctx.index.reader().lookup(ids.instance)  # one statement: no transaction needed
        if existing is not None:
            return StoreResult("AlreadyStored", ids)

    files = _write_files(ctx, data, parsed)
    try:
        # the commit is fsynced here, or with the next ones (core/index_sync.py): the files stay in
        # the in-flight journal until then, for a power cut's recovery
        outcome = ctx.index.write(lambda tx: _index(ctx, tx, parsed, files, origin),
                                  durable=not ctx.index_sync.deferred)
    except BaseException:
        for f in files:
            ctx.storage.remove(f.uuid, f.content_type)
        raise
    if outcome.status != "Success":
        for f in files:
            ctx.storage.remove(f.uuid, f.content_type)
        return StoreResult(outcome.status, ids)
    ctx.index_sync.committed([f.uuid for f in files])
    if outcome.deletion is not None:
        ctx.after_deletion(outcome.deletion)
    ctx.stable.mark_unstable(outcome.chain)
    ctx.events.publish(outcome.events)
    return StoreResult("Success", ids)


def _write_files(ctx: ServerContext, data: bytes, parsed: ParsedInstance) -> list[FileInfo]:
    files = [write_attachment(ctx.storage, data, ContentType.DICOM, ctx.attachment_policy)]
    if parsed.pixel_data_offset is not None and (ctx.attachment_policy.compress or not ctx.storage.has_read_range()):
        try:
            files.append(write_attachment(ctx.storage, data[:parsed.pixel_data_offset],
                                          ContentType.DICOM_UNTIL_PIXEL_DATA, ctx.attachment_policy))
        except BaseException:
            ctx.storage.remove(files[0].uuid, files[0].content_type)
            raise
    return files


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
        tags = parsed.main_tags[level]
        if level == Level.INSTANCE:
            rid = tx.create_resource(level, pub, parent, _tags_blob(tags), None)
        tag_values = dict(tags)
        tx.set_identifiers(rid, [(t, normalize(tag_values[t])) for t in INDEXED_TAGS[level] if t in tag_values])
        internal.append(rid)
        created.append((level, rid, pub))
        parent = rid
    patient_id, study_id, series_id, instance_id = internal
    created_levels = {c[0] for c in created}

    # core metadata
    md: list[tuple[int, int, str]] = []
    is_dicom = origin.origin == Origin.DICOM_PROTOCOL
    remote_aet = origin.remote_aet if is_dicom else ""
    if parsed.index_in_series is not None:
        md.append((instance_id, Metadata.INDEX_IN_SERIES, parsed.index_in_series))
    md.append((instance_id, Metadata.RECEPTION_DATE, now))
    md.append((instance_id, Metadata.REMOTE_AET, remote_aet))
    md.append((instance_id, Metadata.ORIGIN, origin.origin))
    if parsed.transfer_syntax:
        md.append((instance_id, Metadata.TRANSFER_SYNTAX, parsed.transfer_syntax))
    if parsed.sop_class_uid:
        md.append((instance_id, Metadata.SOP_CLASS_UID, parsed.sop_class_uid))
    if origin.origin in (Origin.DICOM_PROTOCOL, Origin.REST_API):
        md.append((instance_id, Metadata.REMOTE_IP, origin.remote_ip))
    if is_dicom:
        md.append((instance_id, Metadata.CALLED_AET, origin.called_aet))
    if origin.origin == Origin.REST_API:
        md.append((instance_id, Metadata.HTTP_USERNAME, origin.username))
    if parsed.pixel_data_offset is not None:
        md.append((instance_id, Metadata.PIXEL_DATA_OFFSET, str(parsed.pixel_data_offset)))
        if parsed.pixel_data_vr is not None:
            md.append((instance_id, Metadata.PIXEL_DATA_VR, parsed.pixel_data_vr))
    for level, rid, _ in created:
        md.append((rid, Metadata.MAIN_DICOM_TAGS_SIGNATURE, _SIGNATURES[level]))
    if Level.SERIES in created_levels:
        md.append((series_id, Metadata.REMOTE_AET, remote_aet))
        if parsed.expected_instances is not None:
            md.append((series_id, Metadata.EXPECTED_NUMBER_OF_INSTANCES, str(parsed.expected_instances)))
    for rid in (series_id, study_id, patient_id):
        md.append((rid, Metadata.LAST_UPDATE, now))
    tx.set_metadata_many(md)

    for f in files:
        tx.add_attachment(instance_id, f)

    # change log: NewInstance, then NewSeries / NewStudy / NewPatient for what was created
    events: list[ChangeEvent] = []
    for level, rid, pub in reversed(created):
        change = NEW_RESOURCE_CHANGE[Level(level)]
        tx.log_change(change, rid, level, now)
        events.append(ChangeEvent(change, level, pub, now))
    if parsed.expected_instances and _series_complete(tx, series_id):
        tx.log_change(ChangeType.COMPLETED_SERIES, series_id, Level.SERIES, now)
        events.append(ChangeEvent(ChangeType.COMPLETED_SERIES, Level.SERIES, ids.series, now))
    for level, pub in ((Level.SERIES, ids.series), (Level.STUDY, ids.study), (Level.PATIENT, ids.patient)):
        events.append(ChangeEvent(ChangeType.NEW_CHILD_INSTANCE, level, pub, now))

    tx.touch_patient(patient_id)
    recycled = ctx.recycler.make_room(tx, sum(f.compressed_size for f in files), patient_id, now)
    if recycled is not None:
        deletion = recycled if deletion is None else deletion.merge(recycled)

    chain = [(Level.SERIES, series_id, ids.series), (Level.STUDY, study_id, ids.study),
             (Level.PATIENT, patient_id, ids.patient)]
    return _Indexed("Success", created, chain, events, deletion)


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
