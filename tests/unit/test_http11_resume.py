"""`_resume`: a coroutine started outside a Task goes on as it would in one (outcome, failure, a bare
yield, cancellation)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from donjon.api.http11 import _resume
from tests.support.aio import run_in_own_thread


def _start(coro: Any) -> asyncio.Task[None]:
    awaited = coro.send(None)  # as `HttpProtocol._start_work` does
    return asyncio.get_running_loop().create_task(_resume(coro, awaited))


def test_results_failures_and_bare_yields_reach_the_coroutine() -> None:
    seen: list[Any] = []

    async def work(ok: asyncio.Future[int], bad: asyncio.Future[int]) -> None:
        seen.append(await ok)
        await asyncio.sleep(0)  # a bare yield
        try:
            await bad
        except ValueError as e:
            seen.append(str(e))
        seen.append(await asyncio.get_running_loop().run_in_executor(None, lambda: 7))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ok, bad = loop.create_future(), loop.create_future()
        task = _start(work(ok, bad))
        loop.call_later(0.01, ok.set_result, 1)
        loop.call_later(0.02, bad.set_exception, ValueError("boom"))
        await task

    run_in_own_thread(main)
    assert seen == [1, "boom", 7]


def test_cancelling_the_task_runs_the_coroutine_clean_up() -> None:
    events: list[str] = []

    async def work(never: asyncio.Future[None]) -> None:
        try:
            await never
        finally:
            events.append("cleaned up")

    async def main() -> asyncio.Future[None]:
        never = asyncio.get_running_loop().create_future()
        task = _start(work(never))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return never

    never = run_in_own_thread(main)
    assert events == ["cleaned up"] and never.cancelled()
