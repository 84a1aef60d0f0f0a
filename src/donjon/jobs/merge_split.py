"""`SplitStudy` and `MergeStudy` jobs: move instances into a new study, or into an existing one.

Each instance gets the target StudyInstanceUID and new Series/SOP Instance UIDs (one new series per
original series), is stored through the core store path with the request's origin, and the sources
are deleted by the trailing step unless `KeepSource` (default false here). With `Permissive`, an
instance that cannot be read or stored is skipped (logged, or counted in `FailedInstancesCount` if it
is gone) and the job goes on; its source is then kept, since it was not moved. Merge copies the
Patient/Study module attributes of the target study into the moved instances; Split may replace or
remove those attributes. Neither records `ModifiedFrom`, as Orthanc 1.10.1.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..core.attachments import read_attachment
from ..core.store import StoreOrigin
from ..dicom.modify import UID_ROOTS, Restructuring, module_elements
from ..errors import ErrorCode, OrthancError
from ..registry import ContentType, Level
from .instances import InstancesJob
from .persistence import register_loader

if TYPE_CHECKING:
    from ..core.context import ServerContext


def read_instance(ctx: ServerContext, instance_id: str) -> bytes | None:
    def run(tx: Any) -> Any:
        found = tx.lookup(instance_id)
        if found is None or found[1] != Level.INSTANCE:
            return None
        return tx.attachment(found[0], ContentType.DICOM)
    info = ctx.index.read(run)
    if info is None:
        return None
    try:
        return read_attachment(ctx.storage, info)
    except (OSError, OrthancError):
        return None


class StudyMoveJob(InstancesJob):
    """Base of Split and Merge: store each instance modified by `restructuring`."""

    def __init__(self, ctx: ServerContext, instances: list[str], restructuring: Restructuring,
                 origin: StoreOrigin, keep_source: bool, description: str = "REST API", permissive: bool = False):
        super().__init__(ctx, instances, description, permissive=permissive, trailing_step=True)
        self.restructuring = restructuring
        self.origin = origin
        self.keep_source = keep_source
        self.target_study = ""
        self.not_moved: list[str] = []  # errors skipped in permissive mode: their sources are kept

    def handle_instance(self, instance_id: str) -> bool:
        try:
            return self._move(instance_id)
        except OrthancError:
            if self.permissive:
                self.not_moved.append(instance_id)
            raise

    def _move(self, instance_id: str) -> bool:
        data = read_instance(self.ctx, instance_id)
        if data is None:
            return False
        result = self.ctx.store(self.restructuring.apply_to_bytes(data, self.ctx.default_encoding), self.origin)
        if result.status not in ("Success", "AlreadyStored"):
            raise OrthancError(ErrorCode.CANNOT_STORE_INSTANCE, f"Error while storing a modified instance {instance_id}")
        self.target_study = result.ids.study
        return True

    def handle_trailing_step(self) -> None:
        if not self.keep_source:
            self.delete_sources(self.job_type, skip={*self.failed, *self.not_moved})

    def reset(self) -> None:
        super().reset()
        self.not_moved = []

    def content(self) -> dict[str, Any]:
        out = super().content()
        out.pop("ParentResources", None)
        return out

    def serialize(self) -> dict[str, Any]:
        out = self.serialize_base()
        r = self.restructuring
        out.update({"StudyUID": r.study_uid, "Secret": r.secret,
                    "Replace": [[t, v] for t, v in r.replacements.items()], "Remove": sorted(r.removals),
                    "Origin": asdict(self.origin), "KeepSource": self.keep_source, "TargetStudy": self.target_study,
                    "NotMoved": self.not_moved})
        return out


class SplitStudyJob(StudyMoveJob):
    job_type = "SplitStudy"

    def content(self) -> dict[str, Any]:
        out = super().content()
        if self.target_study:
            out["TargetStudy"] = self.target_study
        out["TargetStudyUID"] = self.restructuring.study_uid
        return out


class MergeStudyJob(StudyMoveJob):
    job_type = "MergeStudy"

    def __init__(self, ctx: ServerContext, instances: list[str], restructuring: Restructuring,
                 origin: StoreOrigin, keep_source: bool, target_study: str, target_instance: str,
                 permissive: bool = False):
        super().__init__(ctx, instances, restructuring, origin, keep_source, permissive=permissive)
        self.target_study = target_study
        self.target_instance = target_instance

    def start(self) -> None:
        if not self.restructuring.copied:  # read again after a restart
            data = read_instance(self.ctx, self.target_instance)
            if data is None:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"The target study has disappeared: {self.target_study}")
            self.restructuring.copied = module_elements(data)

    def content(self) -> dict[str, Any]:
        out = super().content()
        out["TargetStudy"] = self.target_study
        return out

    def serialize(self) -> dict[str, Any]:
        out = super().serialize()
        out["TargetInstance"] = self.target_instance
        return out


def new_study_uid() -> str:
    return f"{UID_ROOTS[Level.STUDY]}.{uuid.uuid4().int}"


def _restructuring(saved: dict[str, Any]) -> Restructuring:
    return Restructuring(study_uid=saved["StudyUID"], secret=saved["Secret"],
                         replacements={int(t): v for t, v in saved.get("Replace", [])},
                         removals={int(t) for t in saved.get("Remove", [])})


def _load_move(job: StudyMoveJob, saved: dict[str, Any]) -> None:
    job.load_base(saved)
    job.not_moved = [str(x) for x in saved.get("NotMoved", [])]


def _load_split(ctx: ServerContext, saved: dict[str, Any]) -> SplitStudyJob:
    job = SplitStudyJob(ctx, [str(x) for x in saved["Instances"]], _restructuring(saved),
                        StoreOrigin(**saved.get("Origin", {})), bool(saved.get("KeepSource", False)),
                        str(saved.get("Description", "REST API")), bool(saved.get("Permissive", False)))
    _load_move(job, saved)
    job.target_study = str(saved.get("TargetStudy", ""))
    return job


def _load_merge(ctx: ServerContext, saved: dict[str, Any]) -> MergeStudyJob:
    job = MergeStudyJob(ctx, [str(x) for x in saved["Instances"]], _restructuring(saved),
                        StoreOrigin(**saved.get("Origin", {})), bool(saved.get("KeepSource", False)),
                        str(saved["TargetStudy"]), str(saved["TargetInstance"]), bool(saved.get("Permissive", False)))
    _load_move(job, saved)
    return job


register_loader(SplitStudyJob.job_type, _load_split)
register_loader(MergeStudyJob.job_type, _load_merge)
