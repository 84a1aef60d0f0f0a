"""The REST side of the DICOMweb client (`/dicom-web/servers/...`), without HTTP types: request bodies in,
jobs and answers out, so that the routes stay thin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ErrorCode, OrthancError
from ..jobs.instances import expand_instances
from ..registry import Level
from . import client, json_model
from .jobs import RetrieveClientJob, StowClientJob, resource_uri
from .servers import ServerDef

if TYPE_CHECKING:
    from ..core.context import ServerContext

_CATEGORY = {Level.PATIENT: "Patients", Level.STUDY: "Studies", Level.SERIES: "Series", Level.INSTANCE: "Instances"}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The body must be a JSON object")
    return body


def _strings(body: dict[str, Any], name: str) -> dict[str, str]:
    value = body.get(name, {})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str | int | float)
                                              for k, v in value.items()):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f'"{name}" must be a JSON object of strings')
    return {k: str(v) for k, v in value.items()}


def _uri(body: dict[str, Any]) -> str:
    uri = body.get("Uri")
    if not isinstance(uri, str) or not uri:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'The "Uri" field is missing or not a string')
    return uri


def get(ctx: ServerContext, server: ServerDef, body: Any) -> tuple[bytes, str]:
    """`POST .../get`: the remote answer (body, Content-Type) of a GET on `Uri` with `Arguments`."""
    body = _object(body)
    response = client.get(ctx, server, _uri(body), _strings(body, "Arguments"), _strings(body, "HttpHeaders"))
    return response.content, response.headers.get("content-type", "application/octet-stream")


def qido(ctx: ServerContext, server: ServerDef, body: Any) -> list[json_model.Json]:
    """`POST .../qido`: a QIDO-RS search, each match in Orthanc's readable form."""
    body = _object(body)
    headers = {"Accept": "application/dicom+json", **_strings(body, "HttpHeaders")}
    response = client.get(ctx, server, _uri(body), _strings(body, "Arguments"), headers)
    try:
        answers = response.json()
    except ValueError:
        raise client.network_error("QIDO-RS: the answer is not JSON") from None
    if not isinstance(answers, list):
        raise client.network_error("QIDO-RS: the answer is not a JSON array")
    return [json_model.simplified(a) for a in answers if isinstance(a, dict)]


def stow_job(ctx: ServerContext, server: ServerDef, body: Any) -> StowClientJob:
    """`POST .../stow`: the instances of `Resources` (Orthanc ids of any level), sent by a job."""
    body = _object(body)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, '"Resources" must be a JSON array of Orthanc identifiers')
    groups: dict[str, list[str]] = {name: [] for name in _CATEGORY.values()}
    found = ctx.index.read(lambda tx: {r: tx.lookup(r) for r in resources})
    for public_id in resources:
        if found[public_id] is None:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, f"Unknown resource: {public_id}")
        groups[_CATEGORY[Level(found[public_id][1])]].append(public_id)
    instances = list(dict.fromkeys(expand_instances(ctx, list(resources))))
    return StowClientJob(ctx, server, instances, groups, _strings(body, "HttpHeaders"))


def retrieve_job(ctx: ServerContext, server: ServerDef, body: Any) -> RetrieveClientJob:
    """`POST .../retrieve`: studies, series or instances named by their UIDs, stored by a job."""
    body = _object(body)
    resources = body.get("Resources")
    if not isinstance(resources, list) or not resources:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, '"Resources" must be a non-empty JSON array')
    uris = [resource_uri(item) for item in resources]
    return RetrieveClientJob(ctx, server, uris, _strings(body, "HttpHeaders"), _strings(body, "Arguments"))


def wado_job(ctx: ServerContext, server: ServerDef, body: Any) -> RetrieveClientJob:
    """`POST .../wado`: retrieve whatever the WADO-RS `Uri` answers (a study, a series...)."""
    body = _object(body)
    return RetrieveClientJob(ctx, server, [_uri(body)], _strings(body, "HttpHeaders"), _strings(body, "Arguments"))
