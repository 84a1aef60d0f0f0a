"""The jobs engine alone: states, transitions, priorities, history, persistence format."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pytest

from donjon.errors import ErrorCode, OrthancError
from donjon.jobs.engine import (
    CONTINUE,
    SUCCESS,
    Job,
    JobsEngine,
    JobState,
    StepResult,
    StopReason,
    failure,
    retry,
)
from donjon.jobs.persistence import LOADERS, load_registry, register_loader, serialize_registry


class CountingJob(Job):
    """`steps` steps; each waits on `gate` if given; can fail at a step or raise."""

    job_type = "Counting"

    def __init__(self, steps: int = 3, gate: threading.Event | None = None, fail_at: int | None = None,
                 raise_at: int | None = None, retry_once: bool = False, log: list[str] | None = None,
                 retry_ms: int = 50):
        self.steps = steps
        self.position = 0
        self.gate = gate
        self.fail_at = fail_at
        self.raise_at = raise_at
        self.retry_once = retry_once
        self.retry_ms = retry_ms
        self.stops: list[StopReason] = []
        self.log = log

    def step(self) -> StepResult:
        if self.gate is not None:
            self.gate.wait(5)
        if self.retry_once:
            self.retry_once = False
            return retry(self.retry_ms)
        if self.fail_at == self.position:
            return failure(ErrorCode.NETWORK_PROTOCOL, "boom")
        if self.raise_at == self.position:
            raise OrthancError(ErrorCode.BAD_REQUEST, "raised")
        self.position += 1
        if self.log is not None:
            self.log.append(f"{id(self)}:{self.position}")
        return SUCCESS if self.position >= self.steps else CONTINUE

    def stop(self, reason: StopReason) -> None:
        self.stops.append(reason)

    def reset(self) -> None:
        self.position = 0
        self.fail_at = None

    def progress(self) -> float:
        return self.position / self.steps if self.steps else 1.0

    def content(self) -> dict[str, Any]:
        return {"Position": self.position}

    def serialize(self) -> dict[str, Any]:
        return {"Type": self.job_type, "Steps": self.steps, "Position": self.position}


register_loader("Counting", lambda ctx, saved: _load(saved))


def _load(saved: dict[str, Any]) -> CountingJob:
    job = CountingJob(saved["Steps"])
    job.position = saved["Position"]
    return job


def wait_state(engine: JobsEngine, job_id: str, *states: JobState, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.state(job_id) in states:
            return
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} is {engine.state(job_id)}, not {states}")


@pytest.fixture
def engine():  # type: ignore[no-untyped-def]
    e = JobsEngine(workers=1, history_size=10)
    e.start()
    yield e
    e.stop()


def test_success_and_info_fields(engine: JobsEngine) -> None:
    job_id = engine.submit(CountingJob(3), priority=4)
    wait_state(engine, job_id, JobState.SUCCESS)
    info = engine.info(job_id)
    assert info is not None
    assert info["State"] == "Success" and info["Progress"] == 100 and info["Priority"] == 4
    assert info["ErrorCode"] == 0 and info["ErrorDescription"] == "Success" and info["ErrorDetails"] == ""
    assert info["Type"] == "Counting" and info["Content"] == {"Position": 3}
    for key in ("CreationTime", "CompletionTime", "Timestamp"):
        assert len(info[key]) == len("20190306T095223.750666")
    assert isinstance(info["EffectiveRuntime"], float)
    assert engine.ids() == [job_id]


def test_failure_and_resubmit(engine: JobsEngine) -> None:
    job = CountingJob(3, fail_at=1)
    job_id = engine.submit(job)
    wait_state(engine, job_id, JobState.FAILURE)
    info = engine.info(job_id)
    assert info is not None and info["ErrorCode"] == 9 and info["ErrorDetails"] == "boom"
    assert "CompletionTime" in info and job.stops == [StopReason.FAILURE]
    assert engine.resume(job_id) is False
    assert engine.resubmit(job_id) is True
    wait_state(engine, job_id, JobState.SUCCESS)
    assert engine.resubmit(job_id) is False  # only failed jobs


def test_exception_in_step_becomes_failure(engine: JobsEngine) -> None:
    job_id = engine.submit(CountingJob(3, raise_at=0))
    wait_state(engine, job_id, JobState.FAILURE)
    info = engine.info(job_id)
    assert info is not None and info["ErrorCode"] == 8 and info["ErrorDetails"] == "raised"


def test_pause_resume_cancel_of_pending_job(engine: JobsEngine) -> None:
    gate = threading.Event()
    blocker = engine.submit(CountingJob(1, gate=gate))
    wait_state(engine, blocker, JobState.RUNNING)
    job_id = engine.submit(CountingJob(2))
    assert engine.state(job_id) == JobState.PENDING
    assert engine.pause(job_id) and engine.state(job_id) == JobState.PAUSED
    assert engine.resume(job_id) and engine.state(job_id) == JobState.PENDING
    assert engine.cancel(job_id) and engine.state(job_id) == JobState.FAILURE
    info = engine.info(job_id)
    assert info is not None and info["ErrorCode"] == 37 and info["ErrorDescription"] == "This job was canceled"
    gate.set()
    wait_state(engine, blocker, JobState.SUCCESS)
    assert engine.pause(blocker) is True and engine.state(blocker) == JobState.SUCCESS  # no effect
    assert engine.cancel(blocker) is True and engine.state(blocker) == JobState.SUCCESS
    assert engine.pause("nope") is False and engine.cancel("nope") is False and engine.info("nope") is None


def test_pause_and_cancel_of_running_job_act_between_steps(engine: JobsEngine) -> None:
    gate = threading.Event()
    job = CountingJob(5, gate=gate)
    job_id = engine.submit(job)
    wait_state(engine, job_id, JobState.RUNNING)
    engine.pause(job_id)
    assert engine.state(job_id) == JobState.RUNNING  # the current step is never interrupted
    gate.set()
    wait_state(engine, job_id, JobState.PAUSED)
    assert StopReason.PAUSED in job.stops and 0 < job.position < 5
    gate.clear()
    engine.resume(job_id)
    wait_state(engine, job_id, JobState.RUNNING)
    engine.cancel(job_id)
    gate.set()
    wait_state(engine, job_id, JobState.FAILURE)
    assert job.stops[-1] == StopReason.CANCELED and engine.info(job_id)["ErrorCode"] == 37  # type: ignore[index]


def test_retry_state(engine: JobsEngine) -> None:
    job_id = engine.submit(CountingJob(1, retry_once=True))
    wait_state(engine, job_id, JobState.RETRY, JobState.SUCCESS)
    wait_state(engine, job_id, JobState.SUCCESS)


def test_pause_resume_and_cancel_of_job_in_retry(engine: JobsEngine) -> None:
    """As Orthanc's registry: a job waiting for its retry can be paused (then resumed) or canceled."""
    job = CountingJob(1, retry_once=True, retry_ms=60_000)
    job_id = engine.submit(job)
    wait_state(engine, job_id, JobState.RETRY)
    assert engine.pause(job_id)
    assert engine.state(job_id) == JobState.PAUSED
    time.sleep(0.5)  # the retry scheduler must not wake a paused job up
    assert engine.state(job_id) == JobState.PAUSED
    assert engine.resume(job_id)  # back to Pending at once, without waiting for the retry delay
    wait_state(engine, job_id, JobState.SUCCESS)
    assert job.position == 1

    job = CountingJob(1, retry_once=True, retry_ms=60_000)
    job_id = engine.submit(job)
    wait_state(engine, job_id, JobState.RETRY)
    assert engine.cancel(job_id)
    info = engine.info(job_id)
    assert info is not None and info["State"] == "Failure" and info["ErrorCode"] == ErrorCode.CANCELED_JOB
    assert job.stops[-1] is StopReason.CANCELED and job.position == 0


def test_highest_priority_first_then_fifo(engine: JobsEngine) -> None:
    gate = threading.Event()
    order: list[str] = []
    blocker = engine.submit(CountingJob(1, gate=gate))
    wait_state(engine, blocker, JobState.RUNNING)
    jobs = {}
    for name, prio in (("a", -5), ("b", 0), ("c", 10), ("d", 0)):
        job = CountingJob(1, log=order)
        jobs[id(job)] = name
        engine.submit(job, prio)
    gate.set()
    deadline = time.monotonic() + 5
    while len(order) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [jobs[int(x.split(":")[0])] for x in order] == ["c", "b", "d", "a"]


def test_history_size() -> None:
    engine = JobsEngine(workers=1, history_size=2)
    engine.start()
    try:
        ids = [engine.submit(CountingJob(1)) for _ in range(4)]
        for job_id in ids[2:]:
            engine.wait(job_id)
        assert engine.ids() == sorted(ids[2:])
    finally:
        engine.stop()


def test_synchronous_wait_with_empty_history() -> None:
    engine = JobsEngine(workers=1, history_size=0)
    engine.start()
    try:
        with pytest.raises(OrthancError) as e:
            engine.submit_and_wait(CountingJob(1))
        assert e.value.code == ErrorCode.INEXISTENT_ITEM and "JobsHistorySize" in (e.value.details or "")
    finally:
        engine.stop()


def test_synchronous_failure_raises_job_error(engine: JobsEngine) -> None:
    with pytest.raises(OrthancError) as e:
        engine.submit_and_wait(CountingJob(2, fail_at=0))
    assert e.value.code == ErrorCode.NETWORK_PROTOCOL and e.value.details == "boom"
    assert engine.submit_and_wait(CountingJob(2)) == {"Position": 2}


def test_delete_only_completed(engine: JobsEngine) -> None:
    gate = threading.Event()
    job_id = engine.submit(CountingJob(1, gate=gate))
    wait_state(engine, job_id, JobState.RUNNING)
    assert engine.delete(job_id) is False
    gate.set()
    wait_state(engine, job_id, JobState.SUCCESS)
    assert engine.delete(job_id) is True and engine.info(job_id) is None


def test_registry_round_trip() -> None:
    assert "Counting" in LOADERS
    source = JobsEngine(workers=1, history_size=10)  # not started: jobs stay pending
    pending = source.submit(CountingJob(4), priority=3)
    paused = source.submit(CountingJob(4))
    source.pause(paused)
    done = source.submit(CountingJob(1))
    rec = next(r for r in source.records() if r.id == done)
    rec.job.position = 1  # type: ignore[attr-defined]
    source._complete(rec, JobState.SUCCESS)
    text = serialize_registry(source)
    saved = orjson.loads(text)
    assert saved["Type"] == "JobsRegistry" and set(saved["Jobs"]) == {pending, paused, done}
    assert saved["Jobs"][pending]["Job"] == {"Type": "Counting", "Steps": 4, "Position": 0}

    target = JobsEngine(workers=1, history_size=10)
    assert load_registry(None, target, text.decode()) == 3  # type: ignore[arg-type]
    assert target.state(pending) == JobState.PENDING and target.state(paused) == JobState.PAUSED
    assert target.state(done) == JobState.SUCCESS
    info = target.info(pending)
    assert info is not None and info["Priority"] == 3
    assert info["CreationTime"] == source.info(pending)["CreationTime"]  # type: ignore[index]
    target.start()
    try:
        wait_state(target, pending, JobState.SUCCESS)
        assert target.state(paused) == JobState.PAUSED
    finally:
        target.stop()


def test_unreadable_saved_jobs_are_skipped() -> None:
    engine = JobsEngine()
    bad = orjson.dumps({"Type": "JobsRegistry", "Jobs": {"x": {"State": "Pending", "Job": {"Type": "Nope"}}}})
    assert load_registry(None, engine, bad.decode()) == 0  # type: ignore[arg-type]
    assert load_registry(None, engine, "not json") == 0  # type: ignore[arg-type]
