"""The storage cache: what it keeps for a folder (reads only) and for object storage (writes too)."""

from __future__ import annotations

import os
import uuid as uuidlib
from pathlib import Path

import pytest

from donjon.errors import OrthancError
from donjon.storage.cache import CachingStorage
from donjon.storage.folder import FolderStorage


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def test_folder_files_are_cached_when_read_not_when_written(tmp_path: Path) -> None:
    folder = FolderStorage(str(tmp_path), fsync=False)
    cache = CachingStorage(folder, 1 << 20, keep_written=False)
    a = new_uuid()
    cache.create(a, b"written once", 1)
    assert cache.cached_bytes() == 0  # the page cache holds it; no second copy in the process
    assert cache.read(a, 1) == b"written once"
    assert cache.cached_bytes() == len(b"written once")
    os.remove(folder.path_of(a) or "")  # now only the cache can answer
    assert cache.read(a, 1) == b"written once"
    assert cache.read_range(a, 0, 7, 1) == b"written"
    with pytest.raises(OrthancError):
        cache.read_range(a, 0, 100, 1)


def test_object_storage_keeps_what_it_writes(tmp_path: Path) -> None:
    folder = FolderStorage(str(tmp_path), fsync=False)  # stands for a remote store: reads counted below
    cache = CachingStorage(folder, 1 << 20, keep_written=True)
    a = new_uuid()
    cache.create(a, bytearray(b"kept"), 1)
    os.remove(folder.path_of(a) or "")
    assert cache.read(a, 1) == b"kept" and cache.cached_bytes() == 4


def test_eviction_order_bounds_and_remove(tmp_path: Path) -> None:
    folder = FolderStorage(str(tmp_path), fsync=False)
    cache = CachingStorage(folder, 80, keep_written=True)  # a single item may take 80 // 8 = 10 bytes
    ids = [new_uuid() for _ in range(9)]
    for u in ids[:8]:
        cache.create(u, b"x" * 10, 1)
    cache.read(ids[0], 1)  # the oldest becomes the most recent
    cache.create(ids[8], b"y" * 10, 1)  # over 80 bytes: the least recently used (ids[1]) goes
    assert cache.cached_bytes() == 80
    for u in ids:
        os.remove(folder.path_of(u) or "")
    assert cache.read(ids[0], 1) == b"x" * 10
    with pytest.raises(OrthancError):
        cache.read(ids[1], 1)
    cache.create(new_uuid(), b"z" * 11, 1)  # larger than one item may be: never cached
    assert cache.cached_bytes() == 80
    cache.remove(ids[0], 1)
    assert cache.cached_bytes() == 70
    with pytest.raises(OrthancError):
        cache.read(ids[0], 1)


def test_cached_answers_from_memory_only(tmp_path: Path) -> None:
    """`cached` (called by the event loop) never touches the disk: None until a read kept the file,
    its bytes after, None again once removed."""
    folder = FolderStorage(str(tmp_path), fsync=False)
    cache = CachingStorage(folder, 1 << 20, keep_written=False)
    a = new_uuid()
    cache.create(a, b"content", 1)
    assert cache.cached(a) is None
    assert cache.read(a, 1) == b"content"
    assert cache.cached(a) == b"content"
    cache.remove(a, 1)
    assert cache.cached(a) is None
