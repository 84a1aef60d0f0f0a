"""In-process listeners of changes (stored or not), the hook for plugins and the stable monitor."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    change_type: int
    level: int
    public_id: str
    date: str


Listener = Callable[[ChangeEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def publish(self, events: list[ChangeEvent]) -> None:
        if not self._listeners:
            return
        held = getattr(self._local, "held", None)
        if held is not None:
            held.extend(events)
            return
        for event in events:
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("change listener failed")

    @contextmanager
    def holding(self) -> Iterator[list[ChangeEvent]]:
        """Events this thread publishes within the block are kept in the list yielded instead of
        delivered: a write whose transaction commits later publishes them then (or drops them)."""
        held: list[ChangeEvent] = []
        self._local.held = held
        try:
            yield held
        finally:
            self._local.held = None
