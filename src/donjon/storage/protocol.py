"""The interface every storage area offers to the core."""

from __future__ import annotations

from typing import Protocol


class StorageArea(Protocol):
    """Files addressed by an attachment uuid; what a file *is* is known only from the index."""

    def create(self, uuid: str, data: bytes) -> None:
        """Write a new file durably; an existing file of that uuid is an error."""

    def read(self, uuid: str) -> bytes: ...

    def read_range(self, uuid: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the file; an error if the file is shorter."""

    def remove(self, uuid: str) -> None:
        """Delete the file; a missing file is not an error."""

    def has_read_range(self) -> bool: ...

    def path_of(self, uuid: str) -> str | None:
        """A local path that can be streamed from, when the area has one."""

    def scan(self) -> list[str]:
        """Uuids of every file present (for orphan checks)."""
