"""Short writes of several connections in one turn of the event loop share one transaction
(api/short_writes.py): each answer must be the one its own transaction would have given, a failing
write must leave the others, change events must follow the commit, and a busy writer must send the
writes to a worker rather than make the loop wait."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from donjon.api.app import Api
from donjon.core import labels
from donjon.core import metadata as md
from donjon.core.context import ServerContext
from donjon.core.events import ChangeEvent
from donjon.core.store import StoreOrigin
from donjon.errors import ErrorCode, OrthancError
from donjon.registry import ChangeType, Level
from tests.faults.crafted import base_dataset, to_bytes
from tests.support.aio import run_in_own_thread
from tests.support.contexts import USER_KEY, context_fixture  # noqa: F401 - the `ctx` fixture

KEY = USER_KEY


@pytest.fixture
def api(ctx: ServerContext) -> Iterator[Api]:
    made = Api(ctx, 2)
    yield made
    made.pool.shutdown()


class _Transactions:
    """The sizes of the loop's shared transactions (the real method, recorded)."""

    def __init__(self, ctx: ServerContext):
        self.sizes: list[int] = []
        real = ctx.index.write_many_if_idle  # type: ignore[attr-defined]

        def recording(fns: list[Any], durable: bool = True) -> Any:
            self.sizes.append(len(fns))
            return real(fns, durable)

        ctx.index.write_many_if_idle = recording  # type: ignore[attr-defined]


def _instance(ctx: ServerContext, patient: str = "P") -> str:
    return ctx.store(to_bytes(base_dataset(patient)), StoreOrigin()).ids.instance


def _gather(api: Api, *writes: tuple[Any, ...]) -> list[Any]:
    """The writes started in one turn of the loop, `together`; their outcomes (value or exception)."""
    async def main() -> list[Any]:
        return list(await asyncio.gather(*(api.run_short_write(*w, together=True) for w in writes),
                                         return_exceptions=True))
    return run_in_own_thread(main)  # type: ignore[no-any-return]


def test_writes_of_one_turn_share_one_transaction(ctx: ServerContext, api: Api) -> None:
    first, second = _instance(ctx, "A"), _instance(ctx, "B")
    transactions = _Transactions(ctx)
    outcomes = _gather(api, (md.set_metadata, ctx, first, KEY, "one", None),
                       (md.set_metadata, ctx, first, KEY, "two", None),  # the same key again: revision 1
                       (md.set_metadata, ctx, second, KEY, "three", None),
                       (labels.add_label, ctx, Level.INSTANCE, second, "shared"))
    assert outcomes == [0, 1, 0, None]
    assert transactions.sizes == [4]
    assert md.get_metadata(ctx, Level.INSTANCE, first, KEY) == ("two", 1)
    assert md.get_metadata(ctx, Level.INSTANCE, second, KEY) == ("three", 0)
    assert labels.has_label(ctx, Level.INSTANCE, second, "shared")


def test_a_failing_write_leaves_the_others(ctx: ServerContext, api: Api) -> None:
    instance = _instance(ctx)
    outcomes = _gather(api, (md.set_metadata, ctx, instance, KEY, "kept", None),
                       (md.set_metadata, ctx, "0" * 8 + "-unknown", KEY, "lost", None),
                       (md.delete_metadata, ctx, instance, KEY + 1, None))  # absent: 404
    assert outcomes[0] == 0
    assert isinstance(outcomes[1], OrthancError) and outcomes[1].code == ErrorCode.UNKNOWN_RESOURCE
    assert isinstance(outcomes[2], OrthancError) and outcomes[2].code == ErrorCode.UNKNOWN_RESOURCE
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("kept", 0)


def test_events_follow_the_commit_and_not_a_failed_write(ctx: ServerContext, api: Api) -> None:
    instance = _instance(ctx)
    seen: list[tuple[ChangeEvent, bool]] = []

    def listener(event: ChangeEvent) -> None:  # what a reader sees when the event arrives
        seen.append((event, md.get_metadata(ctx, Level.INSTANCE, instance, KEY) is not None))

    ctx.events.subscribe(listener)
    _gather(api, (md.set_metadata, ctx, instance, KEY, "value", None),
            (md.set_metadata, ctx, "0" * 8 + "-unknown", KEY, "lost", None))
    assert [(e.change_type, e.public_id, committed) for e, committed in seen] == [
        (ChangeType.UPDATED_METADATA, instance, True)]


def test_a_busy_writer_sends_the_writes_to_a_worker(ctx: ServerContext, api: Api) -> None:
    instance = _instance(ctx)
    inside, release = threading.Event(), threading.Event()

    def hold(tx: Any) -> None:
        inside.set()
        release.wait(10)

    holder = threading.Thread(target=ctx.index.write, args=(hold,))
    holder.start()
    try:
        assert inside.wait(10)
        threading.Timer(0.2, release.set).start()
        outcomes = _gather(api, (md.set_metadata, ctx, instance, KEY, "a", None),
                           (labels.add_label, ctx, Level.INSTANCE, instance, "b"))
        assert outcomes == [0, None]
    finally:
        release.set()
        holder.join()
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("a", 0)


def test_a_write_alone_runs_at_once(ctx: ServerContext, api: Api) -> None:
    """Without `together` (one connection open) a write does not wait for the loop's next turn."""
    instance = _instance(ctx)
    ctx.index_sync.flush()  # (the store's deferred sync done: nothing else will hold the writer)
    transactions = _Transactions(ctx)

    async def main() -> int:
        write = api.run_short_write(md.set_metadata, ctx, instance, KEY, "now", None)
        try:
            write.send(None)
        except StopIteration as done:  # finished inside its first step: no turn of the loop
            return done.value  # type: ignore[no-any-return]
        raise AssertionError("the write waited")

    assert run_in_own_thread(main) == 0
    assert transactions.sizes == []
