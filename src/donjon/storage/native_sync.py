"""fsync on native threads, awaited by an event loop (caio's C thread pool, Apache-2.0).

A store among others has its file fsynced away from the event loop. On a Python worker thread the
call must take Python's lock to start and to end, and the loop holds that lock while it parses and
indexes the other stores: the fsync started 0.4 to 0.6 ms after it was handed over (timers around the
write, 4 clients). caio's threads are C: the fsync starts at once; Python's lock is taken only to
hand the outcome back to the loop. Without caio (another platform), or with its queue full, a
Python worker does it as before.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

try:
    from caio.thread_aio import Context, Operation
except ImportError:  # pragma: no cover - caio is a dependency on Linux
    Context = Operation = None

_POOL_THREADS = 8  # fsyncs in flight at once (more wait in caio's queue)
_QUEUE = 1024
_context: Any = None
_context_lock = threading.Lock()


def available() -> bool:
    return Context is not None


def fsync(fd: int) -> asyncio.Future[None]:
    """`os.fsync(fd)`, done on a native thread; the descriptor must stay open until it is done."""
    loop = asyncio.get_running_loop()
    if Operation is None:
        return _on_worker(loop, fd)
    done: asyncio.Future[None] = loop.create_future()
    op = Operation.fsync(fd)

    def finished(_result: int) -> None:  # on a caio thread
        try:
            loop.call_soon_threadsafe(_settle, done, op)
        except RuntimeError:  # the loop closed meanwhile (the server stopping): nobody waits
            pass

    op.set_callback(finished)
    try:
        _pool().submit(op)
    except RuntimeError:  # "Thread pool queue full"
        return _on_worker(loop, fd)
    return done


def _settle(done: asyncio.Future[None], op: Any) -> None:
    if done.done():  # its store was cancelled
        return
    if op.error:
        done.set_exception(OSError(op.error, os.strerror(op.error)))
    else:
        done.set_result(None)


def _on_worker(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.Future[None]:
    return loop.run_in_executor(None, os.fsync, fd)


def _pool() -> Any:
    global _context
    if _context is None:
        with _context_lock:
            if _context is None:
                _context = Context(max_requests=_QUEUE, pool_size=_POOL_THREADS)
    return _context
