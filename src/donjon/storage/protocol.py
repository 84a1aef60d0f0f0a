"""The interface every storage area offers to the core."""

from __future__ import annotations

from typing import Protocol


class StorageArea(Protocol):
    """Files addressed by an attachment uuid; what a file *is* is known only from the index.

    `content_type` is the attachment's content type, as Orthanc passes it to storage plugins: a folder
    ignores it, an object store names its objects with it (Orthanc's `.dcm`, `.dcm.head`... keys).
    Callers that know the attachment record always pass it; None means "unknown".
    """

    def create(self, uuid: str, data: bytes, content_type: int | None = None) -> None:
        """Write a new file durably; an existing file of that uuid is an error."""

    def read(self, uuid: str, content_type: int | None = None) -> bytes: ...

    def read_range(self, uuid: str, start: int, end: int, content_type: int | None = None) -> bytes:
        """Bytes [start, end) of the file; an error if the file is shorter."""

    def remove(self, uuid: str, content_type: int | None = None) -> None:
        """Delete the file; a missing file is not an error."""

    def has_read_range(self) -> bool: ...

    def path_of(self, uuid: str) -> str | None:
        """A local path that can be streamed from, when the area has one."""

    def scan(self) -> list[str]:
        """Uuids of every file present (for orphan checks)."""
