"""`OrthancPeerStore`: send instances to an Orthanc peer, one `POST <Url>instances` per instance.

A set-of-instances job (jobs.md §7, §8.2): the resources are expanded when the job is created, the
HTTP client is opened on the first step and kept alive until the job stops. `Compress` sends a gzip
body (level 9) with `Content-Encoding: gzip`; `Transcode` converts each file when Donjon can, else
sends it unchanged (Orthanc's rule). `Size` counts the bytes handed to the network, before the call.

Saved jobs (`SaveJobs`) keep the peer without its secrets (password, key password, header values)
plus its symbolic name: on reload the secrets are taken from the peer of that name when it still
points to the same URL and account.
"""

from __future__ import annotations

import gzip
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..core.attachments import read_attachment
from ..errors import ErrorCode, OrthancError
from ..network.peers import HttpSettings, PeerClient, PeerDef, parse_peer, peers_of, status_details
from .engine import CONTINUE, SUCCESS, StepResult, StopReason, failure
from .instances import InstancesJob
from .persistence import register_loader

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)

_MB = 1024 * 1024
PARALLEL_SENDS = 4  # instances sent at the same time by one job (measured: 4 beats Orthanc -> Orthanc)


class OrthancPeerStoreJob(InstancesJob):
    job_type = "OrthancPeerStore"

    def __init__(self, ctx: ServerContext, instances: list[str], peer: PeerDef, peer_name: str,
                 description: str = "REST API", permissive: bool = False,
                 parent_resources: list[str] | None = None, compress: bool = False,
                 transcode: str | None = None, parallel: int = PARALLEL_SENDS):
        super().__init__(ctx, instances, description, permissive, parent_resources)
        self.peer = peer
        self.peer_name = peer_name
        self.compress = compress
        self.transcode = transcode
        self.parallel = max(1, parallel)
        self.size = 0
        self._size_lock = threading.Lock()
        self._client: PeerClient | None = None
        self._pool: ThreadPoolExecutor | None = None

    # -- one instance -------------------------------------------------------------------------------
    def _http(self) -> PeerClient:
        client = self._client
        if client is None:
            client = self._client = PeerClient(self.peer, HttpSettings.of(self.ctx.config))
        return client

    def _read(self, instance_id: str) -> bytes | None:
        for refresh in (False, True):  # a cached file record may be stale
            info = self.ctx.instance_file(instance_id, refresh=refresh)
            if info is None:
                return None
            try:
                return read_attachment(self.ctx.storage, info)
            except (OSError, OrthancError):
                continue
        return None

    def handle_instance(self, instance_id: str) -> bool:
        data = self._read(instance_id)
        if data is None:
            log.warning("An instance was removed after the job was issued: %s", instance_id)
            return False
        if self.transcode:
            from ..dicomweb.transcode import transcoded_or_as_stored  # codecs load on first use

            data = transcoded_or_as_stored(data, self.transcode)
        headers = {"Content-Type": "application/dicom"}
        if self.compress:
            data = gzip.compress(data, compresslevel=9, mtime=0)
            headers["Content-Encoding"] = "gzip"
        with self._size_lock:
            self.size += len(data)
        response = self._http().request("POST", "instances", data, headers)
        if not 200 <= response.status_code < 300:
            if self.compress:
                log.error('Cannot send DICOM over HTTP using "gzip" as "Content-Encoding": make sure that the '
                          "peer understands it (Orthanc >= 1.6.0)")
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL, status_details(response, "POST"))
        return True

    # -- steps: one instance, or a few at once ------------------------------------------------------
    def step(self) -> StepResult:
        if self.parallel <= 1 or self.position >= len(self.instances):
            return super().step()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="donjon-peer-store")
        self._http()  # one client shared by the senders, made here rather than by each of them
        batch = self.instances[self.position:self.position + self.parallel]
        outcomes = list(self._pool.map(self._attempt, batch))
        for instance, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, OrthancError):
                if not self.permissive:
                    return failure(outcome.code, outcome.details or "")
                log.warning("OrthancPeerStore job: error on instance %s (ignored, permissive): %s",
                            instance, outcome.details or outcome.description)
            elif not outcome:  # counted even when it fails the job, as in InstancesJob.step
                self.failed.append(instance)
                if not self.permissive:
                    return failure(ErrorCode.INTERNAL_ERROR)
            self.position += 1
        return SUCCESS if self.position >= len(self.instances) else CONTINUE

    def _attempt(self, instance_id: str) -> bool | OrthancError:
        try:
            return self.handle_instance(instance_id)
        except OrthancError as e:
            return e
        except Exception as e:
            log.exception("OrthancPeerStore job: unexpected error on instance %s", instance_id)
            return OrthancError(ErrorCode.INTERNAL_ERROR, str(e))

    def stop(self, reason: StopReason) -> None:
        """Close the connections (pause, cancel, end, shutdown), as Orthanc resets its client. There is
        no `abort`: at shutdown the running sends end normally (at worst after the HTTP timeout), so
        that the job is saved as running and goes on after a restart instead of failing."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    # -- status and persistence ---------------------------------------------------------------------
    def content(self) -> dict[str, Any]:
        out = super().content()
        out["Peer"] = self.peer.serialize(force_advanced=False, include_secrets=False)
        out["Compress"] = self.compress
        if self.transcode:
            out["Transcode"] = self.transcode
        out["Size"] = str(self.size)
        out["SizeMB"] = self.size // _MB
        return out

    def serialize(self) -> dict[str, Any]:
        out = self.serialize_base()
        out.update({"Peer": self.peer.serialize(force_advanced=True, include_secrets=False),
                    "PeerName": self.peer_name, "Compress": self.compress, "Size": str(self.size)})
        if self.transcode:
            out["Transcode"] = self.transcode
        return out


def _load(ctx: ServerContext, saved: dict[str, Any]) -> OrthancPeerStoreJob:
    spec = dict(saved["Peer"])
    spec.pop("HttpHeaders", None)  # saved without their values
    peer = parse_peer(spec)
    name = str(saved.get("PeerName", ""))
    current = peers_of(ctx).get(name) if name else None
    if current is not None and current.same_target(peer):
        peer = current
    elif peer.username:
        log.warning('The saved job to peer "%s" is reloaded without its credentials (the peer has changed)', name)
    transcode = saved.get("Transcode")
    job = OrthancPeerStoreJob(
        ctx, [str(x) for x in saved["Instances"]], peer, name, description=str(saved.get("Description", "REST API")),
        permissive=bool(saved.get("Permissive", False)),
        parent_resources=[str(x) for x in saved.get("ParentResources", [])],
        compress=bool(saved.get("Compress", False)), transcode=str(transcode) if transcode else None)
    job.size = int(saved.get("Size", "0"))
    job.load_base(saved)
    return job


register_loader(OrthancPeerStoreJob.job_type, _load)

__all__ = ["OrthancPeerStoreJob"]
