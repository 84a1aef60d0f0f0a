"""`/peers`: other Orthanc-compatible servers over HTTP(S) (peers-and-modalities.md §3, §4).

CRUD on the list (configuration, or the index with `OrthancPeersInDatabase`), `/system` to test the
connection, `/store` (an `OrthancPeerStore` job) and `/store-straight` (one DICOM body forwarded as is).
Answers never show secrets: the public view lists header names only and hides the passwords.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ..config_options import is_transfer_syntax
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..jobs.instances import expand_instances
from ..jobs.peer_store import OrthancPeerStoreJob
from ..network.jobs import log_exports
from ..network.peers import parse_peer, peers_of
from .app import Api
from .http import Request, Response, Router, empty_response, json_response
from .jobs import job_options, submit
from .modalities import bool_field, json_body, parse_resources, string_field
from .named_lists import delete_response, list_response, routes_response

log = logging.getLogger(__name__)

_SUB_ROUTES = ["configuration", "store", "store-straight", "system"]


def register(router: Router) -> None:
    router.add("GET", "/peers", list_peers)
    router.add("GET", "/peers/{id}", peer_routes)
    router.add("PUT", "/peers/{id}", put_peer)
    router.add("DELETE", "/peers/{id}", delete_peer)
    router.add("GET", "/peers/{id}/configuration", get_configuration)
    router.add("GET", "/peers/{id}/system", peer_system)
    router.add("POST", "/peers/{id}/store", store)
    router.add("POST", "/peers/{id}/store-straight", store_straight)


async def list_peers(api: Api, request: Request) -> Response:
    return list_response(request, peers_of(api.ctx), lambda peer: peer.public())


async def peer_routes(api: Api, request: Request, id: str) -> Response:
    return routes_response(peers_of(api.ctx), id, _SUB_ROUTES)


async def get_configuration(api: Api, request: Request, id: str) -> Response:
    return json_response(peers_of(api.ctx).require(id).public())


async def put_peer(api: Api, request: Request, id: str) -> Response:
    peers = peers_of(api.ctx)
    peer = parse_peer(await json_body(request))
    await api.run(peers.put, id, peer)
    return empty_response()


async def delete_peer(api: Api, request: Request, id: str) -> Response:
    return await delete_response(api, peers_of(api.ctx), id, f"Unknown Orthanc peer: {id}")


async def peer_system(api: Api, request: Request, id: str) -> Response:
    """`GET <Url>system` on the peer, its body sent back as JSON (a way to test the connection).

    A non-2xx answer of the peer is passed on as a bare status, as Orthanc does, except those Orthanc
    cannot pass on (301, 401, 405: 500 with code 2005 "BadHttpStatusInRest"), which also keeps a
    browser from asking *its* user for the peer's credentials."""
    client = peers_of(api.ctx).client(id)
    response = await api.run(client.request, "GET", "system")
    status = response.status_code
    if 200 <= status < 300:
        return Response(200, response.content, b"application/json")
    log.error("Unable to get the system info from remote Orthanc peer: %s (HTTP %d)", id, status)
    if status in (301, 401, 405) or not 400 <= status < 600:
        raise OrthancError(2005, f"The peer answered HTTP status {status}")
    raise EmptyAnswer(status)


async def store(api: Api, request: Request, id: str) -> Response:
    ctx = api.ctx
    ids, options = parse_resources(await request.body(64 * 1024 * 1024))
    synchronous, priority, permissive = job_options(options)
    transcode = string_field(options, "Transcode")
    if transcode is not None and not is_transfer_syntax(transcode):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Unknown transfer syntax UID: {transcode}")
    compress = bool_field(options, "Compress", False)
    peer = peers_of(ctx).require(id)
    instances = await api.run(expand_instances, ctx, ids, None, OrthancError(ErrorCode.UNKNOWN_RESOURCE))
    job = OrthancPeerStoreJob(ctx, instances, peer, id, permissive=permissive, parent_resources=ids,
                              compress=compress, transcode=transcode)
    await api.run(log_exports, ctx, ids, id)
    return await submit(api, job, synchronous, priority)


async def store_straight(api: Api, request: Request, id: str) -> Response:
    """The body (a DICOM file) goes to `POST <Url>instances` as is; the peer's JSON answer comes back."""
    client = peers_of(api.ctx).client(id)
    body = await request.body()
    response = await api.run(client.request, "POST", "instances", body, {"Content-Type": "application/dicom"})
    answer: Any = None
    if 200 <= response.status_code < 300:
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
    if answer is None:
        raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"Cannot send DICOM to remote peer: {id}")
    return json_response(answer)


__all__ = ["register"]
