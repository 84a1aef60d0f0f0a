"""A storage area made of the three callbacks of `orthanc.RegisterStorageArea(create, read, remove)`.

Callbacks receive `(uuid, content_type, data)`, `(uuid, content_type)` and `(uuid, content_type)`,
the content type being the attachment's (the SDK's numbers are the index's: 1 DICOM, 3 DICOM until
pixel data, user types from 1024); an unknown type is passed as 0 (`ContentType.UNKNOWN`). A failing
callback is Orthanc's `StorageAreaPlugin` error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ErrorCode, OrthancError
from .guard import log_traceback


class PluginStorageArea:
    def __init__(self, create: Callable[..., Any], read: Callable[..., Any], remove: Callable[..., Any]):
        self._create, self._read, self._remove = create, read, remove

    @staticmethod
    def _call(what: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except (Exception, SystemExit):
            log_traceback(f"Storage{what} callback")
            raise OrthancError(ErrorCode.STORAGE_AREA_PLUGIN, f"The Python Storage{what} callback failed") from None

    def create(self, uuid: str, data: bytes, content_type: int | None = None) -> None:
        self._call("Create", self._create, uuid, int(content_type or 0), bytes(data))

    def read(self, uuid: str, content_type: int | None = None) -> bytes:
        data = self._call("Read", self._read, uuid, int(content_type or 0))
        if not isinstance(data, bytes | bytearray | memoryview):
            raise OrthancError(ErrorCode.STORAGE_AREA_PLUGIN,
                               "The Python StorageRead callback has not returned a byte array")
        return bytes(data)

    def read_range(self, uuid: str, start: int, end: int, content_type: int | None = None) -> bytes:
        data = self.read(uuid, content_type)
        if end > len(data):
            raise OrthancError(ErrorCode.CORRUPTED_FILE, "The file is shorter than expected")
        return data[start:end]

    def remove(self, uuid: str, content_type: int | None = None) -> None:
        self._call("Remove", self._remove, uuid, int(content_type or 0))

    def has_read_range(self) -> bool:
        return False

    def path_of(self, uuid: str) -> str | None:
        return None

    def scan(self) -> list[str]:
        return []
