"""Jobs of the DICOMweb client: STOW-RS to a server (`DicomWebStowClient`) and WADO-RS retrieval from a
server (`DicomWebWadoRetrieveClient`), with the type names and Content of Orthanc's plugin.

One HTTP connection per job, opened at the first step and closed when the job stops. A step sends a
batch of instances (at most 10 or 16 MB) or retrieves one resource, so pause and cancel act between
them. Both can be saved (`SaveJobs`) and are reloaded by name of the server.

A saved job holds no secret: the server's definition is re-read from the configuration (or the servers
registry) when the job is reloaded, and the saved copy, a fallback for a server since removed, has no
password, key password nor header values. The values of the job's own `HttpHeaders` are not saved either
(only their names): a reloaded job that had some fails with a message asking to submit it again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import httpx

from ..core.attachments import read_attachment
from ..core.store import StoreOrigin
from ..errors import ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..jobs.engine import CONTINUE, SUCCESS, Job, StepResult, StopReason
from ..jobs.persistence import register_loader
from ..registry import ContentType, Origin
from . import client
from .servers import ServerDef, parse_server

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)

BATCH_INSTANCES = 10
BATCH_BYTES = 16 * 1024 * 1024
_MB = 1024 * 1024


def _server(ctx: ServerContext, saved: dict[str, Any]) -> ServerDef:
    """The server of a reloaded job: the current definition of that name, else the saved one."""
    from .state import state_of

    current = state_of(ctx).servers(ctx).get(str(saved["Server"]))
    return current if current is not None else parse_server(str(saved["Server"]), saved["Definition"])


_SECRETS = ("Password", "CertificateKeyPassword", "HttpHeaders")


class _HttpJob(Job):
    save_each_step = True

    def __init__(self, ctx: ServerContext, server: ServerDef, http_headers: dict[str, str] | None = None):
        self.ctx = ctx
        self.server = server
        self.http_headers = dict(http_headers or {})
        self.lost_headers: list[str] = []  # names of headers whose values were not saved (reloaded job)
        self.position = 0
        self.network_bytes = 0
        self._client: httpx.Client | None = None

    def http(self) -> httpx.Client:
        if self.lost_headers:
            raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS,
                               f"DICOMweb job to {self.server.name}: the values of its HTTP headers "
                               f"{', '.join(self.lost_headers)} are not saved across restarts (they may be "
                               "secrets); submit the job again")
        if self._client is None:
            self._client = client.open_client(self.ctx, self.server)
        return self._client

    def stop(self, reason: StopReason) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def abort(self) -> None:
        self.stop(StopReason.SHUTDOWN)

    def base(self) -> dict[str, Any]:
        """The saved state common to both jobs, without any secret (see the module's docstring)."""
        definition = {k: v for k, v in self.server.serialize().items() if k not in _SECRETS}
        return {"Type": self.job_type, "Server": self.server.name, "Definition": definition,
                "HttpHeaderNames": sorted({*self.http_headers, *self.lost_headers}),
                "Position": self.position, "NetworkBytes": self.network_bytes}


def _reloaded(job: _HttpJob, saved: dict[str, Any]) -> None:
    """The state common to both jobs; header values saved by an older version are used, then dropped."""
    legacy = saved.get("HttpHeaders")
    if isinstance(legacy, dict):
        job.http_headers = {str(k): str(v) for k, v in legacy.items()}
    job.lost_headers = sorted(str(n) for n in saved.get("HttpHeaderNames") or [] if n not in job.http_headers)
    job.position, job.network_bytes = int(saved.get("Position", 0)), int(saved.get("NetworkBytes", 0))


class StowClientJob(_HttpJob):
    """`POST /dicom-web/servers/{name}/stow`: the resources' instances, expanded when the job is created."""

    job_type = "DicomWebStowClient"

    def __init__(self, ctx: ServerContext, server: ServerDef, instances: list[str], resources: dict[str, list[str]],
                 http_headers: dict[str, str] | None = None):
        super().__init__(ctx, server, http_headers)
        self.instances = list(instances)
        self.resources = resources
        self.sent = 0

    def step(self) -> StepResult:
        if self.position >= len(self.instances):
            return SUCCESS
        http = self.http()
        batch: list[bytes] = []
        size = 0
        while self.position < len(self.instances) and len(batch) < BATCH_INSTANCES and size < BATCH_BYTES:
            data = self._read(self.instances[self.position])
            self.position += 1
            if data is not None:
                batch.append(data)
                size += len(data)
        if batch:
            client.stow(self.ctx, self.server, batch, self.http_headers, http)
            self.sent += len(batch)
            self.network_bytes += size
        return SUCCESS if self.position >= len(self.instances) else CONTINUE

    def _read(self, public_id: str) -> bytes | None:
        info = self.ctx.index.reader().instance_attachment(public_id, ContentType.DICOM)
        if not isinstance(info, FileInfo):  # False: no such instance; None: no DICOM file
            log.warning("DICOMweb STOW-RS: instance %s was deleted meanwhile, skipped", public_id)
            return None
        return read_attachment(self.ctx.storage, info)

    def reset(self) -> None:
        self.position = self.sent = self.network_bytes = 0

    def progress(self) -> float:
        return 1.0 if not self.instances else self.position / len(self.instances)

    def content(self) -> dict[str, Any]:
        return {"InstancesCount": str(self.sent), "NetworkSizeMB": str(self.network_bytes // _MB),
                "Resources": self.resources, "Server": self.server.name}

    def serialize(self) -> dict[str, Any]:
        return {**self.base(), "Instances": self.instances, "Resources": self.resources, "Sent": self.sent}


def _load_stow(ctx: ServerContext, saved: dict[str, Any]) -> StowClientJob:
    job = StowClientJob(ctx, _server(ctx, saved), [str(x) for x in saved["Instances"]], dict(saved["Resources"]))
    _reloaded(job, saved)
    job.sent = int(saved.get("Sent", 0))
    return job


class RetrieveClientJob(_HttpJob):
    """`POST .../retrieve` (one study, series or instance per step) and `POST .../wado` (one URI)."""

    job_type = "DicomWebWadoRetrieveClient"

    def __init__(self, ctx: ServerContext, server: ServerDef, uris: list[str],
                 http_headers: dict[str, str] | None = None, arguments: dict[str, str] | None = None,
                 origin: StoreOrigin | None = None):
        super().__init__(ctx, server, http_headers)
        self.uris = list(uris)
        self.arguments = dict(arguments or {})
        self.origin = origin or StoreOrigin(origin=Origin.PLUGINS)
        self.received: list[str] = []

    def step(self) -> StepResult:
        if self.position >= len(self.uris):
            return SUCCESS
        self.network_bytes += client.retrieve(self.ctx, self.server, self.uris[self.position], self._store,
                                              self.arguments, self.http_headers, self.http())
        self.position += 1
        return SUCCESS if self.position >= len(self.uris) else CONTINUE

    def _store(self, data: bytes) -> None:
        try:
            result = self.ctx.store(data, self.origin)
        except OrthancError as e:
            raise OrthancError(e.code, f"DICOMweb retrieval from {self.server.name}: {e.details or e.description}"
                               ) from None
        self.received.append(result.ids.instance)

    def reset(self) -> None:
        self.position = self.network_bytes = 0
        self.received = []

    def progress(self) -> float:
        return 1.0 if not self.uris else self.position / len(self.uris)

    def content(self) -> dict[str, Any]:
        return {"ReceivedInstancesCount": str(len(self.received)), "NetworkUsageMB": str(self.network_bytes // _MB),
                "Instances": list(dict.fromkeys(self.received))}

    def serialize(self) -> dict[str, Any]:
        return {**self.base(), "Uris": self.uris, "Arguments": self.arguments, "Received": self.received}


def _load_retrieve(ctx: ServerContext, saved: dict[str, Any]) -> RetrieveClientJob:
    job = RetrieveClientJob(ctx, _server(ctx, saved), [str(x) for x in saved["Uris"]],
                            arguments=dict(saved.get("Arguments") or {}))
    _reloaded(job, saved)
    job.received = [str(x) for x in saved.get("Received", [])]
    return job


register_loader(StowClientJob.job_type, _load_stow)
register_loader(RetrieveClientJob.job_type, _load_retrieve)


def resource_uri(item: Any) -> str:
    """`{"Study": ..., "Series": ..., "Instance": ...}` of `/retrieve` -> the WADO-RS path."""
    if not isinstance(item, dict) or not isinstance(item.get("Study"), str) or not item["Study"]:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Each resource to retrieve needs a "Study" field')
    uri = f"studies/{item['Study']}"
    if isinstance(item.get("Series"), str) and item["Series"]:
        uri += f"/series/{item['Series']}"
        if isinstance(item.get("Instance"), str) and item["Instance"]:
            uri += f"/instances/{item['Instance']}"
    elif item.get("Instance"):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, 'Retrieving an instance needs its "Series"')
    return uri
