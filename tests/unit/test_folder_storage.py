"""The folder storage when writers and removers meet in the same folders (threads or processes)."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from donjon.storage.folder import FolderStorage


def test_writers_and_removers_sharing_folders_never_fail(tmp_path: Path) -> None:
    """Removing a folder's last file removes the folder (and its parent if empty), as Orthanc does; a
    writer creating a file there at that moment must recreate them, not fail with ENOENT."""
    storage = FolderStorage(str(tmp_path), fsync=False)
    errors: list[BaseException] = []

    def churn(seed: int) -> None:
        try:
            for n in range(1500):
                name = f"abcd{seed:04x}-{n:04x}-4000-8000-{uuid.uuid4().hex[:12]}"  # one shared folder ab/cd
                storage.create(name, b"x")
                assert storage.read(name) == b"x"
                storage.remove(name)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=churn, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert list(tmp_path.iterdir()) == []  # every folder went with its last file
