"""Donjon as a DICOMweb client (httpx): GET for QIDO/WADO, STOW-RS uploads, WADO-RS retrieval.

Outgoing requests use the global `HttpProxy`, `HttpTimeout`, `HttpsVerifyPeers` and
`HttpsCACertificates` options and each server's credentials, headers, client certificate and `Timeout`,
as Orthanc's plugin does. Environment proxies are ignored (only `HttpProxy` counts). Answers of
WADO-RS retrievals are parsed while they arrive, one instance at a time.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import ErrorCode, OrthancError
from .multipart import MultipartReader, boundary_of, closing, new_boundary, part_header
from .servers import ServerDef

if TYPE_CHECKING:
    from ..core.context import ServerContext

CHUNK = 256 * 1024


def network_error(details: str) -> OrthancError:
    return OrthancError(ErrorCode.NETWORK_PROTOCOL, details)


def open_client(ctx: ServerContext, server: ServerDef) -> httpx.Client:
    config = ctx.config
    timeout = server.timeout or int(config["HttpTimeout"] or 60)
    verify: Any = bool(config["HttpsVerifyPeers"])
    if verify and config["HttpsCACertificates"]:
        verify = config.path("HttpsCACertificates")
    cert: Any = None
    if server.certificate_file:
        cert = (server.certificate_file, server.certificate_key_file, server.certificate_key_password) \
            if server.certificate_key_file else server.certificate_file
    proxy = config["HttpProxy"] or None
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy
    auth = (server.username, server.password or "") if server.username is not None else None
    kwargs: dict[str, Any] = {"timeout": httpx.Timeout(timeout), "verify": verify, "auth": auth,
                              "headers": dict(server.http_headers), "trust_env": False, "proxy": proxy}
    if cert is not None:
        kwargs["cert"] = cert
    return httpx.Client(**kwargs)


def url(server: ServerDef, uri: str, arguments: dict[str, str] | None = None) -> str:
    target = server.url_of(uri)
    if arguments:
        target += ("&" if "?" in target else "?") + urllib.parse.urlencode(arguments)
    return target


def _check(response: httpx.Response, what: str) -> None:
    if not 200 <= response.status_code < 300:
        body = response.read()[:200].decode("utf-8", "replace") if hasattr(response, "read") else ""
        raise network_error(f"{what}: the DICOMweb server answered HTTP {response.status_code} {body}".strip())


def get(ctx: ServerContext, server: ServerDef, uri: str, arguments: dict[str, str] | None = None,
        headers: dict[str, str] | None = None) -> httpx.Response:
    """One GET against the server (QIDO-RS, WADO-RS...); non-2xx answers are errors, as in Orthanc."""
    try:
        with open_client(ctx, server) as client:
            response = client.get(url(server, uri, arguments), headers=headers or {})
    except httpx.HTTPError as e:
        raise network_error(f"Cannot reach the DICOMweb server {server.name}: {e}") from None
    _check(response, f"GET {uri}")
    return response


def _stow_body(boundary: str, files: Iterable[bytes]) -> Iterator[bytes]:
    for data in files:
        yield part_header(boundary, "application/dicom", len(data))
        for start in range(0, len(data), CHUNK):
            yield data[start:start + CHUNK]
        yield b"\r\n"
    yield closing(boundary)


def stow(ctx: ServerContext, server: ServerDef, files: list[bytes], headers: dict[str, str] | None = None,
         client: httpx.Client | None = None) -> dict[str, Any]:
    """POST the files to `{url}studies`; the answer data set (failures of the server are errors)."""
    boundary = new_boundary()
    body: Any = _stow_body(boundary, files)
    if not server.chunked_transfers:
        body = b"".join(body)
    request_headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                       "Accept": "application/dicom+json", **(headers or {})}
    own = client is None
    client = client or open_client(ctx, server)
    try:
        response = client.post(server.url_of("studies"), content=body, headers=request_headers)
    except httpx.HTTPError as e:
        raise network_error(f"Cannot send to the DICOMweb server {server.name}: {e}") from None
    finally:
        if own:
            client.close()
    if response.status_code not in (200, 202):
        raise network_error(f"STOW-RS to {server.name}: HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    failed = answer.get("00081198", {}).get("Value") if isinstance(answer, dict) else None
    if failed:
        raise network_error(f"STOW-RS to {server.name}: {len(failed)} instance(s) were refused")
    return answer if isinstance(answer, dict) else {}


def retrieve(ctx: ServerContext, server: ServerDef, uri: str, on_instance: Callable[[bytes], None],
             arguments: dict[str, str] | None = None, headers: dict[str, str] | None = None,
             client: httpx.Client | None = None) -> int:
    """GET a WADO-RS resource and give each DICOM part to `on_instance`; returns the bytes received."""
    accept = 'multipart/related; type="application/dicom"'
    if server.universal_transfer_syntax:
        accept += "; transfer-syntax=*"
    own = client is None
    client = client or open_client(ctx, server)
    received = 0
    try:
        with client.stream("GET", url(server, uri, arguments), headers={"Accept": accept, **(headers or {})}) as r:
            _check(r, f"WADO-RS {uri}")
            boundary = boundary_of(r.headers.get("content-type", ""))
            if boundary is None:
                raise network_error(f"WADO-RS {uri}: the answer is not multipart/related")
            reader = MultipartReader(boundary)
            for chunk in r.iter_bytes(CHUNK):
                received += len(chunk)
                for part in reader.feed(chunk):
                    on_instance(part.body)
            reader.close()
    except httpx.HTTPError as e:
        raise network_error(f"Cannot retrieve from the DICOMweb server {server.name}: {e}") from None
    except OrthancError as e:
        if e.code == ErrorCode.BAD_REQUEST:  # a malformed multipart answer of the remote server
            raise network_error(f"WADO-RS {uri}: {e.details}") from None
        raise
    finally:
        if own:
            client.close()
    return received
