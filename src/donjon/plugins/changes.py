"""Delivering changes to `RegisterOnChangeCallback` on a thread of their own, as Orthanc's plugin does.

The core only appends to a queue (what it does while committing an instance costs nothing more), and
one thread calls the plugin in order. The plugin may therefore call the REST API from its callback
(an anonymization, a store...) without deadlock: the changes those calls cause are queued behind.
`OrthancStopped` is delivered last: the queue is drained before the server closes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.events import ChangeEvent
from .enums import CHANGE_TO_SDK, JOB_EVENTS, LEVEL_TO_SDK, NO_RESOURCE, ChangeType
from .guard import log_traceback

log = logging.getLogger("donjon.plugins")

_STOP = object()
_SLOW = 10.0  # seconds after which a change callback is reported as slow


class ChangeDispatcher:
    def __init__(self, callback: Callable[[int, int, str], Any]):
        self._callback = callback
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="donjon-plugin-changes", daemon=True)
        self._thread.start()

    # -- producers (any thread) -------------------------------------------------------------------
    def push(self, change_type: int, resource_type: int, resource_id: str) -> None:
        self._queue.put((change_type, resource_type, resource_id))

    def on_event(self, event: ChangeEvent) -> None:
        """An `EventBus` listener: the index's change, in the SDK's numbers (some are not given)."""
        change = CHANGE_TO_SDK.get(event.change_type)
        if change is not None:
            self._queue.put((change, LEVEL_TO_SDK.get(event.level, NO_RESOURCE), event.public_id))

    def on_job(self, event: str, record: Any) -> None:
        """A jobs-engine listener: `JobSubmitted`, `JobSuccess`, `JobFailure` with the job's id."""
        change = JOB_EVENTS.get(event)
        if change is not None:
            self._queue.put((change, NO_RESOURCE, str(record.id)))

    # -- the consumer ---------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            change, level, resource = item
            started = time.monotonic()
            try:
                self._callback(change, level, resource)
            except (Exception, SystemExit):
                log_traceback("on-change callback")
            elapsed = time.monotonic() - started
            if elapsed > _SLOW:
                log.warning("The Python on-change callback took %.1f s (change %d of %s)", elapsed, change,
                            resource or "-")

    def stop(self, timeout: float) -> None:
        """Deliver `OrthancStopped` after every pending change, then end the thread."""
        self.push(ChangeType.ORTHANC_STOPPED, NO_RESOURCE, "")  # type: ignore[attr-defined]
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("The Python on-change callback did not process the pending changes within %g s", timeout)
