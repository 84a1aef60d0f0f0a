"""Leader/follower group commit for a single-writer database.

The first thread that wants to write while no batch is running becomes the leader: it takes every
pending request (its own included), runs them in one transaction in its own thread and commits once.
Threads that arrive meanwhile wait; when the batch is done, one of them leads the next batch with
everything that accumulated. A lone writer thus pays no thread hand-off, and N concurrent writers
share one fsync.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

T = TypeVar("T")
W = TypeVar("W")


class WriteRequest(Generic[W]):
    __slots__ = ("done", "durable", "error", "fn", "value")

    def __init__(self, fn: Callable[[W], Any], durable: bool = True):
        self.fn = fn
        self.durable = durable
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def succeed(self, value: Any) -> None:
        self.value = value
        self.done = True

    def fail(self, error: BaseException) -> None:
        self.error = error
        self.done = True

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class GroupCommitter(Generic[W]):
    """`run_batch(requests)` must settle every request (succeed or fail) and never raise."""

    def __init__(self, run_batch: Callable[[list[WriteRequest[W]]], None], max_batch: int = 256):
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._pending: list[WriteRequest[W]] = []
        self._busy = False
        self._exclusive_waiting = 0  # threads waiting in `exclusive`: served before any new batch
        self._local = threading.local()

    def in_batch(self) -> bool:
        """True in the leader's thread while it runs a batch (nested writes run inline)."""
        return bool(getattr(self._local, "leading", False))

    def execute(self, fn: Callable[[W], T], durable: bool = True) -> T:
        req: WriteRequest[W] = WriteRequest(fn, durable)
        with self._cond:
            self._pending.append(req)
            while not req.done and (self._busy or self._exclusive_waiting):
                self._cond.wait()
            if req.done:
                return req.outcome()  # type: ignore[no-any-return]
            self._busy = True
            others = [r for r in self._pending if r is not req]
            batch = [req, *others[:self._max_batch - 1]]
            self._pending = others[self._max_batch - 1:]
        self._lead(batch)
        return req.outcome()  # type: ignore[no-any-return]

    def execute_if_idle(self, fn: Callable[[W], T], durable: bool = True) -> tuple[bool, T | None]:
        """(True, value) after running `fn` as a batch of its own in this thread, or (False, None) at
        once, without waiting, when a batch is running or waiting: for callers that must not block."""
        with self._cond:
            if self._busy or self._pending or self._exclusive_waiting:
                return False, None
            self._busy = True
        req: WriteRequest[W] = WriteRequest(fn, durable)
        self._lead([req])
        return True, req.outcome()

    def execute_many_if_idle(self, fns: list[Callable[[W], Any]],
                             durable: bool = True) -> list[WriteRequest[W]] | None:
        """`execute_if_idle` for several functions in one transaction (each in its own savepoint:
        one failing rolls back only itself); their settled requests, or None when busy."""
        with self._cond:
            if self._busy or self._pending or self._exclusive_waiting:
                return None
            self._busy = True
        requests: list[WriteRequest[W]] = [WriteRequest(fn, durable) for fn in fns]
        self._lead(requests)
        return requests

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the writer without a batch (work outside any transaction, e.g. a WAL checkpoint);
        writes arriving meanwhile wait, then go as one batch. Once this waits, no new batch starts:
        a thread that commits back to back (the event loop under load) would otherwise keep the
        writer busy, and wake this one at the end of each batch only for it to wait again (thousands
        of times, each waking costing the writer a hand-over of Python's lock)."""
        with self._cond:
            self._exclusive_waiting += 1
            try:
                while self._busy:
                    self._cond.wait()
            finally:
                self._exclusive_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._cond:  # a waiting writer leads the next batch
                self._busy = False
                self._cond.notify_all()

    def _lead(self, batch: list[WriteRequest[W]]) -> None:
        """Run `batch` in this thread (the busy flag already taken), then hand the lead over."""
        self._local.leading = True
        try:
            self._run_batch(batch)
        except BaseException as e:  # the batch runner must settle requests; never leave one hanging
            for r in batch:
                if not r.done:
                    r.fail(e)
        finally:
            self._local.leading = False
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def pending_count(self) -> int:
        with self._cond:
            return len(self._pending)
