"""Crash points of `donjon storage compress` that a kill cannot hit on purpose: just before the new
files are indexed, and just after (before the old files are removed). The next run must leave exactly
the files the index names, all readable, whatever the point."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from donjon.config import Configuration
from donjon.core.attachments import read_attachment
from donjon.registry import CompressionType
from donjon.storage.convert import Converter, Journal
from donjon.storage.folder import FolderStorage
from donjon.storage.maintenance import Workspace, records
from tests.support.servers import sample_files, start_donjon


class Crash(BaseException):
    """The process dies here."""


class CrashingFolder(FolderStorage):
    def __init__(self, root: str, crash_on: str, after: int):
        super().__init__(root)
        self.crash_on, self.left = crash_on, after

    def _tick(self, action: str) -> None:
        if action == self.crash_on:
            self.left -= 1
            if self.left < 0:
                raise Crash(action)

    def create(self, uuid: str, data: bytes, content_type: int | None = None) -> None:
        self._tick("create")
        super().create(uuid, data, content_type)

    def remove(self, uuid: str, content_type: int | None = None) -> None:
        self._tick("remove")
        super().remove(uuid, content_type)


@pytest.fixture
def area(tmp_path: Path, samples) -> Iterator[Configuration]:
    server = start_donjon({"AwsS3Storage": {}}, workdir=tmp_path)
    try:
        for path in sample_files()[:12]:
            server.post("/instances", content=path.read_bytes())
    finally:
        server.stop()
    yield Configuration.load([str(tmp_path / "config.json")], env={})


def check(config: Configuration, compressed: bool | None, orphans_allowed: int = 0) -> None:
    """Each file the index names is on disk and matches its MD5; nothing else is (but `orphans_allowed`)."""
    workspace = Workspace(config)
    storage = FolderStorage(config.path("StorageDirectory"))
    try:
        infos = [r.info for r in records(workspace.index)]
        on_disk = set(storage.scan())
        assert {i.uuid for i in infos} <= on_disk
        assert len(on_disk) - len(infos) <= orphans_allowed
        for info in infos:
            assert hashlib.md5(read_attachment(storage, info)).hexdigest() == info.uncompressed_md5
            if compressed is not None:
                assert (info.compression == CompressionType.ZLIB_WITH_SIZE) is compressed
    finally:
        workspace.close()


def run(config: Configuration, storage: FolderStorage) -> Converter:
    workspace = Workspace(config)
    try:
        converter = Converter(workspace.index, storage, workspace.state_dir, compress=True, level=1, md5=True,
                              jobs=2, batch=4)
        converter.run()
        return converter
    finally:
        workspace.close()


@pytest.mark.parametrize(("crash_on", "after"), [("create", 5), ("remove", 2)],
                         ids=["before-the-index-switch", "after-the-index-switch"])
def test_crash_then_resume(area: Configuration, crash_on: str, after: int) -> None:
    root = area.path("StorageDirectory")
    with pytest.raises(Crash):
        run(area, CrashingFolder(root, crash_on, after))
    state = Workspace(area)
    in_flight = len(Journal(state.state_dir).entries())
    state.close()
    assert in_flight == 4, "the batch in flight is journaled"
    check(area, compressed=None, orphans_allowed=2 * in_flight)  # readable; new files not yet indexed
    resumed = run(area, FolderStorage(root))
    assert resumed.report.recovered == in_flight
    assert not resumed.report.failures and not Path(Journal(area.path("StorageDirectory")).path).exists()
    check(area, compressed=True)
