"""Server contexts for tests that call the core directly: real SQLite index and folder storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from donjon.config import Configuration
from donjon.core.context import ServerContext

USER_KEY = 1024  # the user metadata "Sample"


def open_context(folder: Path, **options: Any) -> ServerContext:
    """A context on `folder` (storage and index), one user metadata, stable events out of the way."""
    raw = {"StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
           "StableAge": 3600, "UserMetadata": {"Sample": USER_KEY}, **options}
    return ServerContext(Configuration(raw), no_jobs=True)


@pytest.fixture(name="ctx")
def context_fixture(tmp_path: Path) -> Iterator[ServerContext]:
    """The test's context (`open_context` on its temporary folder), closed at the end; a test module
    uses it by importing `context_fixture`."""
    made = open_context(tmp_path)
    yield made
    made.close()
