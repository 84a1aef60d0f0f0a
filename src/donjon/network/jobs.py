"""DICOM jobs: `DicomModalityStore` (C-STORE SCU) and `DicomMoveScu` (C-MOVE SCU).

One association per job, opened on the first step and reused; closed when the job stops (success,
failure, pause, cancel or shutdown), as Orthanc does. Both jobs can be saved and reloaded.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson
from pydicom.dataset import Dataset

from ..core.clock import now_utc
from ..core.store import StoreOrigin
from ..dicom.main_tags import format_tag
from ..dicom.tag_dictionary import tag_name
from ..errors import ErrorCode, OrthancError
from ..jobs.engine import CONTINUE, SUCCESS, Job, StepResult, StopReason, failure
from ..jobs.instances import InstancesJob
from ..jobs.persistence import register_loader
from ..registry import Level, Origin, parse_level
from .fast import FastAssociation
from .modalities import RemoteModality, parse_modality
from .queries import LEVEL_NAMES, raw_dataset
from .scu import ScuTarget, StoreConnection, get, get_association, move, move_association, release, target_for

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)

QUERY_RETRIEVE_LEVEL = 0x00080052
# Identifiers copied into an outgoing C-MOVE, per level (Orthanc's MoveInternal)
MOVE_KEYS: dict[Level, tuple[int, ...]] = {
    Level.PATIENT: (0x00100020,),
    Level.STUDY: (0x0020000D,),
    Level.SERIES: (0x0020000D, 0x0020000E),
    Level.INSTANCE: (0x0020000D, 0x0020000E, 0x00080018),
}
# What the job's Content shows of each query
QUERY_KEYS = (0x00080052, 0x00100020, 0x0020000D, 0x0020000E, 0x00080018, 0x00080050)


def _read_instance(ctx: ServerContext, instance_id: str) -> bytes | None:
    from .scp import read_instance
    return read_instance(ctx, instance_id)


def log_exports(ctx: ServerContext, public_ids: list[str], remote: str) -> None:
    """`LogExportedResources`: one row of `/exports` per requested resource (`remote`: the modality's
    symbolic name, as Orthanc records it)."""
    if not ctx.config["LogExportedResources"]:
        return
    date = now_utc()

    def run(tx: Any) -> None:
        for pub in public_ids:
            found = tx.lookup(pub)
            if found is None:
                continue
            values: dict[str, str] = {}
            row = tx.resource(found[0])
            while row is not None:
                tags = orjson.loads(row.tags) if row.tags else {}
                for key, tag in (("patient_id", "0010,0020"), ("study_uid", "0020,000d"),
                                 ("series_uid", "0020,000e"), ("sop_uid", "0008,0018")):
                    if tag in tags:
                        values.setdefault(key, tags[tag])
                row = tx.resource(row.parent_id) if row.parent_id is not None else None
            for key in ("patient_id", "study_uid", "series_uid", "sop_uid"):
                values.setdefault(key, "")
            level = Level(found[1])
            for key, lvl in (("study_uid", Level.STUDY), ("series_uid", Level.SERIES), ("sop_uid", Level.INSTANCE)):
                if lvl > level:
                    values[key] = ""
            tx.log_export({"level": int(level), "public_id": pub, "remote_modality": remote, "date": date,
                           **values})
    ctx.index.write(run, durable=False)


class DicomModalityStoreJob(InstancesJob):
    job_type = "DicomModalityStore"

    def __init__(self, ctx: ServerContext, instances: list[str], modality: RemoteModality,
                 description: str = "REST API", permissive: bool = False,
                 parent_resources: list[str] | None = None, local_aet: str | None = None,
                 timeout: int | None = None, move_originator: tuple[str, int] | None = None):
        super().__init__(ctx, instances, description, permissive, parent_resources)
        self.modality = modality
        self.timeout = timeout
        self.target: ScuTarget = target_for(ctx, modality, local_aet, timeout)
        self.move_originator = move_originator
        self.conn: StoreConnection | None = None

    def handle_instance(self, instance_id: str) -> bool:
        data = _read_instance(self.ctx, instance_id)
        if data is None:
            return False
        if self.conn is None:
            self.conn = StoreConnection(self.target)
        aet, msg_id = self.move_originator or ("", 0)
        self.conn.store(data, aet, msg_id)
        return True

    def stop(self, reason: StopReason) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def content(self) -> dict[str, Any]:
        out = super().content()
        out["LocalAet"] = self.target.local_aet
        out["RemoteAet"] = self.target.aet
        if self.move_originator is not None:
            out["MoveOriginatorAET"] = self.move_originator[0]
            out["MoveOriginatorID"] = self.move_originator[1]
        return out

    def serialize(self) -> dict[str, Any]:
        out = self.serialize_base()
        out.update({"LocalAet": self.target.local_aet, "Remote": self.modality.full_form(),
                    "Timeout": self.timeout or 0, "MoveOriginator": list(self.move_originator or [])})
        return out


def _load_store(ctx: ServerContext, saved: dict[str, Any]) -> DicomModalityStoreJob:
    originator = saved.get("MoveOriginator") or None
    job = DicomModalityStoreJob(
        ctx, [str(x) for x in saved["Instances"]], parse_modality(saved["Remote"]),
        description=str(saved.get("Description", "REST API")), permissive=bool(saved.get("Permissive", False)),
        parent_resources=[str(x) for x in saved.get("ParentResources", [])],
        local_aet=str(saved.get("LocalAet") or "") or None, timeout=int(saved.get("Timeout") or 0) or None,
        move_originator=(str(originator[0]), int(originator[1])) if originator else None)
    job.load_base(saved)
    return job


register_loader(DicomModalityStoreJob.job_type, _load_store)


def format_query_item(values: dict[int, str], fmt: str) -> dict[str, Any]:
    """A C-MOVE query as the job shows it: `short` (default), `full` or `simplify`."""
    out: dict[str, Any] = {}
    for tag in sorted(values):
        if fmt == "simplify":
            out[tag_name(tag)] = values[tag]
        elif fmt == "full":
            out[format_tag(tag)] = {"Name": tag_name(tag), "Type": "String", "Value": values[tag]}
        else:
            out[format_tag(tag)] = values[tag]
    return out


def move_identifier(ctx: ServerContext, values: dict[int, str]) -> Dataset:
    """The identifier of an outgoing C-MOVE: the level and its identifiers only (Orthanc's Move())."""
    level = parse_level(values.get(QUERY_RETRIEVE_LEVEL, ""))
    fields = {QUERY_RETRIEVE_LEVEL: LEVEL_NAMES[level]}
    for tag in MOVE_KEYS[level]:
        if tag not in values:
            raise OrthancError(ErrorCode.BAD_REQUEST, f"Missing tag {format_tag(tag)}")
        fields[tag] = values[tag]
    return raw_dataset(fields, ctx.default_encoding)


class DicomMoveScuJob(Job):
    """One C-MOVE per query, over one association to the modality."""

    job_type = "DicomMoveScu"
    save_each_step = True

    def __init__(self, ctx: ServerContext, modality: RemoteModality, queries: list[dict[int, str]],
                 target_aet: str, local_aet: str | None = None, timeout: int | None = None,
                 description: str = "REST API", permissive: bool = False, query_format: str = "short"):
        self.ctx = ctx
        self.modality = modality
        self.queries = queries  # each with its QueryRetrieveLevel
        self.target_aet = target_aet
        self.timeout = timeout
        self.target = target_for(ctx, modality, local_aet, timeout)
        self.description = description
        self.permissive = permissive
        self.query_format = query_format
        self.position = 0
        self.assoc: FastAssociation | None = None

    def step(self) -> StepResult:
        if self.position >= len(self.queries):
            return SUCCESS
        values = self.queries[self.position]
        try:
            self.run_one(move_identifier(self.ctx, values))
        except OrthancError as e:
            if not self.permissive:
                return failure(e.code, e.details or "")
            log.warning("C-MOVE SCU: error ignored (permissive): %s", e.details or e.description)
        self.position += 1
        return SUCCESS if self.position >= len(self.queries) else CONTINUE

    def run_one(self, identifier: Dataset) -> None:
        if self.assoc is None or not self.assoc.is_established:
            self.assoc = move_association(self.target)
        move(self.target, identifier, self.target_aet, self.assoc)

    def stop(self, reason: StopReason) -> None:
        if self.assoc is not None:
            release(self.assoc)
            self.assoc = None

    def reset(self) -> None:
        self.position = 0

    def progress(self) -> float:
        return 1.0 if not self.queries else self.position / len(self.queries)

    def content(self) -> dict[str, Any]:
        return {"Description": self.description, "LocalAet": self.target.local_aet, "RemoteAet": self.target.aet,
                "Query": [format_query_item({t: v for t, v in q.items() if t in QUERY_KEYS}, self.query_format)
                          for q in self.queries]}

    def serialize(self) -> dict[str, Any]:
        return {"Type": self.job_type, "Description": self.description, "Permissive": self.permissive,
                "Position": self.position, "LocalAet": self.target.local_aet, "Remote": self.modality.full_form(),
                "TargetAet": self.target_aet, "Timeout": self.timeout or 0, "Format": self.query_format,
                "Queries": [{format_tag(t): v for t, v in q.items()} for q in self.queries]}


class DicomGetScuJob(DicomMoveScuJob):
    """`POST /modalities/{id}/get` (Orthanc 1.12.6+): one C-GET per query, stored like C-STOREs."""

    job_type = "DicomGetScu"

    def run_one(self, identifier: Dataset) -> None:
        if self.assoc is None or not self.assoc.is_established:
            self.assoc = get_association(self.target, self._on_store)
        get(self.target, identifier, self.assoc)

    def _on_store(self, event: Any) -> int:
        from .scp import store_received

        origin = StoreOrigin(origin=Origin.DICOM_PROTOCOL, remote_ip=self.target.host, remote_aet=self.target.aet,
                             called_aet=self.target.local_aet)
        return store_received(self.ctx, event.request.DataSet.getvalue(), event.context, event.request, origin)


def _load_move(ctx: ServerContext, saved: dict[str, Any]) -> DicomMoveScuJob:
    queries = [{int(k.replace(",", ""), 16): str(v) for k, v in q.items()} for q in saved.get("Queries", [])]
    cls = DicomGetScuJob if saved.get("Type") == DicomGetScuJob.job_type else DicomMoveScuJob
    job = cls(ctx, parse_modality(saved["Remote"]), queries, str(saved["TargetAet"]),
                          local_aet=str(saved.get("LocalAet") or "") or None,
                          timeout=int(saved.get("Timeout") or 0) or None,
                          description=str(saved.get("Description", "REST API")),
                          permissive=bool(saved.get("Permissive", False)),
                          query_format=str(saved.get("Format", "short")))
    job.position = int(saved.get("Position", 0))
    return job


register_loader(DicomMoveScuJob.job_type, _load_move)
register_loader(DicomGetScuJob.job_type, _load_move)

__all__ = ["DicomGetScuJob", "DicomModalityStoreJob", "DicomMoveScuJob", "format_query_item", "log_exports"]
