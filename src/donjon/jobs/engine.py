"""The jobs engine: a priority queue, `ConcurrentJobs` workers, Orthanc's states and history.

A job is any object implementing `Job`: the engine calls `step()` until it answers something else
than "continue", and acts on pause/cancel requests *between* steps, never inside one. The public
status (`Progress`, `Content`) is the snapshot taken after the last step, as in Orthanc. The engine
knows nothing of job types; `jobs.registry` turns saved jobs back into objects.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

from ..errors import ErrorCode, OrthancError, describe

log = logging.getLogger(__name__)

TICK = 0.2  # idle workers and the retry scheduler wake up every 200 ms (Orthanc's value)
REFRESH = 0.1  # the public status of a running job is refreshed at most this often (and at its end)


class JobState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILURE = "Failure"
    PAUSED = "Paused"
    RETRY = "Retry"


class StopReason(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    PAUSED = "paused"
    CANCELED = "canceled"
    RETRY = "retry"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class StepResult:
    kind: str  # continue, success, failure, retry
    code: int = 0
    details: str = ""
    retry_ms: int = 0


CONTINUE = StepResult("continue")
SUCCESS = StepResult("success")


def failure(code: int, details: str = "") -> StepResult:
    return StepResult("failure", int(code), details)


def retry(ms: int) -> StepResult:
    return StepResult("retry", retry_ms=ms)


@dataclass
class JobOutput:
    """A file produced by a job (`GET /jobs/{id}/{key}`)."""

    path: str
    mime: str
    filename: str

    def discard(self) -> None:
        try:
            os.unlink(self.path)
        except OSError:
            pass


class Job(ABC):
    """What a job type implements. Steps run in a worker thread, one at a time per job."""

    job_type: str = "Job"

    def start(self) -> None:  # noqa: B027 - optional hook
        """Called before the first step of each run (after submit, resume, restart)."""

    @abstractmethod
    def step(self) -> StepResult: ...

    def stop(self, reason: StopReason) -> None:  # noqa: B027 - optional hook
        """The job stops running (to close connections, delete temporary files...)."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """The server stops: unblock a step that waits on something outside (e.g. a slow client)."""

    def reset(self) -> None:
        """Back to the first step (resubmit after a failure)."""
        raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, f"A {self.job_type} job cannot be resubmitted")

    @abstractmethod
    def progress(self) -> float: ...

    @abstractmethod
    def content(self) -> dict[str, Any]: ...

    def serialize(self) -> dict[str, Any] | None:
        """The job's state for `SaveJobs`, with a "Type" member; None if it cannot be saved."""
        return None

    def output(self, key: str) -> JobOutput | None:
        return None

    def discard_outputs(self) -> None:  # noqa: B027 - optional hook
        """The job leaves the registry: free what its outputs hold."""


def format_time(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%S.%f")


def parse_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return datetime.strptime(text, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class JobRecord:
    """The engine's bookkeeping around one job."""

    id: str
    job: Job
    priority: int
    state: JobState = JobState.PENDING
    creation_time: datetime = field(default_factory=_now)
    last_change_time: datetime = field(default_factory=_now)
    runtime: float = 0.0  # seconds spent Running in previous runs
    run_started: float | None = None  # monotonic time of the current run
    error_code: int = 0
    error_details: str = ""
    pause_requested: bool = False
    cancel_requested: bool = False
    retry_at: float = 0.0
    progress: float = 0.0
    content: dict[str, Any] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def effective_runtime(self) -> float:
        extra = time.monotonic() - self.run_started if self.run_started is not None else 0.0
        return self.runtime + extra

    def refresh(self) -> None:
        try:
            self.progress = min(1.0, max(0.0, float(self.job.progress())))
            self.content = self.job.content()
        except Exception:
            log.exception("cannot read the status of job %s", self.id)

    def info(self) -> dict[str, Any]:
        now = _now()
        runtime = self.effective_runtime()
        out: dict[str, Any] = {
            "ID": self.id,
            "Type": self.job.job_type,
            "State": self.state.value,
            "Priority": self.priority,
            "Progress": round(self.progress * 100),
            "CreationTime": format_time(self.creation_time),
            "EffectiveRuntime": round(runtime, 3),
            "ErrorCode": self.error_code,
            "ErrorDescription": describe(self.error_code),
            "ErrorDetails": self.error_details,
            "Timestamp": format_time(now),
            "Content": self.content,
        }
        if self.state in (JobState.SUCCESS, JobState.FAILURE):
            out["CompletionTime"] = format_time(self.last_change_time)
        if self.state == JobState.RUNNING and self.progress > 0.01 and runtime > 0:
            remaining = runtime / self.progress * (1.0 - self.progress)
            out["EstimatedTimeOfArrival"] = format_time(now + timedelta(seconds=remaining))
        return out


Listener = Callable[[str, JobRecord], None]


class JobsEngine:
    """Registry + pending queue + workers. Every public method is thread-safe."""

    def __init__(self, workers: int = 2, history_size: int = 10):
        self.workers_count = workers if workers > 0 else (os.cpu_count() or 1)
        self.history_size = history_size
        self._lock = threading.Condition()
        self._jobs: dict[str, JobRecord] = {}
        self._pending: list[tuple[int, int, str]] = []  # (-priority, seq, id): highest priority, then FIFO
        self._seq = itertools.count()
        self._completed: deque[str] = deque()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._started = False
        self.listeners: list[Listener] = []  # (event, record): submitted, success, failure, changed
        self.dirty = threading.Event()  # set on every change that persistence should save soon
        self.progressed = threading.Event()  # a job that asks for it moved on (saved less often)

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        for i in range(self.workers_count):
            t = threading.Thread(target=self._worker, name=f"donjon-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._retry_scheduler, name="donjon-job-retry", daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Workers finish their current step; running jobs stay Running (saved as such)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            running = [r.job for r in self._jobs.values() if r.state == JobState.RUNNING]
        for job in running:
            try:
                job.abort()
            except Exception:
                log.exception("cannot abort a running job")
        for t in self._threads:
            t.join(timeout=60)
        self._threads.clear()
        with self._lock:
            for rec in self._jobs.values():
                rec.done.set()

    # -- submission -----------------------------------------------------------------------------
    def submit(self, job: Job, priority: int = 0) -> str:
        rec = JobRecord(id=str(uuid.uuid4()), job=job, priority=priority)
        rec.refresh()
        with self._lock:
            self._jobs[rec.id] = rec
            self._push(rec)
        self._emit("submitted", rec)
        return rec.id

    def wait(self, job_id: str) -> JobRecord | None:
        """Block until the job is completed; None if it left the registry in the meantime."""
        with self._lock:
            rec = self._jobs.get(job_id)
        if rec is None:
            return None
        rec.done.wait()
        with self._lock:
            if self._jobs.get(job_id) is not rec or rec.state not in (JobState.SUCCESS, JobState.FAILURE):
                return None
            return rec

    def submit_and_wait(self, job: Job, priority: int = 0) -> dict[str, Any]:
        """Orthanc's synchronous mode: the job's Content, or its error as an exception."""
        job_id = self.submit(job, priority)
        rec = self.wait(job_id)
        if rec is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM, 'Cannot retrieve the status of the job, make sure '
                                                          'that "JobsHistorySize" is not 0')
        if rec.state == JobState.FAILURE:
            raise OrthancError(rec.error_code, rec.error_details or None)
        return rec.content

    # -- queries --------------------------------------------------------------------------------
    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._jobs)

    def info(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            rec = self._jobs.get(job_id)
            return rec.info() if rec is not None else None

    def all_info(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._jobs[i].info() for i in sorted(self._jobs)]

    def state(self, job_id: str) -> JobState | None:
        with self._lock:
            rec = self._jobs.get(job_id)
            return rec.state if rec is not None else None

    def output(self, job_id: str, key: str) -> JobOutput | None:
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None or rec.state != JobState.SUCCESS:
                return None
            job = rec.job
        return job.output(key)

    def discard_output(self, job_id: str) -> None:
        with self._lock:
            rec = self._jobs.get(job_id)
        if rec is not None:
            rec.job.discard_outputs()

    def records(self) -> list[JobRecord]:
        with self._lock:
            return list(self._jobs.values())

    # -- actions (False = Orthanc's "no answer": 400 with an empty body) -------------------------
    def pause(self, job_id: str) -> bool:
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None:
                return False
            if rec.state in (JobState.PENDING, JobState.RETRY):
                self._remove_pending(job_id)
                self._set_state(rec, JobState.PAUSED)
            elif rec.state == JobState.RUNNING:
                rec.pause_requested = True
        self.dirty.set()
        return True

    def resume(self, job_id: str) -> bool:
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None or rec.state != JobState.PAUSED:
                return False
            rec.pause_requested = False
            self._push(rec)
        self.dirty.set()
        return True

    def cancel(self, job_id: str) -> bool:
        finished = None
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None:
                return False
            if rec.state in (JobState.PENDING, JobState.RETRY, JobState.PAUSED):
                self._remove_pending(job_id)
                rec.error_code = ErrorCode.CANCELED_JOB
                rec.error_details = ""
                self._complete(rec, JobState.FAILURE)
                finished = rec
            elif rec.state == JobState.RUNNING:
                rec.cancel_requested = True
        if finished is not None:
            try:
                finished.job.stop(StopReason.CANCELED)
            except Exception:
                log.exception("job %s failed to stop", job_id)
            self._emit("failure", finished)
        self.dirty.set()
        return True

    def resubmit(self, job_id: str) -> bool:
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None or rec.state != JobState.FAILURE:
                return False
            rec.job.reset()  # may raise (archives cannot be resubmitted)
            try:
                self._completed.remove(job_id)
            except ValueError:
                pass
            rec.runtime = 0.0
            rec.error_code = 0
            rec.error_details = ""
            rec.done.clear()
            self._push(rec)
        self.dirty.set()
        return True

    def delete(self, job_id: str) -> bool:
        """Remove a completed job and its outputs from the history."""
        with self._lock:
            rec = self._jobs.get(job_id)
            if rec is None or rec.state not in (JobState.SUCCESS, JobState.FAILURE):
                return False
            del self._jobs[job_id]
            try:
                self._completed.remove(job_id)
            except ValueError:
                pass
        rec.job.discard_outputs()
        rec.done.set()
        self.dirty.set()
        return True

    # -- reload ---------------------------------------------------------------------------------
    def restore(self, rec: JobRecord) -> None:
        """Put back a job read from the saved registry (§6 of jobs.md)."""
        with self._lock:
            self._jobs[rec.id] = rec
            if rec.state in (JobState.PENDING, JobState.RUNNING, JobState.RETRY):
                rec.state = JobState.PENDING
                self._push(rec, keep_state=True)
            elif rec.state in (JobState.SUCCESS, JobState.FAILURE):
                rec.done.set()
                self._completed.append(rec.id)
                self._trim_history()

    # -- internals (called with the lock held unless stated) --------------------------------------
    def _push(self, rec: JobRecord, keep_state: bool = False) -> None:
        rec.retry_at = 0.0
        if not keep_state:
            self._set_state(rec, JobState.PENDING)
        heapq.heappush(self._pending, (-rec.priority, next(self._seq), rec.id))
        self._lock.notify()

    def _remove_pending(self, job_id: str) -> None:
        before = len(self._pending)
        self._pending = [e for e in self._pending if e[2] != job_id]
        if len(self._pending) != before:
            heapq.heapify(self._pending)

    def _set_state(self, rec: JobRecord, state: JobState) -> None:
        rec.state = state
        rec.last_change_time = _now()

    def _complete(self, rec: JobRecord, state: JobState) -> None:
        self._set_state(rec, state)
        rec.done.set()
        self._completed.append(rec.id)
        self._trim_history()

    def _trim_history(self) -> None:
        while len(self._completed) > self.history_size:
            old = self._completed.popleft()
            rec = self._jobs.pop(old, None)
            if rec is not None:
                rec.done.set()
                try:
                    rec.job.discard_outputs()
                except Exception:
                    log.exception("cannot discard the outputs of job %s", old)

    def _take(self) -> JobRecord | None:
        with self._lock:
            while not self._stopping:
                while self._pending:
                    _, _, job_id = heapq.heappop(self._pending)
                    rec = self._jobs.get(job_id)
                    if rec is not None and rec.state == JobState.PENDING:
                        self._set_state(rec, JobState.RUNNING)
                        rec.error_code = 0
                        rec.error_details = ""
                        rec.run_started = time.monotonic()
                        return rec
                self._lock.wait(TICK)
            return None

    def _worker(self) -> None:
        while True:
            rec = self._take()
            if rec is None:
                return
            try:
                self._run(rec)
            except Exception:
                log.exception("job %s: unexpected error in the engine", rec.id)

    def _end_run(self, rec: JobRecord) -> None:
        if rec.run_started is not None:
            rec.runtime += time.monotonic() - rec.run_started
            rec.run_started = None

    def _run(self, rec: JobRecord) -> None:
        job = rec.job
        result: StepResult | None = None
        last_refresh = 0.0
        try:
            job.start()
        except OrthancError as e:
            result = failure(e.code, e.details or "")
        except Exception as e:
            log.exception("job %s failed to start", rec.id)
            result = failure(ErrorCode.INTERNAL_ERROR, str(e))
        while result is None:
            with self._lock:
                if self._stopping:
                    self._end_run(rec)  # stays Running: saved as such, back as Pending after a restart
                    reason = StopReason.SHUTDOWN
                elif rec.pause_requested:
                    rec.pause_requested = False
                    self._end_run(rec)
                    self._set_state(rec, JobState.PAUSED)
                    reason = StopReason.PAUSED
                elif rec.cancel_requested:
                    rec.cancel_requested = False
                    self._end_run(rec)
                    rec.error_code = ErrorCode.CANCELED_JOB
                    rec.error_details = ""
                    self._complete(rec, JobState.FAILURE)
                    reason = StopReason.CANCELED
                else:
                    reason = None
            if reason is not None:
                self._stop_job(rec, reason)
                self.dirty.set()
                if reason is StopReason.CANCELED:
                    self._emit("failure", rec)
                return
            try:
                outcome = job.step()
            except OrthancError as e:
                outcome = failure(e.code, e.details or "")
            except Exception as e:
                log.exception("job %s: step failed", rec.id)
                outcome = failure(ErrorCode.INTERNAL_ERROR, str(e))
            if outcome.kind != "continue":
                result = outcome
                continue
            now = time.monotonic()
            if now - last_refresh >= REFRESH:
                last_refresh = now
                with self._lock:
                    rec.refresh()
                self._emit("changed", rec)
            if getattr(job, "save_each_step", False):
                self.progressed.set()
        self._finish(rec, result)

    def _finish(self, rec: JobRecord, result: StepResult) -> None:
        with self._lock:
            rec.refresh()
            self._end_run(rec)
            rec.pause_requested = rec.cancel_requested = False
            if result.kind == "success":
                rec.error_code = 0
                rec.error_details = ""
                self._complete(rec, JobState.SUCCESS)
                reason, event = StopReason.SUCCESS, "success"
            elif result.kind == "retry":
                self._set_state(rec, JobState.RETRY)
                rec.retry_at = time.monotonic() + result.retry_ms / 1000.0
                reason, event = StopReason.RETRY, "changed"
            else:
                rec.error_code = result.code
                rec.error_details = result.details
                self._complete(rec, JobState.FAILURE)
                reason, event = StopReason.FAILURE, "failure"
        self._stop_job(rec, reason)
        self.dirty.set()
        self._emit(event, rec)

    @staticmethod
    def _stop_job(rec: JobRecord, reason: StopReason) -> None:
        try:
            rec.job.stop(reason)
        except Exception:
            log.exception("job %s failed to stop", rec.id)

    def _retry_scheduler(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                now = time.monotonic()
                for rec in self._jobs.values():
                    if rec.state == JobState.RETRY and rec.retry_at <= now:
                        self._push(rec)
                self._lock.wait(TICK)

    def _emit(self, event: str, rec: JobRecord) -> None:
        if event != "changed":
            self.dirty.set()
        for listener in list(self.listeners):
            try:
                listener(event, rec)
            except Exception:
                log.exception("job listener failed")
