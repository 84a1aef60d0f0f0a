"""`orthanc.DicomInstance`: the instance a callback receives (C-STORE filter, stored instance).

Everything is computed lazily from the bytes: a callback that only reads the remote AET costs no
parsing. Metadata come from the index once the instance is stored; before (C-STORE filter), only
what the reception already knows is there (`RemoteAET`, `Origin`, `CalledAET`, `RemoteIP`...).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..core.views import TagFormat
from ..dicom.json_tags import ParsedFile, dicom_to_json, frames_count, read_dicom, simplify
from ..errors import ErrorCode, OrthancError
from ..registry import Level, Metadata, Origin
from .enums import ORIGIN_TO_SDK
from .exceptions import OrthancException, UnsupportedCall

if TYPE_CHECKING:
    from ..core.context import ServerContext
    from ..core.store import StoreOrigin

_FORMATS = {1: TagFormat.FULL, 2: TagFormat.SHORT, 3: TagFormat.HUMAN}


class DicomInstance:
    __module__ = "orthanc"

    def __init__(self, data: bytes, origin: StoreOrigin, ctx: ServerContext | None = None,
                 instance_id: str | None = None):
        self._data = data
        self._origin = origin
        self._ctx = ctx
        self._instance_id = instance_id
        self._parsed: ParsedFile | None = None
        self._metadata: dict[str, str] | None = None

    def __getattr__(self, name: str) -> Any:
        raise UnsupportedCall(f"DicomInstance.{name}")

    # -- the file -------------------------------------------------------------------------------
    def _file(self) -> ParsedFile:
        if self._parsed is None:
            self._parsed = read_dicom(self._data, whole=True)
        return self._parsed

    def _json(self, fmt: TagFormat) -> str:
        default_codec = self._ctx.default_encoding if self._ctx is not None else "latin_1"
        try:
            full = dicom_to_json(self._file(), default_codec, whole=True)
        except OrthancError as e:
            raise OrthancException.of(e) from None
        return json.dumps(simplify(full, fmt), ensure_ascii=False)

    def GetInstanceData(self) -> bytes:
        return self._data

    def SerializeDicomInstance(self) -> bytes:
        return self._data

    def GetInstanceSize(self) -> int:
        return len(self._data)

    def GetInstanceJson(self) -> str:
        return self._json(TagFormat.FULL)

    def GetInstanceSimplifiedJson(self) -> str:
        return self._json(TagFormat.HUMAN)

    def GetInstanceAdvancedJson(self, format: int, flags: int, max_string_length: int) -> str:
        """Flags and the length limit are not applied: Donjon's JSON is Orthanc's default one."""
        fmt = _FORMATS.get(int(format))
        if fmt is None:
            raise OrthancException(ErrorCode.PARAMETER_OUT_OF_RANGE)
        return self._json(fmt)

    def GetInstanceTransferSyntaxUid(self) -> str:
        return self._file().transfer_syntax or ""

    def HasInstancePixelData(self) -> int:
        return 1 if self._file().has_pixel_data else 0

    def GetInstanceFramesCount(self) -> int:
        try:
            return frames_count(self._file())
        except OrthancError:
            return 0

    # -- the reception --------------------------------------------------------------------------
    def GetInstanceOrigin(self) -> int:
        return ORIGIN_TO_SDK.get(self._origin.origin, 1)

    def GetInstanceRemoteAet(self) -> str:
        return self._origin.remote_aet if self._origin.origin == Origin.DICOM_PROTOCOL else ""

    def HasInstanceMetadata(self, metadata: str) -> int:
        return 1 if metadata in self._all_metadata() else 0

    def GetInstanceMetadata(self, metadata: str) -> str:
        value = self._all_metadata().get(metadata)
        if value is None:
            raise OrthancException(ErrorCode.INTERNAL_ERROR, f"No metadata {metadata} for this instance")
        return value

    def _all_metadata(self) -> dict[str, str]:
        if self._metadata is None:
            self._metadata = self._stored_metadata() if self._instance_id is not None else self._known_metadata()
        return self._metadata

    def _known_metadata(self) -> dict[str, str]:
        o = self._origin
        out = {"Origin": o.origin}
        if o.origin == Origin.DICOM_PROTOCOL:
            out.update(RemoteAET=o.remote_aet, CalledAET=o.called_aet, RemoteIP=o.remote_ip)
        elif o.origin == Origin.REST_API:
            out.update(RemoteIP=o.remote_ip, HttpUsername=o.username)
        return out

    def _stored_metadata(self) -> dict[str, str]:
        ctx, public_id = self._ctx, self._instance_id
        if ctx is None or public_id is None:
            return {}

        def run(tx: Any) -> dict[int, tuple[str, int]]:
            found = tx.lookup(public_id)
            return tx.metadata(found[0]) if found is not None and found[1] == Level.INSTANCE else {}
        rows = ctx.index.read(run)
        names = ctx.metadata_names
        return {names.name_of(key): value for key, (value, _rev) in rows.items()
                if key != Metadata.MAIN_DICOM_TAGS_SIGNATURE}
