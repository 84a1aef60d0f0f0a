"""A one-line progress bar for long maintenance commands, drawn only on a terminal.

Redrawn at most 5 times a second on the standard error, so it costs nothing measurable; when the
standard error is not a terminal (a log file, CI), nothing is drawn and only the final summary of the
command is printed.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def human_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    def __init__(self, label: str, total: int, total_bytes: int = 0, stream: TextIO | None = None,
                 enabled: bool | None = None):
        self.label = label
        self.total = total
        self.total_bytes = total_bytes
        self.done = 0
        self.bytes = 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()

    def advance(self, count: int = 1, nbytes: int = 0) -> None:
        with self._lock:
            self.done += count
            self.bytes += nbytes
            now = time.monotonic()
            if self.enabled and (now - self._last_draw >= 0.2 or self.done >= self.total):
                self._last_draw = now
                self._draw(now)

    def rate(self) -> float:
        """Bytes per second since the start."""
        elapsed = time.monotonic() - self.started
        return self.bytes / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        fraction = self.done / self.total if self.total else 1.0
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError):
            columns = 0
        if columns < 40:  # unknown (a pseudo-terminal without a size) or too narrow to matter
            columns = 100
        elapsed = now - self.started
        eta = ""
        if 0 < fraction < 1 and elapsed > 1:
            eta = f"  ETA {human_duration(elapsed * (1 - fraction) / fraction)}"
        tail = f" {self.done}/{self.total}  {human_bytes(self.bytes)}  {human_bytes(self.rate())}/s{eta}"
        width = max(10, min(40, columns - len(self.label) - len(tail) - 5))
        filled = int(width * fraction)
        line = f"{self.label} [{'#' * filled}{'.' * (width - filled)}]{tail}"
        self.stream.write("\r" + line[: columns - 1].ljust(columns - 1))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            with self._lock:
                self._draw(time.monotonic())
                self.stream.write("\n")
                self.stream.flush()
