"""`Archive` and `Media` jobs: ZIP files of resources, in Orthanc's layout, built one instance per step.

The ZIP goes either to a temporary file (asynchronous jobs: the `archive` output) or to a
`StreamSink` that the HTTP answer drains while the job writes (synchronous archives are streamed,
never held whole in memory: the sink is a small bounded queue, so the job waits for a slow client).
Layout (jobs.md §8.7): `<PatientID> <PatientName>/<AccessionNumber> <StudyDescription>/<Modality>
<SeriesDescription>/MR000000.dcm`; patients, studies and series in Orthanc ID order, instances in
the order they were stored. Media: `IMAGES/IM<n>` and a DICOMDIR made with pydicom's file sets.
`Transcode` converts each file that Donjon can convert and keeps the others as stored (as Orthanc).
Archive jobs are never saved and cannot be resubmitted.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from ..core.attachments import read_attachment
from ..errors import ErrorCode, OrthancError
from ..index.protocol import FileInfo
from ..registry import CompressionType, ContentType, Level
from .engine import CONTINUE, SUCCESS, Job, JobOutput, StepResult, StopReason

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)

ZIP_COMMENT = b"Created by Orthanc"  # kept for byte-level compatibility of the ZIP (jobs.md §8.7)
COMPRESS_LEVEL = 1  # zlib level: the archive is CPU-bound; level 1 keeps up with the disk
_CHUNK = 256 * 1024
_MB = 1024 * 1024


class SinkClosed(Exception):
    """The reader of a stream went away (client disconnected)."""


class StreamSink:
    """A write-only file object for `zipfile` whose bytes are read by another thread, in chunks."""

    def __init__(self, max_chunks: int = 8):
        self._queue: queue.Queue[bytes | None] = queue.Queue(max_chunks)
        self._buffer = bytearray()
        self._closed = threading.Event()  # reader gone
        self._finished = False
        self.written = 0

    # -- writer side (the job) ----------------------------------------------------------------
    def write(self, data: bytes) -> int:
        self._buffer += data
        self.written += len(data)
        if len(self._buffer) >= _CHUNK:
            self._push(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def flush(self) -> None:
        pass

    def _push(self, item: bytes | None) -> None:
        while True:
            if self._closed.is_set():
                raise SinkClosed()
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """End of the ZIP: flush what remains and tell the reader."""
        if self._finished:
            return
        self._finished = True
        if self._buffer:
            self._push(bytes(self._buffer))
            self._buffer.clear()
        self._push(None)

    def fail(self) -> None:
        """The job stopped without finishing: the reader sees the end of the stream."""
        if self._finished:
            return
        self._finished = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass

    # -- reader side (the HTTP answer) --------------------------------------------------------------
    def get(self, timeout: float = 0.5) -> bytes | bool | None:
        """A chunk, None at the end, False if nothing came within `timeout`."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return False

    def close_reader(self) -> None:
        self._closed.set()


@dataclass
class _Entry:
    name: str
    instance: str
    info: FileInfo


def _ascii_name(text: str) -> str:
    """Orthanc's file-name rule: ASCII letters, digits, `.` and `_`; `^` and runs of spaces -> one space."""
    out: list[str] = []
    last_space = False
    for c in text.replace("^", " "):
        if ord(c) > 127:
            continue
        if c.isspace():
            if not last_space:
                out.append(" ")
                last_space = True
        elif c.isalnum() or c in "._":
            out.append(c)
            last_space = False
    return "".join(out).strip()


class _Directory:
    """Names already used in one folder of the ZIP (a repeated name gets `-2`, `-3`...)."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def unique(self, name: str) -> str:
        count = self.used.get(name, 0) + 1
        self.used[name] = count
        return name if count == 1 else f"{name}-{count}"


def _zip_info(name: str) -> zipfile.ZipInfo:
    zinfo = zipfile.ZipInfo(name, time.localtime()[:6])
    zinfo.compress_type = zipfile.ZIP_DEFLATED
    zinfo._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # not copied by ZipFile.open()
    return zinfo


def _folder_name(tags: dict[str, str], level: Level) -> str:
    first, second = {Level.PATIENT: ("0010,0020", "0010,0010"), Level.STUDY: ("0008,0050", "0008,1030"),
                     Level.SERIES: ("0008,0060", "0008,103e")}[level]
    name = _ascii_name(f"{tags.get(first, '')} {tags.get(second, '')}")
    return name or f"Unknown {level.type_name}"


def _file_format(modality: str) -> str:
    if not modality:
        return "{:08d}.dcm"
    if len(modality) == 1:
        return modality.upper() + "{:07d}.dcm"
    return modality[:2].upper() + "{:06d}.dcm"


def plan_archive(ctx: ServerContext, resources: list[str], media: bool) -> list[_Entry]:
    """The ZIP entries of the resources (unknown id: 404 UnknownResource, as Orthanc)."""
    def run(tx: Any) -> list[_Entry]:
        found = tx.lookup_many(resources)
        instance_ids: set[int] = set()
        for pub in resources:
            if pub not in found:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            rid, level = found[pub]
            instance_ids.update([rid] if level == Level.INSTANCE else tx.descendants(rid, Level.INSTANCE))
        rows: dict[int, Any] = {r.id: r for r in tx.resources(sorted(instance_ids))}
        pending = {r.parent_id for r in rows.values() if r.parent_id is not None}
        while pending:
            new = [r for r in tx.resources(sorted(pending)) if r.id not in rows]
            rows.update((r.id, r) for r in new)
            pending = {r.parent_id for r in new if r.parent_id is not None and r.parent_id not in rows}
        files = tx.attachments_bulk(sorted(instance_ids), ContentType.DICOM)
        children: dict[int | None, list[Any]] = {}
        for r in rows.values():
            children.setdefault(r.parent_id, []).append(r)
        entries: list[_Entry] = []

        def walk(parent: int | None, level: Level, path: str, folder: _Directory, fmt: str) -> None:
            kids = children.get(parent, [])
            if level == Level.INSTANCE:
                for i, r in enumerate(sorted(kids, key=lambda x: x.id)):
                    info = files.get(r.id)
                    if info is None:
                        continue
                    if media:
                        entries.append(_Entry(f"IMAGES/IM{len(entries)}", r.public_id, info))
                    else:
                        entries.append(_Entry(path + folder.unique(fmt.format(i)), r.public_id, info))
                return
            for r in sorted(kids, key=lambda x: x.public_id):
                tags = orjson.loads(r.tags) if r.tags else {}
                sub = path if media else path + folder.unique(_folder_name(tags, level)) + "/"
                walk(r.id, Level(level + 1), sub, _Directory(), _file_format(tags.get("0008,0060", "")))
        walk(None, Level.PATIENT, "", _Directory(), "")
        return entries
    return ctx.index.read(run)


class ArchiveJob(Job):
    """A ZIP (or DICOMDIR media) of resources; `sink` None writes a temporary file (job output)."""

    def __init__(self, ctx: ServerContext, resources: list[str], media: bool = False, extended: bool = False,
                 sink: StreamSink | None = None, description: str = "REST API", transcode: str | None = None):
        self.ctx = ctx
        self.resources = resources
        self.media = media
        self.extended = extended
        self.transcode = transcode  # transfer syntax of the files in the ZIP (kept as stored if impossible)
        self.sink = sink
        self.description = description
        self.job_type = "Media" if media else "Archive"
        self.entries: list[_Entry] | None = None
        self.position = 0
        self.uncompressed = 0
        self.zip: zipfile.ZipFile | None = None
        self.file: Any = None
        self.path: str | None = None
        self.output_ready = False
        self.dicomdir: Any = None
        self.synchronous = False  # a synchronous answer reads the file once: not kept in MediaArchiveSize
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Compute the layout now (so that a synchronous request can fail before its answer starts)."""
        if self.entries is None:
            self.entries = plan_archive(self.ctx, self.resources, self.media)
            self.uncompressed = sum(e.info.uncompressed_size for e in self.entries)

    def start(self) -> None:
        self.prepare()
        if self.zip is not None:
            return
        if self.sink is not None:
            target: Any = self.sink
        else:
            fd, self.path = tempfile.mkstemp(prefix="donjon-archive-", suffix=".zip")
            self.file = os.fdopen(fd, "w+b")
            target = self.file
        self.zip = zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True,
                                   compresslevel=COMPRESS_LEVEL)
        self.zip.comment = ZIP_COMMENT
        if self.media:
            from .media import DicomDir
            self.dicomdir = DicomDir(self.extended)

    def step(self) -> StepResult:
        try:
            return self._step()
        except SinkClosed:
            raise OrthancError(ErrorCode.CANCELED_JOB, "The client closed the connection") from None

    def _step(self) -> StepResult:
        assert self.zip is not None and self.entries is not None
        if self.position < len(self.entries):
            entry = self.entries[self.position]
            info = entry.info
            plain = info.compression == CompressionType.NONE and not self.transcode
            path = self.ctx.storage.path_of(info.uuid) if plain else None
            zinfo = _zip_info(entry.name)
            try:
                if path is not None:  # big files: copied in chunks, and kept out of the storage cache
                    with open(path, "rb") as src, \
                            self.zip.open(zinfo, "w", force_zip64=info.uncompressed_size >= 0x7FFFFFFF) as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                    source: bytes | str = path
                else:
                    source = read_attachment(self.ctx.storage, info)
                    if self.transcode:  # kept as stored if impossible, as peer jobs do
                        from ..dicomweb.transcode import transcoded_or_as_stored  # codecs load on first use

                        source = transcoded_or_as_stored(source, self.transcode)
                    with self.zip.open(zinfo, "w", force_zip64=len(source) >= 0x7FFFFFFF) as dst:
                        dst.write(source)
            except OSError:
                raise OrthancError(ErrorCode.INEXISTENT_FILE, f"Missing file of instance {entry.instance}") from None
            if self.dicomdir is not None:
                self.dicomdir.add(source, entry.name)
            self.position += 1
            return CONTINUE
        if self.dicomdir is not None:
            zinfo = _zip_info("DICOMDIR")
            self.zip.writestr(zinfo, self.dicomdir.encode())
        self.zip.close()
        self.zip = None
        if self.sink is not None:
            self.sink.finish()
        elif self.file is not None:
            self.file.close()
            self.file = None
        self.position += 1
        return SUCCESS

    def abort(self) -> None:
        if self.sink is not None:
            self.sink.close_reader()

    def stop(self, reason: StopReason) -> None:
        if reason is StopReason.SUCCESS:
            if self.sink is None:
                self.output_ready = True
                jobs = getattr(self.ctx, "jobs", None)
                if jobs is not None and not self.synchronous:
                    jobs.keep_archive(self)
            return
        if self.sink is not None:
            self.sink.fail()
        self.zip = None
        if self.file is not None:
            try:
                self.file.close()
            except OSError:
                pass
            self.file = None
        self.discard_outputs()

    def reset(self) -> None:
        raise OrthancError(ErrorCode.BAD_SEQUENCE_OF_CALLS, "Cannot resubmit the creation of an archive")

    def progress(self) -> float:
        total = len(self.entries) + 1 if self.entries is not None else 0
        return 0.0 if total <= 1 else min(1.0, self.position / (total - 1))

    def archive_size(self) -> int:
        if self.sink is not None:
            return self.sink.written
        if self.path is not None:
            try:
                return os.path.getsize(self.path)
            except OSError:
                return 0
        return 0

    def content(self) -> dict[str, Any]:
        size = self.archive_size()
        return {"Description": self.description, "InstancesCount": len(self.entries or []),
                "UncompressedSize": str(self.uncompressed), "UncompressedSizeMB": self.uncompressed // _MB,
                "ArchiveSize": str(size), "ArchiveSizeMB": size // _MB}

    def output(self, key: str) -> JobOutput | None:
        with self._lock:
            if key != "archive" or not self.output_ready or self.path is None:
                return None
            return JobOutput(self.path, "application/zip", "archive.zip")

    def discard_outputs(self) -> None:
        with self._lock:
            self.output_ready = False
            path, self.path = self.path, None
        if path is not None:
            try:
                os.unlink(path)
            except OSError:
                pass


def read_whole(sink: StreamSink) -> bytes:
    """Drain a sink into memory (tests, small archives)."""
    out = io.BytesIO()
    while True:
        chunk = sink.get(timeout=5)
        if chunk is None:
            return out.getvalue()
        if chunk is not False:
            assert isinstance(chunk, bytes)
            out.write(chunk)
