"""Known DICOM modalities: `DicomModalities` (both of Orthanc's forms) or the index (property 20).

The list is kept in memory; with `DicomModalitiesInDatabase` it is read from global property 20 at
start-up and written back after every change, in the object form, as Orthanc does. Lookups by AET
follow `StrictAetComparison` (case-insensitive by default).
"""

from __future__ import annotations

import re
import threading
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ErrorCode, OrthancError
from ..registry import GlobalProperty

if TYPE_CHECKING:
    from ..core.context import ServerContext

MANUFACTURERS = ("Generic", "GenericNoWildcardInDates", "GenericNoUniversalWildcard", "Vitrea", "GE")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_BOOL_KEYS = ("AllowEcho", "AllowFind", "AllowFindWorklist", "AllowGet", "AllowMove", "AllowStore",
              "AllowNAction", "AllowEventReport", "AllowTranscoding", "UseDicomTls")
# DICOM request types -> the modality flag that allows them
REQUEST_FLAGS = {"echo": "AllowEcho", "store": "AllowStore", "find": "AllowFind", "worklist": "AllowFindWorklist",
                 "move": "AllowMove", "get": "AllowGet", "n-action": "AllowNAction",
                 "n-event-report": "AllowEventReport"}


@dataclass(frozen=True)
class RemoteModality:
    aet: str
    host: str
    port: int
    manufacturer: str = "Generic"
    flags: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(_BOOL_KEYS[:-1], True) | {"UseDicomTls": False})
    local_aet: str = ""
    timeout: int = 0

    def allows(self, request: str) -> bool:
        return self.flags[REQUEST_FLAGS[request]]

    @property
    def allow_transcoding(self) -> bool:
        return self.flags["AllowTranscoding"]

    def full_form(self) -> dict[str, Any]:
        """Orthanc's 16-key object form (`?expand`, `/configuration`, the index copy)."""
        out: dict[str, Any] = {"AET": self.aet, "Host": self.host, "LocalAet": self.local_aet,
                               "Manufacturer": self.manufacturer, "Port": self.port, "Timeout": self.timeout}
        out.update(self.flags)
        return dict(sorted(out.items()))


def _bad(details: str | None = None) -> OrthancError:
    return OrthancError(ErrorCode.BAD_FILE_FORMAT, details)


def _port(value: Any) -> int:
    if isinstance(value, bool):
        raise _bad()
    if isinstance(value, int):
        port = value
    elif isinstance(value, str):
        try:
            port = int(value.strip())
        except ValueError:
            raise _bad() from None
    else:
        raise _bad()
    if not 1 <= port <= 65534:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE,
                           f"A TCP port number must be in range [1..65534], but found: {port}")
    return port


def _manufacturer(value: Any) -> str:
    if not isinstance(value, str):
        raise _bad()
    if value not in MANUFACTURERS:
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, f'Unknown modality manufacturer: "{value}"')
    return value


def _string(spec: dict[str, Any], key: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str):
        raise _bad(f"String value expected in field: {key}")
    return value


def parse_modality(spec: Any) -> RemoteModality:
    """A modality from `["AET", "host", port, "Manufacturer"?]` or the object form (Orthanc's rules)."""
    if isinstance(spec, list):
        if len(spec) not in (3, 4) or not isinstance(spec[0], str) or not isinstance(spec[1], str) or \
                (len(spec) == 4 and not isinstance(spec[3], str)):
            raise _bad()
        return RemoteModality(spec[0], spec[1], _port(spec[2]), _manufacturer(spec[3]) if len(spec) == 4 else "Generic")
    if not isinstance(spec, dict):
        raise _bad()
    aet, host = _string(spec, "AET"), _string(spec, "Host")
    if "Port" not in spec:
        raise _bad()
    port = _port(spec["Port"])
    manufacturer = _manufacturer(spec["Manufacturer"]) if "Manufacturer" in spec else "Generic"
    flags = RemoteModality(aet, host, port).flags
    for key in _BOOL_KEYS:
        if key in spec:
            flags[key] = _boolean(spec, key)
    if "AllowStorageCommitment" in spec:
        allow = _boolean(spec, "AllowStorageCommitment")
        flags["AllowNAction"] = flags["AllowEventReport"] = allow
    local_aet = _string(spec, "LocalAet") if "LocalAet" in spec else ""
    timeout = 0
    if "Timeout" in spec:
        timeout = spec["Timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
            raise _bad("Unsigned integer value expected in field: Timeout")
    return RemoteModality(aet, host, port, manufacturer, flags, local_aet, timeout)


def _boolean(spec: dict[str, Any], key: str) -> bool:
    value = spec[key]
    if not isinstance(value, bool):
        raise _bad(f"Boolean value expected in field: {key}")
    return value


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Only alphanumeric, dash characters and underscores are "
                                                      f"allowed in the names of modalities/peers, but found: {name}")


def same_aet(a: str, b: str, strict: bool) -> bool:
    return a == b if strict else a.upper() == b.upper()


class Modalities:
    """The modalities of one server context (thread-safe)."""

    def __init__(self, ctx: ServerContext):
        self.ctx = ctx
        self.in_database = bool(ctx.config["DicomModalitiesInDatabase"])
        self.strict = bool(ctx.config["StrictAetComparison"])
        self._lock = threading.Lock()
        self._items: dict[str, RemoteModality] = {}
        if self.in_database:
            text = ctx.index.reader().global_property(GlobalProperty.MODALITIES)
            source = orjson.loads(text) if text else {}
        else:
            source = ctx.config["DicomModalities"]
        for name, spec in (source or {}).items():
            self._items[name] = parse_modality(spec)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._items)

    def items(self) -> list[tuple[str, RemoteModality]]:
        with self._lock:
            return sorted(self._items.items())

    def get(self, name: str) -> RemoteModality | None:
        with self._lock:
            return self._items.get(name)

    def require(self, name: str) -> RemoteModality:
        """The modality, else Orthanc's 404 (InexistentItem)."""
        found = self.get(name)
        if found is None:
            raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"No modality with symbolic name: {name}")
        return found

    def put(self, name: str, modality: RemoteModality) -> None:
        check_name(name)
        with self._lock:
            self._items[name] = replace(modality)
            self._save()

    def delete(self, name: str) -> bool:
        with self._lock:
            if name not in self._items:
                return False
            del self._items[name]
            self._save()
            return True

    def by_aet(self, aet: str) -> list[tuple[str, RemoteModality]]:
        """Modalities with this AET, by symbolic name."""
        return [(n, m) for n, m in self.items() if same_aet(m.aet, aet, self.strict)]

    def _save(self) -> None:
        if not self.in_database:
            return
        text = orjson.dumps({n: m.full_form() for n, m in sorted(self._items.items())}).decode()
        self.ctx.index.write(lambda tx: tx.set_global_property(GlobalProperty.MODALITIES, text))


_REGISTRIES: weakref.WeakKeyDictionary[Any, Modalities] = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def modalities_of(ctx: ServerContext) -> Modalities:
    """The modalities of a server context (created on first use, dropped with the context)."""
    with _REGISTRIES_LOCK:
        found = _REGISTRIES.get(ctx)
        if found is None:
            found = Modalities(ctx)
            _REGISTRIES[ctx] = found
        return found
