"""`_resume`: a coroutine started outside a Task goes on as it would in one (outcome, failure, a bare
yield, cancellation)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from donjon.api.http11 import _resume


def _run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """`asyncio.run` in a thread of its own: a test run earlier in this process may leave a loop
    marked running in the main thread (Playwright's sync API does)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(main())
        except BaseException as e:  # re-raised in the test's thread
            outcome["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


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

    _run(main)
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

    never = _run(main)
    assert events == ["cleaned up"] and never.cancelled()
