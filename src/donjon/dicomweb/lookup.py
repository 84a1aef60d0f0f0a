"""From DICOM UIDs (what DICOMweb URLs carry) to the index's resources, and back to URL paths.

Two Orthanc resources may share a StudyInstanceUID (same study under two PatientIDs); a DICOMweb
study is then the union of them, as in Orthanc's plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from ..core.matching import normalize
from ..errors import ErrorCode, OrthancError
from ..index.protocol import FileInfo, ResourceRow
from ..registry import ContentType, Level, Metadata

if TYPE_CHECKING:
    from ..index.sqlite import SQLiteReader

STUDY_UID, SERIES_UID, SOP_UID = 0x0020000D, 0x0020000E, 0x00080018
_UID_TAG = {Level.STUDY: STUDY_UID, Level.SERIES: SERIES_UID, Level.INSTANCE: SOP_UID}


def row_tag(row: ResourceRow | None, tag: int) -> str | None:
    if row is None or not row.tags:
        return None
    value = orjson.loads(row.tags).get(f"{tag >> 16:04x},{tag & 0xFFFF:04x}")
    return value if isinstance(value, str) else None


def _by_uid(tx: SQLiteReader, level: Level, uid: str) -> list[ResourceRow]:
    ids = [rid for rid, _ in tx.lookup_identifier(level, _UID_TAG[level], normalize(uid))]
    return [r for r in tx.resources(ids) if row_tag(r, _UID_TAG[level]) == uid]


def not_found(level: Level, uid: str) -> OrthancError:
    name = {Level.STUDY: "study", Level.SERIES: "series", Level.INSTANCE: "instance"}[level]
    return OrthancError(ErrorCode.INEXISTENT_ITEM, f"Accessing an inexistent {name} with WADO-RS: {uid}")


def resolve(tx: SQLiteReader, study: str, series: str | None = None, instance: str | None = None
            ) -> list[ResourceRow]:
    """The rows of the most specific level named by the UIDs, each under the ones above (404 if none)."""
    rows = _by_uid(tx, Level.STUDY, study)
    if not rows:
        raise not_found(Level.STUDY, study)
    if series is None:
        return rows
    parents = {r.id for r in rows}
    rows = [r for r in _by_uid(tx, Level.SERIES, series) if r.parent_id in parents]
    if not rows:
        raise not_found(Level.SERIES, series)
    if instance is None:
        return rows
    parents = {r.id for r in rows}
    rows = [r for r in _by_uid(tx, Level.INSTANCE, instance) if r.parent_id in parents]
    if not rows:
        raise not_found(Level.INSTANCE, instance)
    return rows


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """What a WADO-RS answer needs of one instance, read in one transaction."""

    internal_id: int
    public_id: str
    series_id: int
    study_uid: str
    series_uid: str
    sop_uid: str
    file: FileInfo | None
    transfer_syntax: str | None
    sop_class: str | None
    pixel_offset: int | None = None

    @property
    def path(self) -> str:
        return f"studies/{self.study_uid}/series/{self.series_uid}/instances/{self.sop_uid}"


def instances_below(tx: SQLiteReader, rows: list[ResourceRow]) -> list[InstanceRef]:
    """Every instance below `rows` (any level), in index order, with its file record."""
    ids: list[int] = []
    for row in rows:
        ids.extend(tx.descendants(row.id, Level.INSTANCE))
    return instance_refs(tx, ids)


def instance_refs(tx: SQLiteReader, ids: list[int]) -> list[InstanceRef]:
    if not ids:
        return []
    instances = {r.id: r for r in tx.resources(ids)}
    series = {r.id: r for r in tx.resources(list({r.parent_id for r in instances.values() if r.parent_id}))}
    studies = {r.id: r for r in tx.resources(list({r.parent_id for r in series.values() if r.parent_id}))}
    files = tx.attachments_bulk(ids, ContentType.DICOM)
    md = tx.metadata_bulk(ids, (Metadata.TRANSFER_SYNTAX, Metadata.SOP_CLASS_UID, Metadata.PIXEL_DATA_OFFSET))
    out = []
    for iid in ids:
        row = instances.get(iid)
        if row is None or row.parent_id is None:
            continue
        se = series.get(row.parent_id)
        st = studies.get(se.parent_id) if se is not None and se.parent_id is not None else None
        values = md.get(iid, {})
        offset = values.get(Metadata.PIXEL_DATA_OFFSET)
        out.append(InstanceRef(iid, row.public_id, row.parent_id, row_tag(st, STUDY_UID) or "",
                               row_tag(se, SERIES_UID) or "", row_tag(row, SOP_UID) or "", files.get(iid),
                               values.get(Metadata.TRANSFER_SYNTAX), values.get(Metadata.SOP_CLASS_UID),
                               int(offset) if offset is not None and offset.isdigit() else None))
    return out
