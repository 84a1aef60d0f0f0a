"""Small in-process caches bounded by their number of entries, oldest out first."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def put_bounded(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    """Insert, first evicting the oldest entry (dicts keep insertion order) when `cache` is full.
    Needs no lock: a thread evicting at the same time at worst leaves an entry or two more."""
    if len(cache) >= limit:
        try:
            cache.pop(next(iter(cache)), None)
        except (RuntimeError, StopIteration):  # changed by another thread meanwhile
            pass
    cache[key] = value
