"""Short writes of several connections in one turn of the event loop share one index transaction.

A metadata PUT, a label or a protection flag is a write of one or two rows: SQLite's BEGIN and
COMMIT are half of it (~17 and ~30 µs here), and with several clients the event loop, which runs
them, is what limits the rate. The writes that arrive in the same turn of the loop run in one
transaction at its next turn, each in a savepoint of its own (`SQLiteIndex.write_many_if_idle`: one
failing rolls back only itself), and each answer waits for the commit, as it did for its own. A
request alone on its server does not wait for a next turn (`Request.together`; `Api.run_short_write`).
The change events a write publishes are held until its transaction has committed, and dropped
with it when it has not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.events import ChangeEvent
from ..core.turn_batches import TurnBatch, settle, settle_from

if TYPE_CHECKING:
    from .app import Api


class _Item:
    __slots__ = ("answer", "args", "events", "fn")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], answer: asyncio.Future[Any]):
        self.fn = fn
        self.args = args
        self.answer = answer
        self.events: list[ChangeEvent] = []


class ShortWrites(TurnBatch[_Item]):
    """The short writes waiting for the loop's next turn (one per server context and loop)."""

    def __init__(self, api: Api, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.api = api

    def add(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> asyncio.Future[Any]:
        answer: asyncio.Future[Any] = self.loop.create_future()
        self._queue(_Item(fn, args, answer))
        return answer

    def _run(self, items: list[_Item]) -> None:
        ctx = self.api.ctx
        try:
            requests = ctx.index.write_many_if_idle(  # type: ignore[attr-defined]
                [self._write(item) for item in items], durable=False)
        except BaseException as e:  # (the index closed): every write fails, none hangs
            for item in items:
                settle(item.answer, error=e)
            return
        if requests is None:  # the writer is busy (a batch of stores): each goes to a worker
            for item in items:
                self._to_worker(item)
            return
        for item, request in zip(items, requests, strict=True):
            try:
                value = request.outcome()
            except BaseException as e:
                settle(item.answer, error=e)
                continue
            ctx.events.publish(item.events)
            settle(item.answer, value)

    def _write(self, item: _Item) -> Callable[[Any], Any]:
        events = self.api.ctx.events

        def write(tx: Any) -> Any:
            with events.holding() as item.events:  # (its `index.write` joins this transaction)
                return item.fn(*item.args)
        return write

    def _to_worker(self, item: _Item) -> None:
        try:
            work = self.api.submit(item.fn, *item.args)
        except BaseException as e:  # (the workers shut down)
            settle(item.answer, error=e)
            return
        settle_from(work, item.answer)
