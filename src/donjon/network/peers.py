"""Orthanc peers: other Orthanc-compatible servers reached over HTTP(S), and the client that talks to them.

Definitions follow Orthanc's `WebServiceParameters` (both configuration forms, user properties, the
public view that hides secrets). The list comes from `OrthancPeers`, or from global property 21 with
`OrthancPeersInDatabase`, rewritten after every change in Orthanc's format. Requests go through httpx
with one pooled keep-alive client per peer; failures become Orthanc's errors (code 9 and libcurl's
texts, so that clients matching Orthanc's messages keep working). Secrets (passwords, the key
password, header values) never leave this module in answers or logs.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ErrorCode, OrthancError
from ..registry import GlobalProperty
from .modalities import check_name

if TYPE_CHECKING:
    import httpx

    from ..config import Configuration
    from ..core.context import ServerContext

log = logging.getLogger(__name__)

RESERVED_KEYS = frozenset({"CertificateFile", "CertificateKeyFile", "CertificateKeyPassword", "HttpHeaders",
                           "Password", "Pkcs11", "Url", "URL", "Username", "Timeout"})
DEFAULT_TIMEOUT = 60  # seconds, Orthanc's HttpClient default (HttpTimeout 0 means this too)
_USERINFO = re.compile(r"//[^/?#@]*@")


def _bad(details: str | None = None) -> OrthancError:
    return OrthancError(ErrorCode.BAD_FILE_FORMAT, details)


@dataclass(frozen=True)
class PeerDef:
    """One peer; empty strings mean "not set", as in Orthanc. Secrets are kept out of `repr`."""

    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    http_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    certificate_file: str = ""
    certificate_key_file: str = ""
    certificate_key_password: str = field(default="", repr=False)
    pkcs11: bool = False
    timeout: int = 0
    properties: Mapping[str, str] = field(default_factory=dict)  # user properties, as strings

    def advanced_needed(self) -> bool:
        return bool(self.certificate_file or self.certificate_key_file or self.certificate_key_password or
                    self.pkcs11 or self.http_headers or self.properties or self.timeout)

    def serialize(self, force_advanced: bool = False, include_secrets: bool = True) -> Any:
        """Orthanc's `Serialize`: the short array when possible, else the object form."""
        if not force_advanced and not self.advanced_needed():
            out: list[str] = [self.url]
            if self.username or self.password:
                out += [self.username, self.password if include_secrets else ""]
            return out
        obj: dict[str, Any] = {"Url": self.url}
        if self.username or self.password:
            obj["Username"] = self.username
            if include_secrets:
                obj["Password"] = self.password
        if self.certificate_file:
            obj["CertificateFile"] = self.certificate_file
        if self.certificate_key_file:
            obj["CertificateKeyFile"] = self.certificate_key_file
        if self.certificate_key_password and include_secrets:
            obj["CertificateKeyPassword"] = self.certificate_key_password
        obj["Pkcs11"] = self.pkcs11
        obj["Timeout"] = self.timeout
        obj["HttpHeaders"] = {k: (v if include_secrets else None) for k, v in sorted(self.http_headers.items())}
        obj.update(self.properties)
        return obj

    def public(self) -> dict[str, Any]:
        """Orthanc's `FormatPublic` (`/peers?expand`, `/configuration`): header names only, no secret."""
        out: dict[str, Any] = {"Url": self.url}
        if self.username:
            out["Username"] = self.username
            out["Password"] = None
        if self.certificate_file:
            out["CertificateFile"] = self.certificate_file
            out["CertificateKeyFile"] = None
            out["CertificateKeyPassword"] = None
        out["Pkcs11"] = self.pkcs11
        out["Timeout"] = self.timeout
        out["HttpHeaders"] = sorted(self.http_headers)
        out.update(self.properties)
        return out

    def check_files(self) -> None:
        """`PUT /peers`: the client certificate and key must exist (Orthanc's CheckClientCertificate)."""
        if self.certificate_file:
            if not os.path.isfile(self.certificate_file):
                raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Cannot open certificate file: {self.certificate_file}")
            if self.certificate_key_file and not os.path.isfile(self.certificate_key_file):
                raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Cannot open key file: {self.certificate_key_file}")

    def same_target(self, other: PeerDef) -> bool:
        """Whether `other` is the same server and account (to rebind a saved job to its secrets)."""
        return self.url == other.url and self.username == other.username


def check_url(url: str) -> str:
    """Orthanc's URL rules: http(s) only when a scheme is given, not empty, a trailing slash."""
    if "://" in url and not url.startswith(("http://", "https://")):
        raise _bad(f"Bad URL: {url}")
    if not url:
        raise _bad("Empty URL")
    return url if url.endswith("/") else url + "/"


def _string(spec: dict[str, Any], key: str) -> str:
    value = spec.get(key, "")
    if not isinstance(value, str):
        raise _bad(f"String value expected in field: {key}")
    return value


def parse_peer(spec: Any) -> PeerDef:
    """A peer from `["url"]`, `["url", "user", "password"]` or the object form (Orthanc's rules)."""
    if isinstance(spec, list):
        if len(spec) not in (1, 3):
            raise _bad('A peer must be ["url"], ["url", "username", "password"] or a JSON object')
        if not all(isinstance(v, str) for v in spec):
            raise _bad("The items of a peer's array must be strings")
        url = check_url(spec[0])
        if len(spec) == 1:
            return PeerDef(url)
        return _credentials(PeerDef(url), spec[1], spec[2])
    if not isinstance(spec, dict):
        raise _bad("A peer must be a JSON array or a JSON object")
    url = _string(spec, "Url")
    peer = PeerDef(check_url(url if url else _string(spec, "URL")))
    peer = _credentials(peer, _string(spec, "Username"), _string(spec, "Password"))
    cert = _string(spec, "CertificateFile")
    key_file, key_password = _string(spec, "CertificateKeyFile"), _string(spec, "CertificateKeyPassword")
    pkcs11 = spec.get("Pkcs11", False)
    if not isinstance(pkcs11, bool):
        raise _bad("Boolean value expected in field: Pkcs11")
    headers = spec.get("HttpHeaders", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _bad('"HttpHeaders" must be a JSON object of strings')
    timeout = spec.get("Timeout", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise _bad("Unsigned integer value expected in field: Timeout")
    properties: dict[str, str] = {}
    for key, value in spec.items():
        if key in RESERVED_KEYS:
            continue
        if isinstance(value, str):
            properties[key] = value
        elif isinstance(value, bool):
            properties[key] = "1" if value else "0"
        elif isinstance(value, int):
            properties[key] = str(value)
        else:
            raise _bad(f"User-defined properties associated with a Web service must be strings: {key}")
    return PeerDef(peer.url, peer.username, peer.password, dict(headers), cert, key_file if cert else "",
                   key_password if cert else "", pkcs11, timeout, dict(sorted(properties.items())))


def _credentials(peer: PeerDef, username: str, password: str) -> PeerDef:
    if not username and password:
        raise _bad("A peer cannot have a password without a username")
    return PeerDef(peer.url, username, password)


# -- the HTTP client ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HttpSettings:
    """The global options of outgoing HTTP requests."""

    timeout: int
    verify: bool
    ca_file: str
    proxy: str
    verbose: bool

    @classmethod
    def of(cls, config: Configuration) -> HttpSettings:
        ca = config.path("HttpsCACertificates") if config["HttpsCACertificates"] else ""
        return cls(int(config["HttpTimeout"] or DEFAULT_TIMEOUT), bool(config["HttpsVerifyPeers"]), ca,
                   str(config["HttpProxy"] or ""), bool(config["HttpVerbose"]))


def network_error(text: str) -> OrthancError:
    """Orthanc's error for a transport failure: code 9 with libcurl's message (1.10.1 wording)."""
    return OrthancError(ErrorCode.NETWORK_PROTOCOL, f"libCURL error: {text}")


def _curl_text(e: Exception) -> str:
    """The libcurl message Orthanc would show for this httpx failure."""
    import httpx

    if isinstance(e, httpx.TimeoutException):
        return "Timeout was reached"
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if any(isinstance(x, ssl.SSLCertVerificationError) for x in chain):
        return "SSL peer certificate or SSH remote key was not OK"
    if any(isinstance(x, ssl.SSLError) for x in chain):
        return "SSL connect error"
    text = " ".join(str(x) for x in chain).lower()
    if isinstance(e, httpx.ProxyError):
        return "Couldn't connect to server"
    if isinstance(e, httpx.ConnectError):
        if "name or service" in text or "name resolution" in text or "nodename" in text or "getaddrinfo" in text:
            return "Couldn't resolve host name"
        return "Couldn't connect to server"
    if isinstance(e, httpx.RemoteProtocolError):
        return "Server returned nothing (no headers, no data)"
    if isinstance(e, httpx.WriteError):
        return "Failed sending data to the peer"
    if isinstance(e, httpx.UnsupportedProtocol):
        return "Unsupported protocol"
    return "Failure when receiving data from the peer"


def safe_url(url: str) -> str:
    """The URL without credentials (for logs and messages)."""
    return _USERINFO.sub("//", url, count=1)


class PeerClient:
    """A pooled keep-alive httpx client to one peer, with Orthanc's options and error texts."""

    def __init__(self, peer: PeerDef, settings: HttpSettings):
        self.peer = peer
        self.settings = settings
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def _open(self) -> httpx.Client:
        import httpx

        peer, settings = self.peer, self.settings
        if peer.pkcs11:
            if peer.certificate_file:
                raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE,
                                   "Cannot enable both client certificates and PKCS#11 authentication")
            raise OrthancError(ErrorCode.NOT_IMPLEMENTED, "PKCS#11 authentication is not supported by Donjon")
        timeout = peer.timeout or settings.timeout
        kwargs: dict[str, Any] = {
            "timeout": httpx.Timeout(timeout), "trust_env": False, "follow_redirects": True,
            "headers": dict(peer.http_headers),
            "limits": httpx.Limits(max_connections=32, max_keepalive_connections=16, keepalive_expiry=5.0),
        }
        if peer.username and peer.password:  # Orthanc's HttpClient: both must be set
            kwargs["auth"] = httpx.BasicAuth(peer.username, peer.password)
        if settings.proxy:
            kwargs["proxy"] = settings.proxy if "://" in settings.proxy else "http://" + settings.proxy
        try:
            kwargs["verify"] = self._ssl_context()
        except OrthancError:
            if peer.url.startswith("https://"):
                raise
            kwargs["verify"] = ssl.create_default_context()  # plain HTTP: the TLS options do not apply
        return httpx.Client(**kwargs)

    def _ssl_context(self) -> ssl.SSLContext:
        """`HttpsVerifyPeers`, `HttpsCACertificates` and the client certificate of the peer."""
        settings, peer = self.settings, self.peer
        try:
            context = ssl.create_default_context(cafile=settings.ca_file or None) if settings.verify \
                else ssl.create_default_context()
        except (OSError, ssl.SSLError):
            raise network_error("Problem with the SSL CA cert (path? access rights?)") from None
        if not settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if peer.certificate_file:
            try:
                context.load_cert_chain(peer.certificate_file, peer.certificate_key_file or None,
                                        peer.certificate_key_password or None)
            except (OSError, ssl.SSLError):
                raise network_error("Problem with the local SSL certificate") from None
        return context

    @property
    def http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = self._open()
            return self._client

    def request(self, method: str, uri: str, content: bytes | None = None,
                headers: dict[str, str] | None = None) -> httpx.Response:
        """One request to `<Url><uri>`; transport failures raise Orthanc's code 9 (one retry when a
        kept-alive connection was closed by the peer before answering)."""
        import httpx

        base = self.peer.url
        url = (base if "://" in base else "http://" + base) + uri  # like libcurl, no scheme means HTTP
        client = self.http
        start = time.monotonic()
        try:
            try:
                response = client.request(method, url, content=content, headers=headers)
            except httpx.RemoteProtocolError:
                response = client.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as e:
            raise self._failure(e, method, url) from None
        level = logging.INFO if self.settings.verbose else logging.DEBUG
        log.log(level, "HTTP status code %d in %d ms after %s request on: %s", response.status_code,
                (time.monotonic() - start) * 1000, method, safe_url(url))
        return response

    def _failure(self, e: Exception, method: str, url: str) -> OrthancError:
        text = _curl_text(e)
        log.error("Error in HTTP request %s %s: %s (%s)", method, safe_url(url), text, type(e).__name__)
        return network_error(text)

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


def status_details(response: httpx.Response, method: str) -> str:
    """What Orthanc logs when a peer answers a non-2xx status (its error itself has no details)."""
    return (f"HTTP status {response.status_code} ({response.reason_phrase}) after {method} request on: "
            f"{safe_url(str(response.request.url))}")


# -- the list of peers -------------------------------------------------------------------------------------

class Peers:
    """The peers of one server context (thread-safe), with a cached client per peer."""

    def __init__(self, ctx: ServerContext):
        self.ctx = ctx
        self.in_database = bool(ctx.config["OrthancPeersInDatabase"])
        self._lock = threading.Lock()
        self._items: dict[str, PeerDef] = {}
        self._clients: dict[str, PeerClient] = {}
        if self.in_database:
            text = ctx.index.reader().global_property(GlobalProperty.PEERS)
            try:
                source = orjson.loads(text) if text else {}
            except orjson.JSONDecodeError:
                raise OrthancError(ErrorCode.INTERNAL_ERROR,
                                   "Cannot unserialize the list of peers from the Orthanc database") from None
        else:
            source = ctx.config["OrthancPeers"]
        for name, spec in (source or {}).items():
            check_name(name)
            self._items[name] = parse_peer(spec)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._items)

    def items(self) -> list[tuple[str, PeerDef]]:
        with self._lock:
            return sorted(self._items.items())

    def get(self, name: str) -> PeerDef | None:
        with self._lock:
            return self._items.get(name)

    def require(self, name: str) -> PeerDef:
        """The peer, else Orthanc's 404 (UnknownResource)."""
        found = self.get(name)
        if found is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"No peer with symbolic name: {name}")
        return found

    def put(self, name: str, peer: PeerDef) -> None:
        check_name(name)
        peer.check_files()
        with self._lock:
            self._items[name] = peer
            old = self._clients.pop(name, None)
            self._save()
        if old is not None:
            old.close()

    def delete(self, name: str) -> bool:
        with self._lock:
            if name not in self._items:
                return False
            del self._items[name]
            old = self._clients.pop(name, None)
            self._save()
        if old is not None:
            old.close()
        return True

    def client(self, name: str) -> PeerClient:
        """The shared client of a peer (REST calls such as `/system`); unknown name -> 404."""
        peer = self.require(name)
        settings = HttpSettings.of(self.ctx.config)
        with self._lock:
            found = self._clients.get(name)
            if found is not None and found.peer == peer and found.settings == settings:
                return found
            client = PeerClient(peer, settings)
            self._clients[name] = client
        if found is not None:
            found.close()
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def _save(self) -> None:
        """Global property 21 in Orthanc's format (short form when possible, secrets included so that
        the peers work after a restart)."""
        if not self.in_database:
            return
        text = orjson.dumps({n: p.serialize() for n, p in sorted(self._items.items())}).decode("utf-8")
        self.ctx.index.write(lambda tx: tx.set_global_property(GlobalProperty.PEERS, text))


_REGISTRIES: weakref.WeakKeyDictionary[Any, Peers] = weakref.WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def peers_of(ctx: ServerContext) -> Peers:
    """The peers of a server context (created on first use, dropped with the context)."""
    with _REGISTRIES_LOCK:
        found = _REGISTRIES.get(ctx)
        if found is None:
            found = Peers(ctx)
            _REGISTRIES[ctx] = found
        return found


__all__ = ["HttpSettings", "PeerClient", "PeerDef", "Peers", "check_url", "network_error", "parse_peer",
           "peers_of", "safe_url", "status_details"]
