"""Running a plugin callback so that it can neither bring the server down nor hold ingest forever.

A failing callback is logged with its traceback (as Orthanc's plugin does) and reported to the
caller, who applies Orthanc's fallback. A synchronous callback of the ingest path runs on a worker
of a small pool while the caller waits at most `Python.CallbackTimeout` seconds: past that, the
caller goes on without the answer (the callback keeps running, its result is dropped). A callback
that calls back into the server from a worker runs its nested callbacks inline, so that nesting
cannot exhaust the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

log = logging.getLogger("donjon.plugins")

_WORKERS = 8
_local = threading.local()


class Failed(Exception):
    """The callback raised or did not answer in time (already logged)."""


def log_traceback(what: str) -> None:
    log.error("Error in the Python %s, traceback:\n%s", what, traceback.format_exc().rstrip())


class CallbackRunner:
    def __init__(self, timeout: float):
        self.timeout = timeout
        self._pool = _DaemonPool(_WORKERS, "donjon-plugin")

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The result of `fn`, or `Failed` after logging why."""
        if getattr(_local, "worker", False):
            return self._inline(what, fn, args, kwargs)
        future: Future[Any] = self._pool.submit(self._inline, what, fn, args, kwargs)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            if not future.cancel():
                log.error("The Python %s did not answer within %g seconds (Python.CallbackTimeout): "
                          "going on without it", what, self.timeout)
            else:
                log.error("The Python %s could not start within %g seconds (Python.CallbackTimeout): every "
                          "plugin worker is busy", what, self.timeout)
            raise Failed(what) from None

    async def call_async(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`call` for the event loop: the loop keeps serving while the callback runs."""
        future: Future[Any] = self._pool.submit(self._inline, what, fn, args, kwargs)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            log.error("The Python %s did not answer within %g seconds (Python.CallbackTimeout)", what,
                      self.timeout)
            raise Failed(what) from None

    @staticmethod
    def _inline(what: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return fn(*args, **kwargs)
        except (Exception, SystemExit):
            log_traceback(what)
            raise Failed(what) from None

    def close(self) -> None:
        self._pool.shutdown()


class _DaemonPool:
    """A fixed pool of daemon threads: a callback stuck forever cannot delay the server's exit
    (the workers of `ThreadPoolExecutor` are joined when the interpreter exits)."""

    def __init__(self, workers: int, name: str):
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._workers = workers
        for i in range(workers):
            threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self._queue.put((future, fn, args))
        return future

    def _work(self) -> None:
        _local.worker = True
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as e:  # handed to the waiting caller
                with contextlib.suppress(InvalidStateError):
                    future.set_exception(e)
                continue
            with contextlib.suppress(InvalidStateError):
                future.set_result(result)

    def shutdown(self) -> None:
        for _ in range(self._workers):
            self._queue.put(None)
