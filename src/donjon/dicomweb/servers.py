"""Remote DICOMweb servers: `DicomWeb.Servers`, changed by `PUT`/`DELETE /dicom-web/servers/{name}`.

With `ServersInDatabase`, the list lives in global property 5468 (as in Orthanc's plugin) and survives
restarts; otherwise changes are kept in memory only, like Orthanc does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from ..core.context import ServerContext

SERVERS_PROPERTY = 5468
_KNOWN = ("Url", "Username", "Password", "HttpHeaders", "Timeout", "Pkcs11", "CertificateFile",
          "CertificateKeyFile", "CertificateKeyPassword", "HasDelete", "ChunkedTransfers",
          "HasWadoRsUniversalTransferSyntax")


@dataclass(frozen=True)
class ServerDef:
    name: str
    url: str
    username: str | None = None
    password: str | None = None
    http_headers: dict[str, str] = field(default_factory=dict)
    timeout: int = 0
    pkcs11: bool = False
    certificate_file: str | None = None
    certificate_key_file: str | None = None
    certificate_key_password: str | None = None
    has_delete: bool = False
    chunked_transfers: bool = True
    universal_transfer_syntax: bool = True
    properties: dict[str, Any] = field(default_factory=dict)  # other fields, kept and shown as given

    def url_of(self, uri: str) -> str:
        """The remote URL of a DICOMweb path such as `/studies` (relative to the server's root)."""
        return self.url + uri.lstrip("/")

    def serialize(self) -> dict[str, Any]:
        """The full definition (password included), as saved in the index."""
        out: dict[str, Any] = {"Url": self.url, **self.properties}
        for key, value in (("Username", self.username), ("Password", self.password),
                           ("CertificateFile", self.certificate_file),
                           ("CertificateKeyFile", self.certificate_key_file),
                           ("CertificateKeyPassword", self.certificate_key_password)):
            if value is not None:
                out[key] = value
        if self.http_headers:
            out["HttpHeaders"] = dict(self.http_headers)
        if self.timeout:
            out["Timeout"] = self.timeout
        if self.pkcs11:
            out["Pkcs11"] = True
        out["HasDelete"] = self.has_delete
        out["ChunkedTransfers"] = self.chunked_transfers
        out["HasWadoRsUniversalTransferSyntax"] = self.universal_transfer_syntax
        return out

    def public(self) -> dict[str, Any]:
        """`GET /dicom-web/servers?expand`: no secrets (password and header values are hidden)."""
        out: dict[str, Any] = {"Url": self.url, "HttpHeaders": sorted(self.http_headers), "Pkcs11": self.pkcs11,
                               "Timeout": self.timeout}
        if self.username is not None:
            out["Username"] = self.username
        if self.password is not None:
            out["Password"] = None
        if self.certificate_file:
            out["CertificateFile"] = self.certificate_file
        for key, value in self.properties.items():
            out[key] = ("1" if value else "0") if isinstance(value, bool) else value
        if self.has_delete:
            out["HasDelete"] = "1"
        if not self.chunked_transfers:
            out["ChunkedTransfers"] = "0"
        if not self.universal_transfer_syntax:
            out["HasWadoRsUniversalTransferSyntax"] = "0"
        return out

    def operations(self) -> list[str]:
        """`GET /dicom-web/servers/{name}`: what can be done with this server."""
        ops = ["get", "retrieve", "stow", "wado", "qido"]
        return [*ops, "delete"] if self.has_delete else ops


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f'"{name}" must be a Boolean')


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f'"{name}" must be a string')
    return value


def parse_server(name: str, definition: Any) -> ServerDef:
    """A server from Orthanc's two forms: `["url", "user", "password"]` or an object; ValueError if bad."""
    if not name or "/" in name:
        raise ValueError(f"bad name of DICOMweb server: {name!r}")
    if isinstance(definition, str):
        definition = [definition]
    if isinstance(definition, list):
        if not 1 <= len(definition) <= 3 or len(definition) == 2 or not all(isinstance(x, str) for x in definition):
            raise ValueError(f'the DICOMweb server "{name}" must be ["url"] or ["url", "username", "password"]')
        definition = {"Url": definition[0], **({"Username": definition[1], "Password": definition[2]}
                                                if len(definition) == 3 else {})}
    if not isinstance(definition, dict):
        raise ValueError(f'the DICOMweb server "{name}" must be a JSON array or object')
    url = _text("Url", definition.get("Url"))
    if not url.startswith(("http://", "https://")):
        raise ValueError(f'the URL of the DICOMweb server "{name}" must start with http:// or https://')
    if not url.endswith("/"):
        url += "/"
    headers = definition.get("HttpHeaders", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ValueError('"HttpHeaders" must be a JSON object of strings')
    timeout = definition.get("Timeout", 0)
    if isinstance(timeout, str) and timeout.strip().isdigit():
        timeout = int(timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise ValueError('"Timeout" must be a non-negative integer')

    def optional(key: str) -> str | None:
        return _text(key, definition[key]) if key in definition and definition[key] is not None else None

    return ServerDef(
        name=name, url=url, username=optional("Username"), password=optional("Password"),
        http_headers=dict(headers), timeout=timeout, pkcs11=_flag("Pkcs11", definition.get("Pkcs11", False)),
        certificate_file=optional("CertificateFile"), certificate_key_file=optional("CertificateKeyFile"),
        certificate_key_password=optional("CertificateKeyPassword"),
        has_delete=_flag("HasDelete", definition.get("HasDelete", False)),
        chunked_transfers=_flag("ChunkedTransfers", definition.get("ChunkedTransfers", True)),
        universal_transfer_syntax=_flag("HasWadoRsUniversalTransferSyntax",
                                        definition.get("HasWadoRsUniversalTransferSyntax", True)),
        properties={k: v for k, v in definition.items() if k not in _KNOWN})


class ServerRegistry:
    """The servers of one server context; thread-safe (the context is passed in, not kept)."""

    def __init__(self, ctx: ServerContext, configured: dict[str, Any], in_database: bool):
        self.in_database = in_database
        self._lock = threading.Lock()
        self._servers: dict[str, ServerDef] = {n: parse_server(n, d) for n, d in configured.items()}
        if in_database:
            text = ctx.index.reader().global_property(SERVERS_PROPERTY)
            if text:
                saved = orjson.loads(text)
                self._servers = {n: parse_server(n, d) for n, d in saved.items()}
            else:
                self._save(ctx)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._servers)

    def all(self) -> dict[str, ServerDef]:
        with self._lock:
            return dict(self._servers)

    def get(self, name: str) -> ServerDef | None:
        with self._lock:
            return self._servers.get(name)

    def put(self, ctx: ServerContext, server: ServerDef) -> None:
        with self._lock:
            self._servers[server.name] = server
            self._save(ctx)

    def delete(self, ctx: ServerContext, name: str) -> bool:
        with self._lock:
            if self._servers.pop(name, None) is None:
                return False
            self._save(ctx)
            return True

    def _save(self, ctx: ServerContext) -> None:
        if not self.in_database:
            return
        text = orjson.dumps({n: s.serialize() for n, s in sorted(self._servers.items())}).decode("utf-8")
        ctx.index.write(lambda tx: tx.set_global_property(SERVERS_PROPERTY, text))
