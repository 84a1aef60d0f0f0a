"""`MaximumStorageCacheSize`: recently read (and, for object storage, written) files kept in memory.

The cache holds stored bytes (compressed or not) keyed by attachment uuid. A uuid's content never
changes (a replaced attachment gets a new uuid), so an entry can only go stale by deletion, and
`remove` evicts it.

Orthanc also keeps each file it writes. Donjon does that only where a read is a network round trip
(S3): a file just written to a folder is in the kernel's page cache already, and a second copy in
the process cost 36 MB of resident memory for 20,000 tiny instances while saving ~10 µs on a later
read of each (docs/benchmarks.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable

from .protocol import StorageArea


class CachingStorage:
    def __init__(self, inner: StorageArea, max_bytes: int, *, keep_written: bool = True):
        self.inner = inner
        self.keep_written = keep_written
        self.max_bytes = max_bytes
        self.max_item = max(max_bytes // 8, 1)  # a single huge file must not flush everything else
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        if hasattr(inner, "start_create"):  # `create` for an event loop, where the inner storage has it
            self.start_create = self._start_create

    def _put(self, uuid: str, data: bytes) -> None:
        if len(data) > self.max_item:
            return
        with self._lock:
            old = self._items.pop(uuid, None)
            if old is not None:
                self._size -= len(old)
            self._items[uuid] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def _get(self, uuid: str) -> bytes | None:
        with self._lock:
            data = self._items.get(uuid)
            if data is not None:
                self._items.move_to_end(uuid)
            return data

    def cached(self, uuid: str) -> bytes | None:
        """The stored bytes when they are in memory, else None (no I/O: an event loop may call it)."""
        return self._get(uuid)

    def read_resident(self, uuid: str) -> bytes | memoryview | None:
        """The stored bytes from memory, or from the kernel's page cache when the inner storage can
        tell (storage/folder.py); None when only a read that may wait for the disk would have them."""
        data = self._get(uuid)
        if data is not None:
            return data
        inner = getattr(self.inner, "read_resident", None)
        return inner(uuid) if inner is not None else None

    def create(self, uuid: str, data: bytes, content_type: int | None = None) -> None:
        self.inner.create(uuid, data, content_type)
        if self.keep_written:
            self._put(uuid, bytes(data))

    def _start_create(self, uuid: str, data: bytes, content_type: int | None = None) -> Awaitable[None]:
        return self._finish_create(self.inner.start_create(uuid, data, content_type), uuid, data)

    async def _finish_create(self, creating: Awaitable[None], uuid: str, data: bytes) -> None:
        await creating
        if self.keep_written:
            self._put(uuid, bytes(data))

    def read(self, uuid: str, content_type: int | None = None) -> bytes:
        data = self._get(uuid)
        if data is None:
            data = self.inner.read(uuid, content_type)
            self._put(uuid, data)
        return data

    def read_range(self, uuid: str, start: int, end: int, content_type: int | None = None) -> bytes:
        data = self._get(uuid)
        if data is None:
            return self.inner.read_range(uuid, start, end, content_type)
        if end > len(data):
            from ..errors import ErrorCode, OrthancError

            raise OrthancError(ErrorCode.BAD_RANGE)
        return data[start:end]

    def remove(self, uuid: str, content_type: int | None = None) -> None:
        with self._lock:
            old = self._items.pop(uuid, None)
            if old is not None:
                self._size -= len(old)
        self.inner.remove(uuid, content_type)

    def has_read_range(self) -> bool:
        return self.inner.has_read_range()

    def path_of(self, uuid: str) -> str | None:
        return self.inner.path_of(uuid)

    def scan(self) -> list[str]:
        return self.inner.scan()

    def cached_bytes(self) -> int:
        return self._size

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)
