"""`donjon storage compress|uncompress`: rewrite every attachment of a storage area in the other form.

Never losing a file, whatever the moment of an interruption:
  1. the batch's file names (old uuid, new uuid) are written to a journal and fsynced;
  2. each new file is written (and fsynced) beside the old one, after the old one's MD5 was checked;
  3. one index transaction switches the records (`replace_attachment`, revision + 1, as the
     `compress` route does), only where the record still names the old file;
  4. the old files are removed, then the journal is emptied.
A crash before 3 leaves the old records and files (the new files are removed when the command runs
again, from the journal); a crash after 3 leaves the new ones (the old files are removed then). The
command is idempotent: attachments already in the wanted form are skipped, so running it again
resumes the work.

Compressing also writes the header of each DICOM file (attachment 3, the bytes until the pixel data)
where it is missing, as a server with `StorageCompression` does at reception: tags are then answered
without decompressing whole files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..core.attachments import AttachmentPolicy, new_file_uuid, write_attachment
from ..core.clock import now_utc
from ..errors import OrthancError
from ..index.protocol import FileInfo
from ..registry import ChangeType, CompressionType, ContentType, is_user_key
from . import compression
from .maintenance import Record, batched, records
from .protocol import StorageArea

log = logging.getLogger(__name__)

JOURNAL_NAME = "storage-convert.journal"


@dataclass
class ConvertReport:
    """What a run did; sizes are those of the stored files."""

    examined: int = 0
    converted: int = 0
    already: int = 0
    headers: int = 0
    stale: int = 0
    recovered: int = 0
    failures: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    bytes_data: int = 0  # uncompressed size of the files converted
    seconds: float = 0.0


@dataclass
class _Work:
    record: Record
    new_uuid: str | None  # None: the file is already in the wanted form (only its header is missing)
    header_uuid: str | None
    new: FileInfo | None = None
    header: FileInfo | None = None
    error: str | None = None


class Journal:
    """The file names of the batch in flight, durable before any new file exists."""

    def __init__(self, folder: str):
        self.path = os.path.join(folder, JOURNAL_NAME)

    def entries(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:  # a torn last line: no file of its batch was written yet
                continue
        return out

    def write(self, work: Iterable[_Work]) -> None:
        text = "".join(json.dumps({"resource": w.record.resource_id, "type": w.record.info.content_type,
                                   "old": w.record.info.uuid, "new": w.new_uuid, "header": w.header_uuid}) + "\n"
                       for w in work)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def recover(index: Any, storage: StorageArea, journal: Journal) -> int:
    """Finish the batch an interrupted run left: keep the files the records name, remove the others."""
    entries = journal.entries()
    if not entries:
        return 0

    def current(tx: Any) -> list[tuple[FileInfo | None, FileInfo | None]]:
        return [(tx.attachment(e["resource"], e["type"]),
                 tx.attachment(e["resource"], ContentType.DICOM_UNTIL_PIXEL_DATA)) for e in entries]
    for entry, (info, header) in zip(entries, index.read(current), strict=True):
        if entry.get("new"):
            if info is not None and info.uuid == entry["new"]:
                storage.remove(entry["old"], entry["type"])  # switched: the old file had not gone yet
            else:
                storage.remove(entry["new"], entry["type"])  # not switched: the new file is an orphan
        if entry.get("header") and (header is None or header.uuid != entry["header"]):
            storage.remove(entry["header"], ContentType.DICOM_UNTIL_PIXEL_DATA)
    journal.clear()
    log.warning("Recovered %d attachment(s) of an interrupted run", len(entries))
    return len(entries)


class Converter:
    def __init__(self, index: Any, storage: StorageArea, state_dir: str, compress: bool, level: int,
                 md5: bool, jobs: int = 4, batch: int = 32,
                 on_progress: Callable[[int, int], None] | None = None):
        self.index = index
        self.storage = storage
        self.journal = Journal(state_dir)
        self.compress = compress
        self.target = CompressionType.ZLIB_WITH_SIZE if compress else CompressionType.NONE
        self.level = level
        self.md5 = md5
        self.jobs = max(1, jobs)
        self.batch = max(1, batch)
        self.on_progress = on_progress or (lambda count, nbytes: None)
        self.report = ConvertReport()

    def _work(self, record: Record) -> _Work | None:
        """What this record needs, None when nothing."""
        rewrite = record.info.compression != self.target
        header = self.compress and record.header_offset is not None
        if not rewrite and not header:
            return None
        return _Work(record, new_file_uuid(self.storage) if rewrite else None,
                     new_file_uuid(self.storage) if header else None)

    def pending(self) -> tuple[int, int]:
        """(attachments, stored bytes) still to handle: for the progress bar."""
        count = size = 0
        for r in records(self.index, headers=self.compress):
            if self._work(r) is not None:
                count += 1
                size += r.info.compressed_size
        return count, size

    def run(self) -> ConvertReport:
        started = time.monotonic()
        self.report.recovered = recover(self.index, self.storage, self.journal)
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="convert") as pool:
            for batch in batched(self._walk(), self.batch):
                self._run_batch(pool, batch)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _walk(self) -> Iterator[_Work]:
        """The work of every record that needs some; counts the records examined and those already done."""
        for record in records(self.index, headers=self.compress):
            self.report.examined += 1
            work = self._work(record)
            if work is None or work.new_uuid is None:
                self.report.already += 1
            if work is not None:
                yield work

    # -- one batch --------------------------------------------------------------------------------
    def _run_batch(self, pool: ThreadPoolExecutor, batch: list[_Work]) -> None:
        self.journal.write(batch)
        list(pool.map(self._rewrite, batch))
        written = [w for w in batch if w.error is None]
        try:
            switched, headers = self.index.write(lambda tx: self._switch(tx, written)) if written else (set(), set())
        except BaseException:
            for w in written:
                self._remove_new(w)
            self.journal.clear()
            raise
        for w in batch:
            old = w.record.info
            if w.error is not None:
                self._remove_new(w)  # in case one was written
                self.report.failures.append(w.record.failure(w.error))
                continue
            if w.new is not None:
                if w.new.uuid in switched:
                    self.storage.remove(old.uuid, old.content_type)
                    self.report.converted += 1
                    self.report.bytes_before += old.compressed_size
                    self.report.bytes_after += w.new.compressed_size
                    self.report.bytes_data += old.uncompressed_size
                else:  # the record changed meanwhile (it cannot while the index is held): keep it
                    self.storage.remove(w.new.uuid, old.content_type)
                    self.report.stale += 1
            if w.header is not None:
                if w.header.uuid in headers:
                    self.report.headers += 1
                else:
                    self.storage.remove(w.header.uuid, ContentType.DICOM_UNTIL_PIXEL_DATA)
        self.journal.clear()
        self.on_progress(len(batch), sum(w.record.info.compressed_size for w in batch))

    def _remove_new(self, w: _Work) -> None:
        if w.new_uuid is not None:
            self.storage.remove(w.new_uuid, w.record.info.content_type)
        if w.header_uuid is not None:
            self.storage.remove(w.header_uuid, ContentType.DICOM_UNTIL_PIXEL_DATA)

    def _rewrite(self, work: _Work) -> None:
        """Read and check the old file, write the new one(s) (not yet indexed)."""
        old = work.record.info
        try:
            stored = self.storage.read(old.uuid, old.content_type)
            if old.compressed_md5 and hashlib.md5(stored).hexdigest() != old.compressed_md5:
                raise _Corrupted("its MD5 does not match the index")
            data = compression.decompress(stored) if old.compression == CompressionType.ZLIB_WITH_SIZE else stored
            if len(data) != old.uncompressed_size:
                raise _Corrupted(f"{len(data)} bytes instead of {old.uncompressed_size}")
            policy = AttachmentPolicy(compress=self.compress, level=self.level,
                                      md5=self.md5 or bool(old.uncompressed_md5))
            if work.new_uuid is not None:
                new = write_attachment(self.storage, data, old.content_type, policy, uuid=work.new_uuid)
                work.new = dataclasses.replace(new, revision=old.revision + 1)
            offset = work.record.header_offset
            if work.header_uuid is not None and offset is not None and 0 < offset <= len(data):
                work.header = write_attachment(self.storage, data[:offset], ContentType.DICOM_UNTIL_PIXEL_DATA,
                                               policy, uuid=work.header_uuid)
        except _Corrupted as e:
            work.error = f"corrupted file, left as is ({e})"
        except OrthancError as e:
            work.error = e.details or e.description
        except OSError as e:
            work.error = str(e)

    def _switch(self, tx: Any, written: list[_Work]) -> tuple[set[str], set[str]]:
        """Point each record at its new file where it still names the old one, add the missing headers;
        the uuids indexed."""
        now = now_utc()
        switched: set[str] = set()
        headers: set[str] = set()
        for w in written:
            old = w.record.info
            rid = w.record.resource_id
            current = tx.attachment(rid, old.content_type)
            if current is None or current.uuid != old.uuid:
                continue
            if w.new is not None:
                tx.replace_attachment(rid, w.new)
                switched.add(w.new.uuid)
                if is_user_key(old.content_type):
                    found = tx.lookup(w.record.public_id)
                    if found is not None:
                        tx.log_change(ChangeType.UPDATED_ATTACHMENT, found[0], found[1], now)
            if w.header is not None and tx.attachment(rid, ContentType.DICOM_UNTIL_PIXEL_DATA) is None:
                tx.add_attachment(rid, w.header)
                headers.add(w.header.uuid)
        return switched, headers


class _Corrupted(Exception):
    pass
