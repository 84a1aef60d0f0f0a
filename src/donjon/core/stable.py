"""Which patients, studies and series are still receiving instances (not persisted, as in Orthanc)."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger(__name__)

Key = tuple[int, int]  # (level, internal id)


class StableMonitor:
    """An LRU of unstable resources; a resource becomes stable `stable_age` seconds after its last store.

    `on_stable(level, internal_id, public_id)` is called from the monitor thread, oldest first.
    """

    def __init__(self, stable_age: int, on_stable: Callable[[int, int, str], None], period: float = 0.5):
        self.stable_age = stable_age if stable_age > 0 else 60
        self._on_stable = on_stable
        self._period = period
        self._entries: OrderedDict[Key, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="donjon-stable-monitor", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def mark_unstable(self, entries: list[tuple[int, int, str]]) -> None:
        now = time.monotonic()
        with self._lock:
            for level, internal_id, public_id in entries:
                key = (level, internal_id)
                self._entries.pop(key, None)
                self._entries[key] = (now, public_id)

    def forget(self, level: int, internal_id: int) -> None:
        with self._lock:
            self._entries.pop((level, internal_id), None)

    def is_stable(self, level: int, internal_id: int) -> bool:
        return (level, internal_id) not in self._entries

    def _due(self) -> list[tuple[int, int, str]]:
        now = time.monotonic()
        due: list[tuple[int, int, str]] = []
        with self._lock:
            while self._entries:
                key, (stamp, public_id) = next(iter(self._entries.items()))
                if int(now - stamp) > self.stable_age:
                    self._entries.popitem(last=False)
                    due.append((key[0], key[1], public_id))
                else:
                    break
        return due

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            for level, internal_id, public_id in self._due():
                try:
                    self._on_stable(level, internal_id, public_id)
                except Exception:
                    log.exception("cannot record a stable event")
