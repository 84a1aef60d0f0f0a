"""Work gathered during one turn of an event loop and run together at its next (the stores and the
short writes that share a transaction), and the futures that answer each piece of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

I = TypeVar("I")  # noqa: E741 - an item


class TurnBatch(Generic[I]):
    """Items queued during one turn of `loop`, handed to `_run` at its next, `max_batch` at a time
    (a bound on the loop's time in one transaction)."""

    max_batch = 64

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.items: list[I] = []

    def _queue(self, item: I) -> None:
        if not self.items:
            self.loop.call_soon(self._flush)
        self.items.append(item)

    def _flush(self) -> None:
        items, self.items = self.items, []
        for start in range(0, len(items), self.max_batch):
            self._run(items[start:start + self.max_batch])

    def _run(self, items: list[I]) -> None:
        raise NotImplementedError


def settle(answer: asyncio.Future[Any], value: Any = None, error: BaseException | None = None) -> None:
    """Set the outcome, unless the request was cancelled meanwhile (nobody reads it then)."""
    if answer.done():
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(value)


def settle_from(work: Awaitable[Any], answer: asyncio.Future[Any]) -> None:
    """Settle `answer` with the outcome of `work` (a worker's future) when it ends."""
    def done(f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            settle(answer, error=asyncio.CancelledError())
        elif f.exception() is not None:
            settle(answer, error=f.exception())
        else:
            settle(answer, f.result())

    asyncio.ensure_future(work).add_done_callback(done)
