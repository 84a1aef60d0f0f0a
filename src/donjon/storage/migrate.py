"""`donjon storage migrate`: copy every attachment file from one storage area to another.

The files keep their uuids and bytes (compressed or not), so the index does not change: once the copy
is complete, the configuration points the server at the new area. Each file is checked against the
index (MD5 of the stored bytes when recorded, else its size) before it is written. The copy is
resumable: a file already present in the target with the right size is skipped (a PUT is atomic in S3;
a file cut short in a folder by a crash has the wrong size and is written again). The source is never
modified.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import ErrorCode, OrthancError
from .maintenance import Record, batched, records
from .protocol import StorageArea


@dataclass
class MigrateReport:
    examined: int = 0
    copied: int = 0
    present: int = 0
    failures: list[str] = field(default_factory=list)
    bytes_copied: int = 0
    seconds: float = 0.0


def count(index: Any) -> tuple[int, int]:
    """(attachments, stored bytes) of the index: for the progress bar."""
    n = size = 0
    for r in records(index):
        n += 1
        size += r.info.compressed_size
    return n, size


class Migrator:
    def __init__(self, index: Any, source: StorageArea, target: Any, jobs: int = 8, batch: int = 64,
                 on_progress: Callable[[int, int], None] | None = None):
        self.index = index
        self.source = source
        self.target = target  # a storage area with `size_of` (folder or S3)
        self.jobs = max(1, jobs)
        self.batch = max(1, batch)
        self.on_progress = on_progress or (lambda count, nbytes: None)
        self.report = MigrateReport()

    def run(self) -> MigrateReport:
        started = time.monotonic()
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="migrate") as pool:
            for batch in batched(records(self.index), self.batch):
                self._run_batch(pool, batch)
        self.report.seconds = time.monotonic() - started
        return self.report

    def _run_batch(self, pool: ThreadPoolExecutor, batch: list[Record]) -> None:
        outcomes = list(pool.map(self._copy, batch))
        for record, outcome in zip(batch, outcomes, strict=True):
            self.report.examined += 1
            if outcome == "copied":
                self.report.copied += 1
                self.report.bytes_copied += record.info.compressed_size
            elif outcome == "present":
                self.report.present += 1
            else:
                self.report.failures.append(record.failure(outcome))
        self.on_progress(len(batch), sum(r.info.compressed_size for r in batch))

    def _copy(self, record: Record) -> str:
        """"copied", "present" or the reason of a failure."""
        info = record.info
        try:
            if self.target.size_of(info.uuid, info.content_type) == info.compressed_size:
                return "present"
            data = self.source.read(info.uuid, info.content_type)
            if len(data) != info.compressed_size or \
                    (info.compressed_md5 and hashlib.md5(data).hexdigest() != info.compressed_md5):
                return "the source file does not match the index (size or MD5): not copied"
            self.target.remove(info.uuid, info.content_type)  # a partial copy of an interrupted run
            self.target.create(info.uuid, data, info.content_type)
            return "copied"
        except OrthancError as e:
            if e.code == ErrorCode.INEXISTENT_FILE:
                return "missing from the source"
            return e.details or e.description
        except OSError as e:
            return str(e)
