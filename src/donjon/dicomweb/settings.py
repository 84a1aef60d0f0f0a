"""The `DicomWeb` configuration section (Orthanc's plugin option names) and the URLs it implies.

Validated at start-up by `config_options` so that a typo fails early, not on the first request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..registry import ConfigurationError

METADATA_MODES = ("Full", "MainDicomTags", "Extrapolate")
_BOOLS = ("Enable", "EnableWado", "Ssl", "QidoCaseSensitive", "ServersInDatabase", "EnableMetadataCache")
_STRINGS = ("Root", "WadoRoot", "Host", "PublicRoot")


@dataclass(frozen=True)
class DicomWebSettings:
    enable: bool = True
    root: str = "/dicom-web/"
    enable_wado: bool = True
    wado_root: str = "/wado"
    ssl: bool = False
    qido_case_sensitive: bool = True
    host: str = ""
    public_root: str = "/dicom-web/"
    studies_metadata: str = "Full"
    series_metadata: str = "Full"
    studies_extrapolated: tuple[str, ...] = ()
    series_extrapolated: tuple[str, ...] = ()
    servers: dict[str, Any] = field(default_factory=dict)
    servers_in_database: bool = False
    metadata_cache: bool = True

    @property
    def root_components(self) -> list[str]:
        return [c for c in self.root.split("/") if c]

    @property
    def wado_components(self) -> list[str]:
        return [c for c in self.wado_root.split("/") if c]


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigurationError(f'Bad value for the configuration option "DicomWeb.{name}": expected a Boolean')


def _root(value: str) -> str:
    """Orthanc's normalisation: a leading and a trailing slash."""
    value = value.strip()
    if not value.startswith("/"):
        value = "/" + value
    if not value.endswith("/"):
        value += "/"
    return value


def parse(section: dict[str, Any] | None) -> DicomWebSettings:
    """The settings of a (validated or not) `DicomWeb` section; raises ConfigurationError."""
    s = dict(section or {})
    for name in _BOOLS:
        if name in s:
            s[name] = _bool(name, s[name])
    for name in _STRINGS:
        if name in s and not isinstance(s[name], str):
            raise ConfigurationError(f'Bad value for the configuration option "DicomWeb.{name}": expected a string')
    modes = {}
    for name in ("StudiesMetadata", "SeriesMetadata"):
        mode = s.get(name, "Full")
        if mode not in METADATA_MODES:
            raise ConfigurationError(f'Bad value for the configuration option "DicomWeb.{name}": expected one of '
                                     + ", ".join(METADATA_MODES))
        modes[name] = mode
    extrapolated = {}
    for name in ("StudiesMetadataExtrapolatedTags", "SeriesMetadataExtrapolatedTags"):
        tags = s.get(name, [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ConfigurationError(f'Bad value for the configuration option "DicomWeb.{name}": '
                                     "expected a JSON array of tag names")
        extrapolated[name] = tuple(tags)
    servers = s.get("Servers", {})
    if not isinstance(servers, dict):
        raise ConfigurationError('Bad value for the configuration option "DicomWeb.Servers": expected a JSON object')
    from .servers import parse_server  # validates each definition the way PUT /servers/{name} does

    for name, definition in servers.items():
        try:
            parse_server(name, definition)
        except ValueError as e:
            raise ConfigurationError(f'Bad value for the configuration option "DicomWeb.Servers": {e}') from None
    root = _root(s.get("Root", "/dicom-web/"))
    wado_root = s.get("WadoRoot", "/wado").strip() or "/wado"
    if not wado_root.startswith("/"):
        wado_root = "/" + wado_root
    return DicomWebSettings(
        enable=s.get("Enable", True), root=root, enable_wado=s.get("EnableWado", True),
        wado_root=wado_root.rstrip("/") or "/wado", ssl=s.get("Ssl", False),
        qido_case_sensitive=s.get("QidoCaseSensitive", True), host=s.get("Host", "").strip(),
        public_root=_root(s["PublicRoot"]) if s.get("PublicRoot") else root,
        studies_metadata=modes["StudiesMetadata"], series_metadata=modes["SeriesMetadata"],
        studies_extrapolated=extrapolated["StudiesMetadataExtrapolatedTags"],
        series_extrapolated=extrapolated["SeriesMetadataExtrapolatedTags"],
        servers=dict(servers), servers_in_database=s.get("ServersInDatabase", False),
        metadata_cache=s.get("EnableMetadataCache", True))


def validate(option: Any, value: dict[str, Any]) -> dict[str, Any]:
    """`Option.validator` of the `DicomWeb` section: refuse bad values, keep the section as given."""
    parse(value)
    return value


def base_url(settings: DicomWebSettings, headers: dict[str, str]) -> str:
    """`http(s)://host/root/` of the links in answers (RetrieveURL, BulkDataURI), as Orthanc builds them:
    `Host` option, else the `Forwarded` / `X-Forwarded-*` headers of a reverse proxy, else `Host`."""
    proto = "https" if settings.ssl else "http"
    host = settings.host
    forwarded = headers.get("forwarded", "")
    if forwarded and not host:
        for item in forwarded.split(",")[0].split(";"):
            key, _, value = item.strip().partition("=")
            value = value.strip().strip('"')
            if key.strip().lower() == "host" and value:
                host = value
            elif key.strip().lower() == "proto" and value:
                proto = value
    elif not host and headers.get("x-forwarded-host"):
        host = headers["x-forwarded-host"].split(",")[0].strip()
        proto = headers.get("x-forwarded-proto", proto).split(",")[0].strip() or proto
    if not host:
        host = headers.get("host", "") or "localhost"
    return f"{proto}://{host}{settings.public_root}"
