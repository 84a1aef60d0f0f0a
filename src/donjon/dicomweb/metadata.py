"""WADO-RS metadata without parsing every file on every call: a per-series cache of instance JSON.

Each instance's DICOM JSON (with relative bulk data URIs) is computed once from its file and kept:
in memory (an LRU bounded in bytes) and, with `EnableMetadataCache` (default true, as Orthanc's plugin
1.15+), in attachment 4301 of the series, zlib-compressed, so that it survives restarts. An entry is
keyed by the uuid of the instance's DICOM attachment: a replaced or deleted instance is recomputed or
dropped on the next call, never served stale. StableSeries events precompute series in the background,
and so does a QIDO-RS search of the series of a study (what a viewer does before asking for metadata).

`MainDicomTags` and `Extrapolate` modes (Orthanc's `StudiesMetadata` / `SeriesMetadata`) answer from
the index alone (plus, for Extrapolate, up to three instances).
"""

from __future__ import annotations

import logging
import queue
import struct
import threading
import weakref
import zlib
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from ..core.attachments import read_attachment, read_range
from ..dicom.json_tags import read_dicom
from ..dicom.tag_dictionary import parse_tag
from ..errors import ErrorCode, OrthancError
from ..registry import ChangeType, CompressionType, Level
from . import fastjson, json_model
from .lookup import InstanceRef, instance_refs

if TYPE_CHECKING:
    from ..core.context import ServerContext
    from ..core.events import ChangeEvent
    from .settings import DicomWebSettings

log = logging.getLogger(__name__)

CACHE_ATTACHMENT = 4301
CACHE_VERSION = 1
MEMORY_BUDGET = 128 * 1024 * 1024  # bytes of JSON kept in memory, all series together


class _Entry:
    """The cached instances of one series: public id -> (DICOM attachment uuid, JSON bytes)."""

    __slots__ = ("codec", "instances", "size")

    def __init__(self, codec: str, instances: dict[str, tuple[str, bytes]] | None = None):
        self.codec = codec
        self.instances = instances or {}
        self.size = sum(len(v[1]) for v in self.instances.values())

    def serialize(self) -> bytes:
        body = {"Version": CACHE_VERSION, "Codec": self.codec,
                "Instances": {k: [u, j.decode("utf-8")] for k, (u, j) in self.instances.items()}}
        return zlib.compress(orjson.dumps(body), 1)

    @classmethod
    def load(cls, data: bytes) -> _Entry | None:
        try:
            body = orjson.loads(zlib.decompress(data))
            if body.get("Version") != CACHE_VERSION:
                return None
            return cls(str(body["Codec"]), {k: (str(v[0]), v[1].encode("utf-8"))
                                            for k, v in body["Instances"].items()})
        except (zlib.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, IndexError):
            return None


def compute_instance(ctx: ServerContext, ref: InstanceRef) -> bytes:
    """The JSON of one instance, parsed from its stored file (relative bulk data URIs)."""
    if ref.file is None:
        raise OrthancError(ErrorCode.INEXISTENT_FILE)
    head = _until_pixel_data(ctx, ref)
    if head is not None:
        return json_model.dumps(head)
    return json_model.dumps(file_json(read_attachment(ctx.storage, ref.file), ctx.default_encoding, ref.path))


def _until_pixel_data(ctx: ServerContext, ref: InstanceRef) -> json_model.Json | None:
    """When the pixel data ends the file (the usual case), its value is not needed: read the bytes before
    it and its element header only (no 0.5 MB read per CT slice, no churn of the storage cache)."""
    info, offset, syntax = ref.file, ref.pixel_offset, ref.transfer_syntax
    if info is None or offset is None or syntax is None or syntax == "1.2.840.10008.1.2.1.99" or \
            info.compression != CompressionType.NONE or not ctx.storage.has_read_range():
        return None
    try:
        head = read_range(ctx.storage, info, 0, offset + 12)
    except OrthancError:
        return None
    if len(head) < offset + 8:
        return None
    little, implicit = syntax != "1.2.840.10008.1.2.2", syntax == "1.2.840.10008.1.2"
    endian = "<" if little else ">"
    group, element = struct.unpack_from(endian + "HH", head, offset)
    if (group, element) != (0x7FE0, 0x0010):
        return None
    if implicit:
        vr, length, size = "OW", struct.unpack_from(endian + "L", head, offset + 4)[0], 8
    else:
        vr = head[offset + 4:offset + 6].decode("latin_1")
        if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
            if len(head) < offset + 12:
                return None
            length, size = struct.unpack_from(endian + "L", head, offset + 8)[0], 12
        else:
            length, size = struct.unpack_from(endian + "H", head, offset + 6)[0], 8
    if length == 0xFFFFFFFF or offset + size + length != info.uncompressed_size:
        return None  # encapsulated, or something follows the pixel data: the whole file is needed
    try:
        out = fastjson.instance_json(head[:offset], ctx.default_encoding, ref.path)
    except (fastjson.Unsupported, struct.error, ValueError, IndexError):
        return None
    out["7FE00010"] = {"vr": vr, "BulkDataURI": f"{ref.path}/bulk/7fe00010"} if length else {"vr": vr}
    return out


def file_json(data: bytes, default_codec: str, instance_path: str, only: list[int] | None = None,
              header_only: bool = False) -> json_model.Json:
    """DICOM JSON of a file (or of its part before the pixel data): the fast walker, else pydicom's."""
    try:
        return fastjson.instance_json(data, default_codec, instance_path, only)
    except (fastjson.Unsupported, struct.error, ValueError, IndexError):
        parsed = read_dicom(data, whole=not header_only, pixel_data_follows=header_only)
        return json_model.instance_json(parsed, default_codec, instance_path, only)


class MetadataCache:
    """One per server context (the context is passed to each call, never kept)."""

    def __init__(self, settings: DicomWebSettings):
        self.persist = settings.metadata_cache
        self._lock = threading.Lock()
        self._series_locks: dict[str, threading.Lock] = {}
        self._lru: OrderedDict[str, _Entry] = OrderedDict()
        self._size = 0
        self._queue: queue.Queue[str] = queue.Queue()
        self._scheduled: set[str] = set()
        self._worker: threading.Thread | None = None
        self.computed = 0  # instances parsed from their file (for tests and benchmarks)

    # -- memory ---------------------------------------------------------------------------------
    def _get(self, series: str) -> _Entry | None:
        with self._lock:
            entry = self._lru.get(series)
            if entry is not None:
                self._lru.move_to_end(series)
            return entry

    def _put(self, series: str, entry: _Entry) -> None:
        with self._lock:
            old = self._lru.pop(series, None)
            if old is not None:
                self._size -= old.size
            self._lru[series] = entry
            self._size += entry.size
            while self._size > MEMORY_BUDGET and len(self._lru) > 1:
                _, dropped = self._lru.popitem(last=False)
                self._size -= dropped.size

    def _series_lock(self, series: str) -> threading.Lock:
        with self._lock:
            lock = self._series_locks.get(series)
            if lock is None:
                if len(self._series_locks) > 10_000:
                    self._series_locks.clear()
                lock = self._series_locks[series] = threading.Lock()
            return lock

    # -- answers --------------------------------------------------------------------------------
    def instance(self, ctx: ServerContext, ref: InstanceRef, series_public: str) -> bytes:
        entry = self._get(series_public)
        if entry is not None and entry.codec == ctx.default_encoding and ref.file is not None:
            found = entry.instances.get(ref.public_id)
            if found is not None and found[0] == ref.file.uuid:
                return found[1]
        self.computed += 1
        return compute_instance(ctx, ref)

    def cached_instance(self, ref: InstanceRef, series_public: str) -> bytes | None:
        """Only what memory already holds (QIDO uses it to avoid reading files)."""
        entry = self._get(series_public)
        if entry is None or ref.file is None:
            return None
        found = entry.instances.get(ref.public_id)
        return found[1] if found is not None and found[0] == ref.file.uuid else None

    def series(self, ctx: ServerContext, series_public: str, refs: list[InstanceRef]) -> list[bytes]:
        """The JSON of each instance of one series, in the order of `refs`."""
        with self._series_lock(series_public):
            entry = self._get(series_public)
            if entry is None or entry.codec != ctx.default_encoding:
                entry = self._load(ctx, series_public)
            if entry is None or entry.codec != ctx.default_encoding:
                entry = _Entry(ctx.default_encoding)
            fresh: dict[str, tuple[str, bytes]] = {}
            changed = False
            out: list[bytes] = []
            for ref in refs:
                found = entry.instances.get(ref.public_id)
                if found is not None and ref.file is not None and found[0] == ref.file.uuid:
                    fresh[ref.public_id] = found
                    out.append(found[1])
                    continue
                try:
                    body = compute_instance(ctx, ref)
                except OrthancError as e:
                    if e.code in (ErrorCode.INEXISTENT_FILE, ErrorCode.UNKNOWN_RESOURCE):
                        continue  # deleted meanwhile
                    raise
                self.computed += 1
                changed = True
                if ref.file is not None:
                    fresh[ref.public_id] = (ref.file.uuid, body)
                out.append(body)
            changed = changed or len(fresh) != len(entry.instances)
            entry = _Entry(ctx.default_encoding, fresh) if changed else entry
            self._put(series_public, entry)
            if changed and self.persist:
                self._save(ctx, series_public, entry)
            return out

    def _load(self, ctx: ServerContext, series_public: str) -> _Entry | None:
        if not self.persist:
            return None
        found = ctx.index.reader().resource_attachment(series_public, CACHE_ATTACHMENT)
        if found is None or found[2] is None:
            return None
        try:
            return _Entry.load(read_attachment(ctx.storage, found[2]))
        except OrthancError:
            return None

    def _save(self, ctx: ServerContext, series_public: str, entry: _Entry) -> None:
        from ..core.attachment_ops import put_attachment
        from ..core.revisions import Revision

        try:
            current = ctx.index.reader().resource_attachment(series_public, CACHE_ATTACHMENT)
            info = current[2] if current is not None else None
            if_match = Revision(info.revision, info.uncompressed_md5) if info is not None else None
            put_attachment(ctx, series_public, CACHE_ATTACHMENT, entry.serialize(), if_match, trusted=True)
        except OrthancError as e:  # the series went away, the disk is full...: memory only
            log.info("DICOMweb metadata of series %s not saved: %s", series_public, e.details or e.description)

    # -- precomputation on StableSeries --------------------------------------------------------------
    def watch(self, ctx: ServerContext) -> None:
        """Precompute the series that become stable (started by the first DICOMweb request)."""
        if not self.persist or self._worker is not None:
            return
        ctx_ref = weakref.ref(ctx)

        def on_change(event: ChangeEvent) -> None:
            if event.change_type == ChangeType.STABLE_SERIES:
                self.schedule([event.public_id])
        ctx.events.subscribe(on_change)
        self._worker = threading.Thread(target=self._run, args=(ctx_ref,), name="donjon-dicomweb-cache",
                                        daemon=True)
        self._worker.start()

    def schedule(self, series: list[str]) -> None:
        """Compute these series in the background (once each, however often they are asked for)."""
        if self._worker is None:
            return
        with self._lock:
            fresh = [s for s in series if s not in self._scheduled]
            self._scheduled.update(fresh)
        for s in fresh:
            self._queue.put(s)

    def _run(self, ctx_ref: weakref.ref[ServerContext]) -> None:
        while True:
            try:
                series = self._queue.get(timeout=5)
            except queue.Empty:
                if ctx_ref() is None:
                    return
                continue
            with self._lock:
                self._scheduled.discard(series)
            ctx = ctx_ref()
            if ctx is None:
                return
            try:
                self.refresh(ctx, series)
            except Exception as e:  # the context may be closing: never let the thread die noisily
                log.debug("DICOMweb metadata precomputation of %s skipped: %s", series, e)
            del ctx

    def refresh(self, ctx: ServerContext, series_public: str) -> int:
        """Bring the cache of one series up to date; returns its number of instances."""
        def run(tx: Any) -> list[InstanceRef]:
            found = tx.lookup(series_public)
            if found is None or found[1] != Level.SERIES:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            return instance_refs(tx, tx.descendants(found[0], Level.INSTANCE))
        refs = ctx.index.read(run)
        return len(self.series(ctx, series_public, refs))


# -- answers from the index (MainDicomTags / Extrapolate) -----------------------------------------------

def main_tags_json(blobs: list[bytes | None], sop_class: str | None = None) -> json_model.Json:
    """DICOM JSON of main tags (patient, study, series, instance blobs, in any order)."""
    out: json_model.Json = {}
    for blob in blobs:
        for key, value in (orjson.loads(blob) if blob else {}).items():
            if isinstance(value, str):
                tag = int(key.replace(",", ""), 16)
                out[json_model.tag_key(tag)] = json_model.from_text(tag, value)
    if sop_class:
        out["00080016"] = json_model.from_text(0x00080016, sop_class)
    return out


def extrapolate(samples: list[json_model.Json], tag_names: tuple[str, ...]) -> json_model.Json:
    """The values of `tag_names` shared by a majority of the sampled instances."""
    out: json_model.Json = {}
    for name in tag_names:
        try:
            key = json_model.tag_key(parse_tag(name))
        except OrthancError:
            continue
        votes = Counter(orjson.dumps(s[key], option=orjson.OPT_SORT_KEYS) for s in samples if key in s)
        if votes:
            value, count = votes.most_common(1)[0]
            if count * 2 > len(samples):
                out[key] = orjson.loads(value)
    return out
