"""Jobs shared by several Donjon processes on one PostgreSQL index (`Lock: false`).

Instead of one registry property that every process would overwrite, each saved job is a row of the
`jobs` table, owned by the process that runs it. The owner saves the row when the job changes (as the
single-process saver does), renews its lease every third of `JobsLeaseDuration`, and releases its
leases when it stops cleanly. Every process looks for rows whose lease ran out (their owner was
killed or stopped) and takes them over: the job is rebuilt from its saved state and continues from its
saved position, as after a restart. A job is thus run by exactly one process at a time. The rows also
carry the job's public status, so any process answers `GET /jobs/{id}` for any job.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import orjson

from .engine import JobsEngine, JobState
from .persistence import POLL, SaveTrigger, restore_record, serialize_record

if TYPE_CHECKING:
    from ..core.context import ServerContext
    from ..index.postgres_jobs import PgJobStore

log = logging.getLogger(__name__)
_COMPLETED = (JobState.SUCCESS, JobState.FAILURE)


class LeasedJobs:
    """The saver of a process in shared mode: job rows, leases and take-overs."""

    def __init__(self, ctx: ServerContext, engine: JobsEngine, store: PgJobStore, lease: int,
                 take_over: bool = True):
        self.ctx = ctx
        self.engine = engine
        self.store = store
        self.lease = max(int(lease), 2)
        self.take_over = take_over
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._saved: dict[str, bytes] = {}  # job id -> what was last written
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="donjon-jobs-leases", daemon=True)

    def start(self) -> None:
        if self.take_over:
            self.claim()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.save()
        try:
            self.store.release(self.owner)
        except Exception:
            log.exception("cannot release the leases of the jobs")

    # -- rows ---------------------------------------------------------------------------------------
    def save(self) -> None:
        with self._lock:
            current: set[str] = set()
            for rec in self.engine.records():
                item = serialize_record(rec)
                if item is None:
                    continue
                current.add(rec.id)
                info = rec.info()
                key = orjson.dumps([item, info["Progress"], info["State"]])
                if self._saved.get(rec.id) == key:
                    continue
                body = orjson.dumps({"Item": item, "Info": info}).decode()
                try:
                    if self.store.put(rec.id, self.owner, rec.state.value, rec.state in _COMPLETED, body,
                                      self.lease):
                        self._saved[rec.id] = key
                    else:
                        log.warning("Job %s was taken over by another process", rec.id)
                        self._saved[rec.id] = key  # do not insist: the row is not ours any more
                except Exception:
                    log.exception("Cannot save job %s", rec.id)
            for gone in set(self._saved) - current:  # deleted, or left the history
                try:
                    self.store.delete(gone, self.owner)
                    del self._saved[gone]
                except Exception:
                    log.exception("Cannot remove job %s", gone)

    def claim(self) -> int:
        """Take over the unfinished jobs of processes that stopped; returns how many."""
        count = 0
        try:
            rows = self.store.claim_expired(self.owner, self.lease)
        except Exception:
            log.exception("Cannot look for jobs to take over")
            return 0
        for job_id, body in rows:
            try:
                item = orjson.loads(body)["Item"]
                rec = restore_record(self.ctx, job_id, item)
            except Exception as e:
                log.warning("Cannot take over job %s, it is dropped: %s", job_id, e)
                try:
                    self.store.delete(job_id, self.owner)
                except Exception:
                    log.exception("Cannot remove job %s", job_id)
                continue
            self.engine.restore(rec)
            count += 1
            log.warning("Job %s (%s) taken over from a process that stopped", job_id, rec.job.job_type)
        if count:
            self.engine.dirty.set()
        return count

    def remote_info(self, job_id: str) -> dict[str, Any] | None:
        """The last saved status of a job run by another process."""
        try:
            body = self.store.get(job_id)
        except Exception:
            log.exception("Cannot read job %s", job_id)
            return None
        if body is None:
            return None
        info: dict[str, Any] = orjson.loads(body)["Info"]
        return info

    def remote_ids(self) -> list[str]:
        try:
            return self.store.ids()
        except Exception:
            log.exception("Cannot list the jobs")
            return []

    def remote_infos(self) -> dict[str, dict[str, Any]]:
        try:
            return {job_id: orjson.loads(body)["Info"] for job_id, body in self.store.bodies()}
        except Exception:
            log.exception("Cannot list the jobs")
            return {}

    # -- background ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        now = time.monotonic()
        last_renew = last_claim = now
        trigger = SaveTrigger(self.engine, now)
        renew_period = self.lease / 3.0
        claim_period = max(self.lease / 4.0, 1.0)
        while not self._stop.wait(POLL):
            try:
                now = time.monotonic()
                if trigger.due(now):
                    self.save()
                if now - last_renew >= renew_period:
                    last_renew = now
                    self.store.renew(self.owner, self.lease)
                    self.save()  # the public status of running jobs, for the other processes
                if self.take_over and now - last_claim >= claim_period:
                    last_claim = now
                    self.claim()
                    self.store.trim_completed(max(self.engine.history_size, 1))
            except Exception:
                log.exception("jobs lease loop")
