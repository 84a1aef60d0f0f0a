"""A store parses and looks up its instance on a helper thread while the DICOM file is fsynced
(core/store.py `_parse_and_write`): the answers, the files left on disk and the journal must be those
of a store that parses first, whatever fails."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import donjon.core.store as store_module
from donjon.config import Configuration
from donjon.core.context import ServerContext
from donjon.core.store import StoreOrigin
from donjon.dicom.parse import parse_instance
from donjon.errors import ErrorCode, OrthancError
from tests.faults.crafted import base_dataset, to_bytes
from tests.support.stored import folder_uuids


def _context(tmp_path: Path, **options: Any) -> ServerContext:
    raw = {"StorageDirectory": str(tmp_path / "storage"), "IndexDirectory": str(tmp_path / "index"),
           "StableAge": 3600, **options}
    return ServerContext(Configuration(raw), no_jobs=True)


@pytest.fixture
def parse_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the threads that parsed instances, in order."""
    names: list[str] = []
    real: Callable[..., Any] = store_module.parse_instance

    def recording(*args: Any, **kwargs: Any) -> Any:
        names.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(store_module, "parse_instance", recording)
    yield names


def _unsettled(ctx: ServerContext) -> int:
    """Files still announced in the in-flight journal, once the stores' index commits are durable."""
    ctx.index_sync.flush()
    return len(ctx.storage.journal._pending)  # type: ignore[attr-defined]


def _instances(ctx: ServerContext) -> int:
    return ctx.index.reader().counters()["level4"]


def _parse_error(data: bytes) -> ErrorCode:
    """What parsing alone answers for `data`."""
    with pytest.raises(OrthancError) as error:
        parse_instance(data)
    return error.value.code


def test_new_instance_is_parsed_while_its_file_is_fsynced(tmp_path: Path, parse_threads: list[str]) -> None:
    ctx = _context(tmp_path)
    try:
        data = to_bytes(base_dataset("OVERLAP"))
        result = ctx.store(data, StoreOrigin())
        assert result.status == "Success"
        assert parse_threads and parse_threads[0].startswith("store-parse")
        files = folder_uuids(tmp_path / "storage")
        assert len(files) == 1
        uuid = next(iter(files))
        assert (tmp_path / "storage" / uuid[0:2] / uuid[2:4] / uuid).read_bytes() == data

        again = ctx.store(data, StoreOrigin())
        assert again.status == "AlreadyStored"
        assert again.ids == result.ids
        assert folder_uuids(tmp_path / "storage") == files  # the second copy was written, then removed
        assert _unsettled(ctx) == 0
        assert _instances(ctx) == 1
    finally:
        ctx.close()


def test_malformed_file_with_a_dicom_preamble_leaves_nothing(tmp_path: Path, parse_threads: list[str]) -> None:
    ctx = _context(tmp_path)
    try:
        ds = base_dataset("OVERLAP")
        del ds.SOPInstanceUID
        data = to_bytes(ds)
        assert data[128:132] == b"DICM"
        with pytest.raises(OrthancError) as error:
            ctx.store(data, StoreOrigin())
        assert error.value.code == _parse_error(data) == ErrorCode.INEXISTENT_TAG
        assert parse_threads[0].startswith("store-parse")  # it went the overlapped way
        assert folder_uuids(tmp_path / "storage") == set()
        assert _unsettled(ctx) == 0
        assert _instances(ctx) == 0
    finally:
        ctx.close()


def test_garbage_is_parsed_before_anything_is_written(tmp_path: Path, parse_threads: list[str]) -> None:
    ctx = _context(tmp_path)
    try:
        with pytest.raises(OrthancError) as error:
            ctx.store(b"\x00" * 64 + b"not DICOM at all" * 10, StoreOrigin())
        assert error.value.code == ErrorCode.BAD_FILE_FORMAT
        assert parse_threads == [threading.current_thread().name]
        assert folder_uuids(tmp_path / "storage") == set()
    finally:
        ctx.close()


def test_without_fsync_the_parse_stays_in_the_storing_thread(tmp_path: Path, parse_threads: list[str]) -> None:
    ctx = _context(tmp_path, SyncStorageArea=False)
    try:
        assert ctx.store(to_bytes(base_dataset("NOSYNC")), StoreOrigin()).status == "Success"
        assert parse_threads == [threading.current_thread().name]  # no wait to fill: no hand-over
        assert len(folder_uuids(tmp_path / "storage")) == 1
    finally:
        ctx.close()


def test_a_failed_write_reports_a_malformed_file_first(tmp_path: Path) -> None:
    """The storage folder replaced by a plain file: every write fails (a real fault, also for root)."""
    ctx = _context(tmp_path)
    try:
        storage = tmp_path / "storage"
        shutil.rmtree(storage)
        storage.write_bytes(b"in the way")
        ds = base_dataset("WRITEFAIL")
        del ds.SOPInstanceUID
        data = to_bytes(ds)
        with pytest.raises(OrthancError) as malformed:
            ctx.store(data, StoreOrigin())
        assert malformed.value.code == _parse_error(data)  # as when the parse comes first
        with pytest.raises(OrthancError) as unwritable:
            ctx.store(to_bytes(base_dataset("WRITEFAIL")), StoreOrigin())
        assert unwritable.value.code in (ErrorCode.CANNOT_WRITE_FILE, ErrorCode.INTERNAL_ERROR)
        assert _instances(ctx) == 0
        assert _unsettled(ctx) == 0
    finally:
        ctx.close()
