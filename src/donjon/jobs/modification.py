"""`ResourceModification` jobs: modify or anonymize every instance of resources, store the results.

One instance per step: read the stored file, apply the `Modification` (dicom/modify.py), store the
result through the core store path with the request's origin (Orthanc records the REST call that
created the job: Origin `RestApi`, its RemoteIP and HttpUsername), then attach `ModifiedFrom` or
`AnonymizedFrom` to the new instance and to each parent whose Orthanc ID changed. A trailing step
deletes the sources when `KeepSource` is false.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..core.attachments import read_attachment
from ..core.store import StoreOrigin
from ..dicom.modify import Modification
from ..errors import ErrorCode, OrthancError
from ..registry import ContentType, Level, Metadata
from .instances import InstancesJob
from .persistence import register_loader

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)


def _chain(tx: Any, internal_id: int) -> list[str] | None:
    """Public ids patient, study, series, instance of an instance."""
    out: list[str] = []
    row = tx.resource(internal_id)
    while row is not None:
        out.append(row.public_id)
        row = tx.resource(row.parent_id) if row.parent_id is not None else None
    return list(reversed(out)) if len(out) == 4 else None


class ResourceModificationJob(InstancesJob):
    job_type = "ResourceModification"

    def __init__(self, ctx: ServerContext, modification: Modification, instances: list[str],
                 output_level: Level | None, origin: StoreOrigin, keep_source: bool = True,
                 permissive: bool = False, parent_resources: list[str] | None = None,
                 description: str = "REST API"):
        super().__init__(ctx, instances, description, permissive, parent_resources, trailing_step=True)
        self.modification = modification
        self.output_level = output_level  # None: bulk, the answer lists every new resource
        self.origin = origin
        self.keep_source = keep_source
        self.output_id = ""
        self.output_patient = ""
        self.created: dict[int, list[str]] = {int(level): [] for level in Level}

    # -- steps ------------------------------------------------------------------------------------
    def handle_instance(self, instance_id: str) -> bool:
        ctx = self.ctx

        def read(tx: Any) -> tuple[list[str], Any] | None:
            found = tx.lookup(instance_id)
            if found is None or found[1] != Level.INSTANCE:
                return None
            chain = _chain(tx, found[0])
            info = tx.attachment(found[0], ContentType.DICOM)
            return (chain, info) if chain is not None and info is not None else None
        source = ctx.index.read(read)
        if source is None:
            log.warning("Modification job: instance %s has disappeared", instance_id)
            return False
        chain, info = source
        try:
            data = read_attachment(ctx.storage, info)
        except (OSError, OrthancError) as e:
            log.warning("Modification job: cannot read instance %s: %s", instance_id, e)
            return False
        modified = self.modification.apply_to_bytes(data, ctx.default_encoding)
        result = ctx.store(modified, self.origin)
        ids = result.ids
        md_type = Metadata.ANONYMIZED_FROM if self.modification.is_anonymization else Metadata.MODIFIED_FROM
        if result.status == "AlreadyStored" and not self._is_rerun(ids.instance, instance_id, md_type):
            raise OrthancError(ErrorCode.CANNOT_STORE_INSTANCE,
                               f"Error while storing a modified instance {instance_id}")
        if result.status not in ("Success", "AlreadyStored"):
            raise OrthancError(ErrorCode.CANNOT_STORE_INSTANCE,
                               f"Error while storing a modified instance {instance_id}")
        new_chain = list(ids.as_tuple())

        def attach(tx: Any) -> None:
            found = tx.lookup_many(new_chain)
            for level, (old, new) in enumerate(zip(chain, new_chain, strict=True), start=1):
                if (old != new or level == Level.INSTANCE) and new in found:
                    tx.set_metadata(found[new][0], md_type, old)
        ctx.index.write(attach)
        self._record_output(new_chain)
        return True

    def _is_rerun(self, new_id: str, source_id: str, md_type: int) -> bool:
        """An AlreadyStored result of a re-run after a restart (same derived UIDs), not a collision."""
        if new_id == source_id:
            return False
        found = self.ctx.index.reader().resource_metadata(new_id, md_type)
        return found is not None and found[1] in (None, source_id)

    def _record_output(self, chain: list[str]) -> None:
        if self.output_level is not None:
            if not self.output_id:
                self.output_id = chain[int(self.output_level) - 1]
                self.output_patient = chain[0]
            return
        for level, public in enumerate(chain, start=1):
            known = self.created[level]
            if level == Level.INSTANCE or public not in known:
                known.append(public)

    def handle_trailing_step(self) -> None:
        if not self.keep_source:
            self.delete_sources("Modification")

    def reset(self) -> None:
        super().reset()
        self.output_id = self.output_patient = ""
        self.created = {int(level): [] for level in Level}

    # -- status -----------------------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        out = super().content()
        out.pop("ParentResources", None)  # 1.10.1 does not show them for this job type
        out["IsAnonymization"] = self.modification.is_anonymization
        if self.output_level is not None:
            if self.output_id:
                level = self.output_level
                out["ID"] = self.output_id
                out["Path"] = f"/{level.collection}/{self.output_id}"
                out["Type"] = level.type_name
                out["PatientID"] = self.output_patient
        else:
            resources = []
            for level in (Level.INSTANCE, Level.SERIES, Level.STUDY, Level.PATIENT):
                ids = self.created[int(level)]
                for public in (ids if level == Level.INSTANCE else sorted(ids)):
                    resources.append({"Type": level.type_name, "ID": public,
                                      "Path": f"/{level.collection}/{public}"})
            out["Resources"] = resources
        return out

    def serialize(self) -> dict[str, Any]:
        out = self.serialize_base()
        out.update({
            "Modification": self.modification.to_json(),
            "OutputLevel": int(self.output_level) if self.output_level is not None else None,
            "Origin": asdict(self.origin),
            "KeepSource": self.keep_source,
            "OutputID": self.output_id,
            "OutputPatient": self.output_patient,
            "Created": {str(k): v for k, v in self.created.items()},
        })
        return out


def _load(ctx: ServerContext, saved: dict[str, Any]) -> ResourceModificationJob:
    level = saved.get("OutputLevel")
    job = ResourceModificationJob(
        ctx, Modification.from_json(saved["Modification"]), [str(x) for x in saved["Instances"]],
        Level(level) if level is not None else None, StoreOrigin(**saved.get("Origin", {})),
        keep_source=bool(saved.get("KeepSource", True)), permissive=bool(saved.get("Permissive", False)),
        parent_resources=[str(x) for x in saved.get("ParentResources", [])],
        description=str(saved.get("Description", "REST API")))
    job.load_base(saved)
    job.output_id = str(saved.get("OutputID", ""))
    job.output_patient = str(saved.get("OutputPatient", ""))
    for k, v in saved.get("Created", {}).items():
        job.created[int(k)] = [str(x) for x in v]
    return job


register_loader(ResourceModificationJob.job_type, _load)
