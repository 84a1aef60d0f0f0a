"""Jobs over a list of instances, one instance per step, with an optional trailing step.

The resources of the request are expanded into their instances when the job is created (later
arrivals are not included). `Permissive` decides what a missing instance or an error does
(jobs.md §7): a missing instance goes to `FailedInstances` (then, not permissive → the job fails);
an error fails the job, or is only logged if permissive.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, OrthancError
from ..registry import Level
from .engine import CONTINUE, SUCCESS, Job, StepResult, failure

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)


def expand_instances(ctx: ServerContext, public_ids: list[str], level: Level | None = None,
                     missing_error: OrthancError | None = None) -> list[str]:
    """The instances below each resource, in index order; unknown ids raise `missing_error`."""
    def run(tx: Any) -> list[str]:
        out: list[str] = []
        for pub in public_ids:
            found = tx.lookup(pub)
            if found is None or (level is not None and found[1] != level):
                raise missing_error or OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            ids = tx.descendants(found[0], Level.INSTANCE)
            names = tx.public_ids(ids)
            out.extend(names[i] for i in ids)
        return out
    return ctx.index.read(run)


class InstancesJob(Job):
    """Base of set-of-instances jobs: subclasses implement `handle_instance`."""

    save_each_step = True

    def __init__(self, ctx: ServerContext, instances: list[str], description: str = "REST API",
                 permissive: bool = False, parent_resources: list[str] | None = None,
                 trailing_step: bool = False):
        self.ctx = ctx
        self.instances = list(instances)
        self.description = description
        self.permissive = permissive
        self.parent_resources = list(parent_resources or [])
        self.trailing_step = trailing_step
        self.position = 0
        self.failed: list[str] = []

    # -- to implement -------------------------------------------------------------------------
    def handle_instance(self, instance_id: str) -> bool:
        """Do the work for one instance; False means "not done" (the instance is gone)."""
        raise NotImplementedError

    def handle_trailing_step(self) -> None:
        """Run once after every instance (e.g. delete the sources)."""

    def delete_sources(self, name: str, skip: set[str] | None = None) -> None:
        """The trailing step of jobs that store new instances in place of theirs: delete every source
        (but those in `skip`, which were not copied).

        An instance that cannot be deleted (already gone...) is logged as "`name` job: ...", not fatal.
        """
        for instance in self.instances:
            if skip and instance in skip:
                continue
            try:
                self.ctx.delete(Level.INSTANCE, instance)
            except OrthancError as e:
                log.warning("%s job: cannot delete the source instance %s: %s", name, instance, e)

    # -- Job --------------------------------------------------------------------------------------
    def steps_count(self) -> int:
        return len(self.instances) + (1 if self.trailing_step else 0)

    def step(self) -> StepResult:
        total = self.steps_count()
        if self.position >= total:
            return SUCCESS
        if self.position < len(self.instances):
            instance = self.instances[self.position]
            try:
                done = self.handle_instance(instance)
            except OrthancError as e:
                if not self.permissive:
                    return failure(e.code, e.details or "")
                log.warning("%s job: error on instance %s (ignored, permissive): %s",
                            self.job_type, instance, e.details or e.description)
                done = True
            if not done:  # counted even when it fails the job, as Orthanc's SetOfInstancesJob
                self.failed.append(instance)
                if not self.permissive:
                    return failure(ErrorCode.INTERNAL_ERROR)
        else:
            self.handle_trailing_step()
        self.position += 1
        return SUCCESS if self.position >= total else CONTINUE

    def reset(self) -> None:
        self.position = 0
        self.failed = []

    def progress(self) -> float:
        total = self.steps_count()
        return 1.0 if total == 0 else self.position / total

    def content(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Description": self.description,
            "InstancesCount": len(self.instances),
            "FailedInstancesCount": len(self.failed),
        }
        if self.parent_resources:
            out["ParentResources"] = list(self.parent_resources)
        return out

    def serialize_base(self) -> dict[str, Any]:
        return {"Type": self.job_type, "Description": self.description, "Permissive": self.permissive,
                "Position": self.position, "Instances": self.instances, "FailedInstances": self.failed,
                "ParentResources": self.parent_resources, "TrailingStep": self.trailing_step}

    def load_base(self, saved: dict[str, Any]) -> None:
        self.position = int(saved.get("Position", 0))
        self.failed = [str(x) for x in saved.get("FailedInstances", [])]
