"""Running a coroutine from a synchronous test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any


def run_in_own_thread(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
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
