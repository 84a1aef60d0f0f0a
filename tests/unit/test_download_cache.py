"""The download cache of DICOM file records (core/context.py): filled by stores and reads, emptied by
deletions, and a record gone stale never turns into a wrong answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from donjon.api.app import DonjonApp
from donjon.api.http import Request
from donjon.config import Configuration
from donjon.core.context import ServerContext
from donjon.core.store import StoreOrigin
from donjon.index.protocol import FileInfo
from donjon.registry import ContentType, Level
from tests.faults.crafted import base_dataset, to_bytes
from tests.support.aio import run_in_own_thread


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    context = ServerContext(Configuration({"StorageDirectory": str(tmp_path / "storage"),
                                           "IndexDirectory": str(tmp_path / "index"), "StableAge": 3600}),
                            no_jobs=True)
    yield context
    context.close()


def _get(app: DonjonApp, path: str) -> tuple[int, bytes]:
    response = run_in_own_thread(lambda: app.handle(Request("GET", path, b"", {}, "127.0.0.1", b"")))
    return response.status, response.body


def test_a_stored_instance_is_downloaded_without_asking_the_index(ctx: ServerContext,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    data = to_bytes(base_dataset())
    instance = ctx.store(data, StoreOrigin()).ids.instance

    def no_index(*args: object) -> None:
        raise AssertionError("the index was asked")

    monkeypatch.setattr(type(ctx.index.reader()), "instance_attachment", no_index)
    status, body = _get(DonjonApp(ctx), f"/instances/{instance}/file")
    assert status == 200 and body == data


def test_a_deleted_instance_leaves_the_cache(ctx: ServerContext) -> None:
    instance = ctx.store(to_bytes(base_dataset()), StoreOrigin()).ids.instance
    assert ctx.instance_file(instance) is not None
    ctx.delete(Level.INSTANCE, instance)
    assert ctx.instance_file(instance) is None
    assert _get(DonjonApp(ctx), f"/instances/{instance}/file")[0] == 404


def test_a_stale_record_of_a_vanished_instance_answers_404(ctx: ServerContext) -> None:
    """A store that commits while a deletion of the same instance runs may cache a record after the
    deletion cleared it: the file is gone, the index no longer knows the instance: 404, not a 500."""
    ghost = "0a1b2c3d-00000000-00000000-00000000-00000000"
    ctx.remember_instance_file(ghost, FileInfo("6f1ed002-ab5a-4b5c-9d0e-000000000000", ContentType.DICOM,
                                               10, "md5", 1, 10, "md5"))
    status, body = _get(DonjonApp(ctx), f"/instances/{ghost}/file")
    assert status == 404 and b"Unknown resource" in body
