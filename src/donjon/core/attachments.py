"""Writing and reading attachment files, compressed or not, with their MD5s."""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..index.protocol import FileInfo
from ..registry import CompressionType
from ..storage import compression
from ..storage.protocol import StorageArea

# Above this size the MD5s are computed on a helper thread while the file is written and fsynced
# (hashlib and the write both release the GIL): 0.9 ms of a 0.5 MB CT slice's store is hidden in the
# fsync; below it the hand-over would cost more than the hash.
_PARALLEL_MD5_BYTES = 64 * 1024
_hasher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="md5")


def new_file_uuid(storage: StorageArea) -> str:
    """The name of a new file: the storage's choice when it has one (storage/folder.py), else random."""
    naming = getattr(storage, "new_uuid", None)
    return naming() if naming is not None else str(uuidlib.uuid4())


def _md5s(data: bytes, stored: bytes) -> tuple[str, str]:
    md5 = hashlib.md5(data).hexdigest()
    return md5, md5 if stored is data else hashlib.md5(stored).hexdigest()


@dataclass(frozen=True)
class AttachmentPolicy:
    compress: bool = False
    level: int = 6
    md5: bool = True


def write_attachment(storage: StorageArea, data: bytes, content_type: int, policy: AttachmentPolicy,
                     revision: int = 0, compress: bool | None = None, uuid: str | None = None) -> FileInfo:
    """Write `data` as a new file and return its record (the caller indexes it or removes it).

    `uuid` is given by callers that must journal the name before the file exists."""
    do_compress = policy.compress if compress is None else compress
    uuid = uuid or new_file_uuid(storage)
    if do_compress:
        stored = compression.compress(data, policy.level)
        kind = CompressionType.ZLIB_WITH_SIZE
    else:
        stored = data
        kind = CompressionType.NONE
    if not policy.md5:
        storage.create(uuid, stored, content_type)
        md5 = stored_md5 = ""
    elif len(data) >= _PARALLEL_MD5_BYTES:
        hashed = _hasher.submit(_md5s, data, stored)
        storage.create(uuid, stored, content_type)
        md5, stored_md5 = hashed.result()
    else:
        storage.create(uuid, stored, content_type)
        md5, stored_md5 = _md5s(data, stored)
    return FileInfo(uuid=uuid, content_type=content_type, uncompressed_size=len(data), uncompressed_md5=md5,
                    compression=int(kind), compressed_size=len(stored), compressed_md5=stored_md5,
                    revision=revision)


# Compressed files up to this size are compressed by the event loop itself (~50 µs for 2 kB at
# level 1, at most ~0.4 ms at this size); bigger ones on a worker, where zlib lets go of Python's lock
_COMPRESS_ON_LOOP_BYTES = 16 * 1024


def writes_on_loop(storage: StorageArea, policy: AttachmentPolicy, size: int) -> bool:
    """Whether an event loop may write a file itself (`start_attachment_write`): a storage that can
    (a folder: its fsync runs on a native thread) and a small file (a bigger one's copy into the page
    cache, MD5 and compression would hold the loop)."""
    limit = _COMPRESS_ON_LOOP_BYTES if policy.compress else _PARALLEL_MD5_BYTES
    return hasattr(storage, "start_create") and size < limit


def start_attachment_write(storage: StorageArea, data: bytes, content_type: int,
                           policy: AttachmentPolicy) -> Awaitable[FileInfo]:
    """`write_attachment` on an event loop (`writes_on_loop`): the file is compressed if the policy
    says so, written and its fsync started now; the MD5s are computed while it runs; the returned
    coroutine waits for the fsync."""
    uuid = new_file_uuid(storage)
    if policy.compress:
        stored, kind = compression.compress(data, policy.level), CompressionType.ZLIB_WITH_SIZE
    else:
        stored, kind = data, CompressionType.NONE
    creating = storage.start_create(uuid, stored, content_type)  # type: ignore[attr-defined]
    md5, stored_md5 = _md5s(data, stored) if policy.md5 else ("", "")
    info = FileInfo(uuid=uuid, content_type=content_type, uncompressed_size=len(data), uncompressed_md5=md5,
                    compression=int(kind), compressed_size=len(stored), compressed_md5=stored_md5)
    return _written(creating, info)


async def _written(creating: Awaitable[None], info: FileInfo) -> FileInfo:
    await creating
    return info


def read_attachment(storage: StorageArea, info: FileInfo) -> bytes:
    """The user-visible bytes of an attachment."""
    stored = storage.read(info.uuid, info.content_type)
    if info.compression == CompressionType.ZLIB_WITH_SIZE:
        return compression.decompress(stored)
    return stored


def read_range(storage: StorageArea, info: FileInfo, start: int, end: int) -> bytes:
    if info.compression == CompressionType.NONE and storage.has_read_range():
        return storage.read_range(info.uuid, start, end, info.content_type)
    return read_attachment(storage, info)[start:end]
