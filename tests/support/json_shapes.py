"""Comparing JSON answers whose volatile fields (dates, uuids) differ between servers or runs."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def without_keys(value: Any, keys: Collection[str]) -> Any:
    """`value` with every dict entry named in `keys` removed, at any depth."""
    if isinstance(value, dict):
        return {k: without_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without_keys(v, keys) for v in value]
    return value
