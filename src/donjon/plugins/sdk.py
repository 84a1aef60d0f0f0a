"""The module `orthanc` that plugin scripts import: the supported part of Orthanc's Python SDK.

Names, argument orders, return types and errors are those of Orthanc's Python plugin (release 4.x).
Any other attribute of the SDK raises `NotImplementedError` naming it, at the point of use (the
exception is also an `AttributeError`, so `hasattr()` answers False). The list of what is supported
and how it differs from Orthanc is in docs/plugins.md.
"""

from __future__ import annotations

import dis
import hashlib
import json
import logging
import mimetypes
import os
import sys
import types
import uuid
from typing import TYPE_CHECKING, Any

from ..core.views import TagFormat
from ..dicom.json_tags import convert
from ..dicom.tag_dictionary import dictionary_entry, tag_name
from ..errors import ErrorCode, OrthancError, describe
from ..registry import USER_KEY_MIN, Level
from . import enums
from .create_dicom import create_dicom
from .exceptions import OrthancException, UnsupportedCall, UnsupportedImport
from .instance import DicomInstance
from .rest import RestOutput

if TYPE_CHECKING:
    from .host import PluginHost

plugin_log = logging.getLogger("donjon.plugins.python")

EMULATED_ORTHANC = (1, 10, 1)  # the version of Orthanc whose behaviour Donjon follows
DATABASE_VERSION = 6
_FORMATS = {1: TagFormat.FULL, 2: TagFormat.SHORT, 3: TagFormat.HUMAN}
_VR_NUMBERS = {name: value for name, value in vars(enums.ValueRepresentation).items() if name.isupper()}
_LOOKUPS = {"LookupPatient": (Level.PATIENT, 0x00100020), "LookupStudy": (Level.STUDY, 0x0020000D),
            "LookupStudyWithAccessionNumber": (Level.STUDY, 0x00080050),
            "LookupSeries": (Level.SERIES, 0x0020000E), "LookupInstance": (Level.INSTANCE, 0x00080018)}


def build_module(host: PluginHost) -> types.ModuleType:
    module = types.ModuleType("orthanc", "Orthanc's Python plugin SDK, as hosted by Donjon.")
    names: dict[str, Any] = {enum.__name__: enum for enum in enums.ENUMERATIONS}
    names.update(OrthancException=OrthancException, DicomInstance=DicomInstance, RestOutput=RestOutput)

    # -- registrations -------------------------------------------------------------------------
    def RegisterRestCallback(path_regular_expression: str, callback: Any) -> None:
        host.routes.add(path_regular_expression, callback)

    def RegisterOnChangeCallback(callback: Any) -> None:
        host.register_on_change(callback)

    def RegisterOnStoredInstanceCallback(callback: Any) -> None:
        host.register_on_stored(callback)

    def RegisterReceivedInstanceCallback(callback: Any) -> None:
        host.register_received(callback)

    def RegisterIncomingHttpRequestFilter(callback: Any) -> None:
        host.register_http_filter(callback)

    def RegisterIncomingCStoreInstanceFilter(callback: Any) -> None:
        host.register_cstore_filter(callback)

    def RegisterFindCallback(callback: Any) -> None:
        host.register_find(callback)

    def RegisterMoveCallback(callback: Any) -> None:
        host.register_move(callback)

    def RegisterStorageArea(create: Any, read: Any, remove: Any) -> None:
        host.register_storage(create, read, remove)

    # -- the REST API, in-process ----------------------------------------------------------------
    def RestApiGet(uri: str) -> bytes:
        return host.rest_call("GET", uri, None, False)

    def RestApiGetAfterPlugins(uri: str) -> bytes:
        return host.rest_call("GET", uri, None, True)

    def RestApiPost(uri: str, body: bytes | str) -> bytes:
        return host.rest_call("POST", uri, body, False)

    def RestApiPostAfterPlugins(uri: str, body: bytes | str) -> bytes:
        return host.rest_call("POST", uri, body, True)

    def RestApiPut(uri: str, body: bytes | str) -> bytes:
        return host.rest_call("PUT", uri, body, False)

    def RestApiPutAfterPlugins(uri: str, body: bytes | str) -> bytes:
        return host.rest_call("PUT", uri, body, True)

    def RestApiDelete(uri: str) -> None:
        host.rest_call("DELETE", uri, None, False)

    def RestApiDeleteAfterPlugins(uri: str) -> None:
        host.rest_call("DELETE", uri, None, True)

    # -- instances and DICOM ----------------------------------------------------------------------
    def GetDicomForInstance(instance_id: str) -> bytes:
        return host.dicom_of(instance_id)

    def CreateDicom(json_text: str, pixel_data: Any, flags: int) -> bytes:
        return create_dicom(json_text, pixel_data, flags, host.config["DefaultEncoding"])

    def CreateDicomInstance(buffer: bytes) -> DicomInstance:
        from ..core.store import StoreOrigin
        from ..registry import Origin
        return DicomInstance(bytes(buffer), StoreOrigin(origin=Origin.PLUGINS), host.ctx)

    def DicomBufferToJson(buffer: bytes, format: int, flags: int, max_string_length: int) -> str:
        return _to_json(bytes(buffer), format, host)

    def DicomInstanceToJson(instance_id: str, format: int, flags: int, max_string_length: int) -> str:
        return _to_json(host.dicom_of(instance_id), format, host)

    def GetTagName(group: int, element: int, private_creator: str | None) -> str:
        return tag_name((int(group) << 16) | int(element), private_creator or None)

    def LookupDictionary(name: str) -> dict[str, int]:
        from ..dicom.tag_dictionary import parse_tag
        try:
            tag = parse_tag(name)
        except OrthancError:
            raise TypeError(f"Unknown DICOM tag: {name}") from None
        entry = dictionary_entry(tag)
        vr = entry[0] if entry is not None else "UN"
        vm = _multiplicity(tag)
        return {"Group": tag >> 16, "Element": tag & 0xFFFF, "ValueRepresentation": _VR_NUMBERS.get(vr[:2], 25),
                "MinMultiplicity": vm[0], "MaxMultiplicity": vm[1]}

    # -- the index ------------------------------------------------------------------------------
    def GetGlobalProperty(property: int, default_value: str) -> str:
        found = host.require_ctx().index.reader().global_property(int(property))
        return found if found is not None else default_value

    def SetGlobalProperty(property: int, value: str) -> None:
        if int(property) < USER_KEY_MIN:
            raise OrthancException(ErrorCode.PARAMETER_OUT_OF_RANGE,
                                   "Plugins may only set global properties from 1024")
        host.require_ctx().index.write(lambda tx: tx.set_global_property(int(property), str(value)))

    def _lookup(name: str) -> Any:
        level, tag = _LOOKUPS[name]

        def lookup(value: str) -> str:
            return host.lookup(level, tag, value)
        lookup.__name__ = name
        return lookup

    for lookup_name in _LOOKUPS:
        names[lookup_name] = _lookup(lookup_name)

    # -- the server ------------------------------------------------------------------------------
    def GetConfiguration() -> str:
        return host.configuration_json()

    def GetConfigurationPath() -> str:
        return host.config.configuration_path  # the file (a folder's parent), as Orthanc; "" without configuration

    def GenerateRestApiAuthorizationToken() -> str:
        return host.new_token()

    def SetDescription(description: str) -> None:
        host.description = str(description)

    def SetRootUri(uri: str) -> None:
        host.root_uri = str(uri)

    def ExtendOrthancExplorer(javascript: str) -> None:
        host.explorer_js = str(javascript)

    def GetOrthancPath() -> str:
        return sys.executable

    def GetOrthancDirectory() -> str:
        return os.path.dirname(sys.executable)

    def GetCommandLineArgumentsCount() -> int:
        return len(sys.argv)

    def GetCommandLineArgument(argument: int) -> str:
        if not 0 <= int(argument) < len(sys.argv):
            raise OrthancException(ErrorCode.PARAMETER_OUT_OF_RANGE)
        return sys.argv[int(argument)]

    def GetExpectedDatabaseVersion() -> int:
        return DATABASE_VERSION

    def CheckVersion() -> int:
        return 1

    def CheckVersionAdvanced(expected_major: int, expected_minor: int, expected_revision: int) -> int:
        return 1 if (int(expected_major), int(expected_minor), int(expected_revision)) <= EMULATED_ORTHANC else 0

    def GetErrorDescription(error: int) -> str:
        return describe(int(error))

    # -- toolbox ---------------------------------------------------------------------------------
    def LogInfo(message: str) -> None:
        plugin_log.info("%s", message)

    def LogWarning(message: str) -> None:
        plugin_log.warning("%s", message)

    def LogError(message: str) -> None:
        plugin_log.error("%s", message)

    def GenerateUuid() -> str:
        return str(uuid.uuid4())

    def ComputeMd5(buffer: bytes) -> str:
        return hashlib.md5(_bytes(buffer)).hexdigest()

    def ComputeSha1(buffer: bytes) -> str:
        h = hashlib.sha1(_bytes(buffer)).hexdigest()
        return f"{h[0:8]}-{h[8:16]}-{h[16:24]}-{h[24:32]}-{h[32:40]}"

    def AutodetectMimeType(path: str) -> str:
        return mimetypes.guess_type(path)[0] or "application/octet-stream"

    def ReadFile(path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            raise OrthancException(ErrorCode.INEXISTENT_FILE) from None

    def WriteFile(path: str, data: bytes) -> None:
        try:
            with open(path, "wb") as f:
                f.write(_bytes(data))
        except OSError:
            raise OrthancException(ErrorCode.CANNOT_WRITE_FILE) from None

    for name, value in list(locals().items()):
        if name[:1].isupper() and callable(value) and name not in names:
            names[name] = value
    for name, value in names.items():
        setattr(module, name, value)

    def __getattr__(name: str) -> Any:
        if name.startswith("_") or not name[:1].isupper():
            raise AttributeError(f"module 'orthanc' has no attribute '{name}'")
        if _importing_from(sys._getframe(1)):
            raise UnsupportedImport(name)
        raise UnsupportedCall(name)

    def __dir__() -> list[str]:
        return sorted(names)

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    module.__dir__ = __dir__  # type: ignore[method-assign]
    module.__file__ = None
    return module


_IMPORT_FROM = dis.opmap["IMPORT_FROM"]


def _importing_from(frame: types.FrameType) -> bool:
    """Whether the caller is running `from orthanc import ...` (rather than `hasattr` or `orthanc.X`)."""
    code = frame.f_code.co_code
    return 0 <= frame.f_lasti < len(code) and code[frame.f_lasti] == _IMPORT_FROM


def _bytes(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _to_json(data: bytes, fmt: int, host: PluginHost) -> str:
    tag_format = _FORMATS.get(int(fmt))
    if tag_format is None:
        raise OrthancException(ErrorCode.PARAMETER_OUT_OF_RANGE)
    codec = host.ctx.default_encoding if host.ctx is not None else "latin_1"
    try:
        return json.dumps(convert(data, tag_format, codec, whole=True), ensure_ascii=False)
    except OrthancError as e:
        raise OrthancException.of(e) from None


def _multiplicity(tag: int) -> tuple[int, int]:
    """(min, max) multiplicity of a public tag from pydicom's dictionary; max 0 means "n"."""
    from pydicom.datadict import dictionary_VM
    try:
        vm = dictionary_VM(tag)
    except KeyError:
        return 1, 1
    low, _, high = vm.partition("-")
    lo = int(low) if low.isdigit() else 1
    if not high:
        return lo, lo
    return lo, int(high) if high.isdigit() else 0
