"""The jobs engine of one server context: engine, saved registry, job types."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ..registry import GlobalProperty
from .engine import Job, JobsEngine
from .leases import LeasedJobs
from .persistence import JobsSaver, load_registry

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)


class JobsService:
    """Created and stopped by `ServerContext`; `--no-jobs` skips the reload of saved jobs."""

    def __init__(self, ctx: ServerContext, reload_saved: bool = True):
        from ..dicomweb import jobs as _dicomweb_jobs  # noqa: F401 - job types register their loaders
        from ..network import jobs as _dicom_jobs  # noqa: F401
        from . import archive, merge_split, modification, peer_store  # noqa: F401

        config = ctx.config
        self.ctx = ctx
        self.engine = JobsEngine(config["ConcurrentJobs"], config["JobsHistorySize"])
        self.save_jobs = bool(config["SaveJobs"])
        self.media_archive_size = int(config["MediaArchiveSize"])
        self.saver: JobsSaver | LeasedJobs | None = None
        self.leases: LeasedJobs | None = None
        self._archives: OrderedDict[int, Job] = OrderedDict()
        self._archives_lock = threading.Lock()
        store = getattr(ctx.index, "jobs_store", None)
        if self.save_jobs and ctx.index.shared and store is not None:
            # several processes on one index: a row and a lease per job (jobs/leases.py)
            if not reload_saved:
                log.warning("--no-jobs: the jobs of stopped processes are not taken over")
            self.leases = LeasedJobs(ctx, self.engine, store, ctx.index.settings.lease, take_over=reload_saved)
            self.saver = self.leases
        elif self.save_jobs:
            if reload_saved:
                text = ctx.index.reader().global_property(GlobalProperty.JOBS_REGISTRY)
                if text:
                    count = load_registry(ctx, self.engine, text)
                    if count:
                        log.warning("%d saved jobs were reloaded", count)
            else:
                log.warning("--no-jobs: the saved jobs are not reloaded")
            self.saver = JobsSaver(ctx, self.engine)
        self.engine.start()
        if self.saver is not None:
            self.saver.start()

    # -- status of any job, including those run by other processes (shared index) ------------------
    def info(self, job_id: str) -> dict[str, Any] | None:
        info = self.engine.info(job_id)
        if info is None and self.leases is not None:
            return self.leases.remote_info(job_id)
        return info

    def ids(self) -> list[str]:
        ids = self.engine.ids()
        if self.leases is None:
            return ids
        return sorted(set(ids) | set(self.leases.remote_ids()))

    def all_info(self) -> list[dict[str, Any]]:
        local = {info["ID"]: info for info in self.engine.all_info()}
        if self.leases is not None:
            for job_id, info in self.leases.remote_infos().items():
                local.setdefault(job_id, info)
        return [local[i] for i in sorted(local)]

    def submit(self, job: Job, priority: int = 0) -> str:
        return self.engine.submit(job, priority)

    def submit_and_wait(self, job: Job, priority: int = 0) -> dict[str, Any]:
        return self.engine.submit_and_wait(job, priority)

    def keep_archive(self, job: Job) -> None:
        """`MediaArchiveSize`: only the most recent asynchronous archives keep their ZIP."""
        with self._archives_lock:
            self._archives[id(job)] = job
            dropped = []
            while len(self._archives) > max(self.media_archive_size, 0):
                dropped.append(self._archives.popitem(last=False)[1])
        for old in dropped:
            old.discard_outputs()

    def close(self) -> None:
        self.engine.stop()
        if self.saver is not None:
            self.saver.stop()
        for rec in self.engine.records():
            if rec.job.serialize() is None:
                try:
                    rec.job.discard_outputs()
                except Exception:
                    log.exception("cannot discard the outputs of job %s", rec.id)
