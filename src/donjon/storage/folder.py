"""Orthanc's folder layout: <root>/<uuid[0:2]>/<uuid[2:4]>/<uuid>, no extension.

New files are named so that consecutive ones share their folders (`FolderStorage.new_uuid`).
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import logging
import os
import re
import threading
import time
import uuid as uuidlib
import weakref
from collections.abc import Awaitable, Callable

from ..errors import ErrorCode, OrthancError
from . import native_sync
from .wait_hook import before_wait

log = logging.getLogger(__name__)

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

TIDY_AFTER = 1.0  # seconds without a new file before the folders emptied by removals are removed
_TIDY_QUEUE = 4096  # folders waiting for that; past it, a removal removes its folders at once
_TIDY_CHECK = 64  # folders removed between two checks that the storage is still idle
_untidy: weakref.WeakSet[FolderStorage] = weakref.WeakSet()
# New files named into one pair of folders before the next pair is drawn: a folder per 256 files
# (Orthanc, naming each file at random, makes one for nearly every file until its 65,536 are there)
FILES_PER_FOLDER = 256
_RWF_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)  # Linux


class FolderStorage:
    """Orthanc's layout, and its rule that a folder goes with its last file: but where Orthanc
    removes the emptied folders at once, this storage waits until no file has been written for
    `tidy_after` seconds. Removing a folder costs as much as removing its file (~85 µs here) and
    the next file there must create it again: a storage recycling one patient per new patient, or
    a deletion amid ingest, spends that when clients are waiting. The end state is Orthanc's once
    the storage is idle, and at the latest when the process exits; a crash leaves empty folders."""

    def __init__(self, root: str, fsync: bool = True, tidy_after: float | None = TIDY_AFTER):
        self.root = os.path.abspath(root)
        self.fsync = fsync
        self.tidy_after = tidy_after  # None: emptied folders are removed at once, as Orthanc does
        self._emptied: dict[str, None] = {}  # (an ordered set)
        self._tidy_lock = threading.Lock()
        self._tidier: threading.Thread | None = None
        self._last_write = 0.0
        self._naming_lock = threading.Lock()
        self._prefix = ""
        self._prefix_left = 0
        os.makedirs(self.root, exist_ok=True)

    def new_uuid(self) -> str:
        """A random (version 4) uuid for a new file, whose first four digits, its two folders, are
        those of the files named just before it, for `FILES_PER_FOLDER` files; then a new random pair.

        Orthanc names each file at random, so until its 65,536 folders exist nearly every new file
        makes one, and a removal empties one per file: on this machine's ext4 a file in a new folder
        cost 390-1,430 µs of system time with its fsync, in an existing one 140-640 (2,000 files of
        1.6 kB, 6 runs). The layout stays Orthanc's (Orthanc reads these files where it expects them),
        and the name keeps 106 random bits. Object storage keeps random names (storage/s3.py): there
        a shared prefix would send consecutive writes to one partition."""
        fresh = str(uuidlib.uuid4())
        with self._naming_lock:
            if self._prefix_left == 0:
                self._prefix = fresh[:4]
                self._prefix_left = FILES_PER_FOLDER
            self._prefix_left -= 1
            return self._prefix + fresh[4:]

    def _path(self, uuid: str) -> str:
        if not _UUID.match(uuid):
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, "Bad attachment uuid")
        return os.path.join(self.root, uuid[0:2], uuid[2:4], uuid)

    def path_of(self, uuid: str) -> str | None:
        return self._path(uuid)

    def create(self, uuid: str, data: bytes, content_type: int | None = None) -> None:
        """Write and fsync the file. The directory entry is made durable by the same journal commit on
        journaling file systems (ext4, xfs), which is what Orthanc relies on too."""
        path = self._path(uuid)
        self._last_write = time.monotonic()
        fd = self._open_new(path, uuid)
        try:
            _write_all(fd, data)
            if self.fsync:
                before_wait()
                os.fsync(fd)
        except OSError as e:
            os.close(fd)
            self._unlink(path)
            raise _write_error(e) from None
        os.close(fd)

    def start_create(self, uuid: str, data: bytes, content_type: int | None = None) -> Awaitable[None]:
        """`create` for an event loop, for small files: the file is opened and written at once (a copy
        into the page cache) and its fsync started on a native thread (storage/native_sync.py); the
        loop goes on meanwhile, and awaits the returned coroutine, which closes the file."""
        path = self._path(uuid)
        self._last_write = time.monotonic()
        fd = self._open_new(path, uuid)
        try:
            _write_all(fd, data)
            synced = native_sync.fsync(fd) if self.fsync else None
        except BaseException as e:
            os.close(fd)
            self._unlink(path)
            if isinstance(e, OSError):
                raise _write_error(e) from None
            raise
        return self._finish_create(fd, path, synced)

    async def _finish_create(self, fd: int, path: str, synced: asyncio.Future[None] | None) -> None:
        try:
            if synced is not None:
                try:
                    await asyncio.shield(synced)
                except asyncio.CancelledError:
                    synced.add_done_callback(_close_when_done(fd))  # never close under a running fsync
                    fd = -1
                    raise
        except OSError as e:
            os.close(fd)
            self._unlink(path)
            raise _write_error(e) from None
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        os.close(fd)

    @staticmethod
    def _open_new(path: str, uuid: str) -> int:
        # a concurrent removal (another thread or process emptying these folders) may remove them
        # between makedirs and open, or remove the first level while makedirs creates the second;
        # after a few quick tries, a short pause lets the remover finish (a busy folder, not a fault)
        for attempt in range(200):
            if attempt >= 5:
                time.sleep(0.001)
            try:
                return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                except (FileNotFoundError, FileExistsError):  # (exist_ok, then removed before its check)
                    continue
                except OSError as e:
                    raise _write_error(e) from None
            except FileExistsError:
                raise OrthancError(ErrorCode.INTERNAL_ERROR, f"Storage file already exists: {uuid}") from None
            except OSError as e:
                raise _write_error(e) from None
        raise OrthancError(ErrorCode.CANNOT_WRITE_FILE, f"Cannot create the folder of {uuid}")

    def _open_existing(self, uuid: str) -> tuple[int, int]:
        """(descriptor, size) of a stored file, for reading; the caller closes it."""
        try:
            fd = os.open(self._path(uuid), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OrthancError(ErrorCode.INEXISTENT_FILE) from None
        try:
            return fd, os.fstat(fd).st_size
        except BaseException:
            os.close(fd)
            raise

    def read(self, uuid: str, content_type: int | None = None) -> bytes:
        """The whole file in one read of its size (a buffered `open` costs a third more: ~9 against
        6 µs for a small file, the hot path of a download)."""
        fd, size = self._open_existing(uuid)
        try:
            data = os.read(fd, size + 1)  # one byte more: a file that grew meanwhile is read to its end
            if len(data) <= size:
                return data
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_resident(self, uuid: str) -> memoryview | None:
        """The whole file when the page cache holds all of it, else None at once (the caller, an event
        loop, then has a worker read it): `preadv` with RWF_NOWAIT copies what is cached and never
        waits for the disk. A mapping of the file would spare that copy (~15% more 0.5 MB downloads
        per second here), but a file truncated under it, or a disk error on one of its pages, would
        end the process with SIGBUS where a read gives an error."""
        fd, size = self._open_existing(uuid)
        try:
            if size == 0 or _RWF_NOWAIT is None:
                return None
            buffer = bytearray(size)
            try:
                got = os.preadv(fd, [buffer], 0, _RWF_NOWAIT)
            except OSError:  # EAGAIN: not cached; EOPNOTSUPP: a file system without it (NFS...)
                return None
            return memoryview(buffer) if got == size else None
        finally:
            os.close(fd)

    def read_range(self, uuid: str, start: int, end: int, content_type: int | None = None) -> bytes:
        try:
            fd = os.open(self._path(uuid), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise OrthancError(ErrorCode.INEXISTENT_FILE) from None
        try:
            data = os.pread(fd, end - start, start)
            while 0 < len(data) < end - start:  # (one call reads at most ~2 GB)
                more = os.pread(fd, end - start - len(data), start + len(data))
                if not more:
                    break
                data += more
        finally:
            os.close(fd)
        if len(data) != end - start:
            raise OrthancError(ErrorCode.BAD_RANGE)
        return data

    def has_read_range(self) -> bool:
        return True

    def size_of(self, uuid: str, content_type: int | None = None) -> int | None:
        """The size of the file, None when it does not exist."""
        try:
            return os.stat(self._path(uuid)).st_size
        except FileNotFoundError:
            return None

    def remove(self, uuid: str, content_type: int | None = None) -> None:
        path = self._path(uuid)
        self._unlink(path)
        folder = os.path.dirname(path)
        if self.tidy_after is not None:
            with self._tidy_lock:
                if len(self._emptied) < _TIDY_QUEUE:
                    self._emptied[folder] = None
                    if self._tidier is None:
                        _untidy.add(self)
                        self._tidier = threading.Thread(target=self._tidy_when_idle, name="storage-tidy",
                                                        daemon=True)
                        self._tidier.start()
                    return
        _remove_folders(folder)

    def tidy(self, only_when_idle: bool = False) -> None:
        """Remove the folders emptied by removals, and their parents, where nothing came back since.
        `only_when_idle`: stop as soon as a file is written, leaving the rest for later."""
        with self._tidy_lock:
            folders, self._emptied = list(self._emptied), {}
        for done, folder in enumerate(folders):
            if only_when_idle and done % _TIDY_CHECK == 0 and not self._idle():
                with self._tidy_lock:
                    self._emptied.update(dict.fromkeys(folders[done:]))
                return
            _remove_folders(folder)

    def _idle(self) -> bool:
        assert self.tidy_after is not None
        return time.monotonic() - self._last_write >= self.tidy_after

    def _tidy_when_idle(self) -> None:
        assert self.tidy_after is not None
        while True:
            time.sleep(max(self.tidy_after, 0.01))
            if self._idle():
                self.tidy(only_when_idle=True)
            with self._tidy_lock:
                if not self._emptied:
                    self._tidier = None
                    return

    @staticmethod
    def _unlink(path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("Cannot remove %s: %s", path, e)

    def scan(self) -> list[str]:
        found: list[str] = []
        for first in _listdir(self.root):
            if len(first) != 2:
                continue
            for second in _listdir(os.path.join(self.root, first)):
                if len(second) != 2:
                    continue
                for name in _listdir(os.path.join(self.root, first, second)):
                    if _UUID.match(name) and name[0:2] == first and name[2:4] == second:
                        found.append(name)
        return found


def _remove_folders(folder: str) -> None:
    """Remove a second-level folder and its parent, each only if empty."""
    for directory in (folder, os.path.dirname(folder)):
        try:
            os.rmdir(directory)
        except OSError:
            break


@atexit.register
def _tidy_at_exit() -> None:
    for storage in list(_untidy):
        storage.tidy()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _close_when_done(fd: int) -> Callable[[asyncio.Future[None]], None]:
    def close(synced: asyncio.Future[None]) -> None:
        if not synced.cancelled():
            synced.exception()  # (read: its store is gone, nobody else will)
        os.close(fd)
    return close


def _write_error(e: OSError) -> OrthancError:
    """A full disk (or quota) is Orthanc's FullStorage, answered 507 (REST) and 0xA700 (DIMSE)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return OrthancError(ErrorCode.FULL_STORAGE, f"The storage area is full: {e.strerror}", http_status=507)
    return OrthancError(ErrorCode.CANNOT_WRITE_FILE, str(e.strerror))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except (NotADirectoryError, FileNotFoundError):
        return []
