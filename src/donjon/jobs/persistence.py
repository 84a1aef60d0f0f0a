"""`SaveJobs`: the jobs registry kept in the index (global property 5, `JobsRegistry`).

The format is Orthanc's (`{"Type":"JobsRegistry","Jobs":{id: {...}}}`) so that the property is
readable by someone who knows Orthanc. Saves happen ~100 ms after a change (submit, completion,
pause...), every second while a job that stores things moves on (its `Position`), every 10 s while
other jobs run, and once at stop. At start-up,
saved Pending/Running/Retry jobs are queued again, Paused stay paused, completed ones go back to the
history; a job that cannot be read back is skipped with a warning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ..registry import GlobalProperty
from .engine import JobRecord, JobsEngine, JobState, format_time, parse_time

if TYPE_CHECKING:
    from ..core.context import ServerContext
    from .engine import Job

log = logging.getLogger(__name__)

POLL = 0.1  # submissions, completions, pauses... are saved within this delay
PROGRESS_PERIOD = 1.0  # the position of jobs that ask for it (`save_each_step`)
PERIOD = 10.0  # everything else that runs

Loader = Callable[["ServerContext", dict[str, Any]], "Job"]
LOADERS: dict[str, Loader] = {}


def register_loader(job_type: str, loader: Loader) -> None:
    """Each job module declares how to rebuild its saved jobs."""
    LOADERS[job_type] = loader


def serialize_record(rec: JobRecord) -> dict[str, Any] | None:
    """One job as saved (an item of the registry's "Jobs"); None if the job cannot be saved."""
    try:
        saved = rec.job.serialize()
    except Exception:
        log.exception("cannot serialize job %s", rec.id)
        return None
    if saved is None:
        return None
    return {
        "State": rec.state.value,
        "Priority": rec.priority,
        "CreationTime": format_time(rec.creation_time),
        "LastChangeTime": format_time(rec.last_change_time),
        "Runtime": int(rec.effective_runtime() * 1000),
        "ErrorCode": rec.error_code,
        "ErrorDetails": rec.error_details,
        "Job": saved,
    }


def restore_record(ctx: ServerContext, job_id: str, item: dict[str, Any]) -> JobRecord:
    """A saved job back as a record (not yet in an engine); raises if it cannot be read back."""
    body = item["Job"]
    loader = LOADERS.get(body["Type"])
    if loader is None:
        raise ValueError(f"unknown job type {body['Type']}")
    job = loader(ctx, body)
    rec = JobRecord(id=job_id, job=job, priority=int(item["Priority"]),
                    state=JobState(item["State"]),
                    creation_time=parse_time(item["CreationTime"]),
                    last_change_time=parse_time(item["LastChangeTime"]),
                    runtime=int(item.get("Runtime", 0)) / 1000.0,
                    error_code=int(item.get("ErrorCode", 0)),
                    error_details=str(item.get("ErrorDetails", "")))
    rec.refresh()
    return rec


class SaveTrigger:
    """When a saver must write: at once after a change, at most every `PROGRESS_PERIOD` for progress only.

    Shared by the single-process saver (`JobsSaver`) and the shared-mode one (`leases.LeasedJobs`).
    """

    def __init__(self, engine: JobsEngine, now: float):
        self.engine = engine
        self.last_progress = now

    def due(self, now: float) -> bool:
        """True when the jobs must be saved now (the engine's flag that says so is cleared)."""
        if self.engine.dirty.is_set():
            self.engine.dirty.clear()
            return True
        if self.engine.progressed.is_set() and now - self.last_progress >= PROGRESS_PERIOD:
            self.last_progress = now
            self.engine.progressed.clear()
            return True
        return False


def serialize_registry(engine: JobsEngine) -> bytes:
    jobs: dict[str, Any] = {}
    for rec in engine.records():
        item = serialize_record(rec)
        if item is not None:
            jobs[rec.id] = item
    return orjson.dumps({"Type": "JobsRegistry", "Jobs": jobs})


def load_registry(ctx: ServerContext, engine: JobsEngine, text: str) -> int:
    """Restore the saved jobs into `engine` (not started yet); returns how many were restored."""
    try:
        data = orjson.loads(text)
        saved = data["Jobs"]
        if data.get("Type") != "JobsRegistry" or not isinstance(saved, dict):
            raise ValueError("not a jobs registry")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        log.warning("The saved jobs registry cannot be read, it is ignored: %s", e)
        return 0
    count = 0
    ordered = sorted(saved.items(), key=lambda kv: str(kv[1].get("LastChangeTime", "")))
    for job_id, item in ordered:
        try:
            engine.restore(restore_record(ctx, job_id, item))
            count += 1
        except Exception as e:
            log.warning("Cannot restore the saved job %s, it is skipped: %s", job_id, e)
    return count


class JobsSaver:
    """Background thread writing the registry to the index when it changed."""

    def __init__(self, ctx: ServerContext, engine: JobsEngine):
        self.ctx = ctx
        self.engine = engine
        self._stop = threading.Event()
        self._last: bytes | None = None
        self._thread = threading.Thread(target=self._loop, name="donjon-jobs-saver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.save()

    def save(self) -> None:
        text = serialize_registry(self.engine)
        if text == self._last:
            return
        value = text.decode("utf-8")
        try:
            self.ctx.index.write(lambda tx: tx.set_global_property(GlobalProperty.JOBS_REGISTRY, value))
            self._last = text
        except Exception:
            log.exception("Cannot save the jobs registry")

    def _loop(self) -> None:
        last_periodic = time.monotonic()
        trigger = SaveTrigger(self.engine, last_periodic)
        while not self._stop.wait(POLL):
            now = time.monotonic()
            if trigger.due(now):
                self.save()
            elif now - last_periodic >= PERIOD:
                last_periodic = now
                if any(r.state == JobState.RUNNING for r in self.engine.records()):
                    self.save()
