"""The folder storage when writers and removers meet in the same folders (threads or processes)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from donjon.storage.folder import FolderStorage


@pytest.mark.parametrize("tidy_after", [None, 0.0, 1.0], ids=["at-once", "tidied-meanwhile", "tidied-after"])
def test_writers_and_removers_sharing_folders_never_fail(tmp_path: Path, tidy_after: float | None) -> None:
    """Removing a folder's last file removes the folder (and its parent if empty), as Orthanc does, at
    once or later; a writer creating a file there at that moment must recreate them, not fail with
    ENOENT."""
    storage = FolderStorage(str(tmp_path), fsync=False, tidy_after=tidy_after)
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
    storage.tidy()
    assert list(tmp_path.iterdir()) == []  # every folder went with its last file


def _name(first: str) -> str:
    return f"{first}{uuid.uuid4().hex[4:8]}-0000-4000-8000-{uuid.uuid4().hex[:12]}"


def _wait_for(condition, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_emptied_folders_go_once_nothing_is_written(tmp_path: Path) -> None:
    storage = FolderStorage(str(tmp_path), fsync=False, tidy_after=0.2)
    names = [_name("ab12") for _ in range(3)]
    for name in names:
        storage.create(name, b"x")
    for name in names:
        storage.remove(name)
    assert (tmp_path / "ab" / "12").is_dir()  # not at once: removals amid writes leave them for later
    assert _wait_for(lambda: not (tmp_path / "ab").exists())
    assert list(tmp_path.iterdir()) == []


def test_a_busy_storage_keeps_emptied_folders_until_idle(tmp_path: Path) -> None:
    storage = FolderStorage(str(tmp_path), fsync=False, tidy_after=0.3)
    gone = _name("cd34")
    storage.create(gone, b"x")
    storage.remove(gone)
    for _ in range(8):  # a write every 0.1 s: never idle for 0.3 s
        storage.create(_name("ef56"), b"y")
        time.sleep(0.1)
        assert (tmp_path / "cd" / "34").is_dir()
    assert _wait_for(lambda: not (tmp_path / "cd").exists())
    assert (tmp_path / "ef" / "56").is_dir()  # folders holding files stay


def test_a_folder_written_again_before_the_tidy_stays(tmp_path: Path) -> None:
    storage = FolderStorage(str(tmp_path), fsync=False, tidy_after=60)
    first, second = _name("ab12"), _name("ab12")
    storage.create(first, b"x")
    storage.remove(first)
    storage.create(second, b"y")  # into the emptied folder, which still exists
    storage.tidy()
    assert storage.read(second) == b"y"
    storage.remove(second)
    storage.tidy()
    assert list(tmp_path.iterdir()) == []


def test_emptied_folders_go_at_once_without_a_delay(tmp_path: Path) -> None:
    storage = FolderStorage(str(tmp_path), fsync=False, tidy_after=None)
    name = _name("ab12")
    storage.create(name, b"x")
    storage.remove(name)
    assert list(tmp_path.iterdir()) == []


def test_emptied_folders_go_when_the_process_exits(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from donjon.storage.folder import FolderStorage\n"
        "storage = FolderStorage(sys.argv[1], fsync=False, tidy_after=3600)\n"
        "name = 'ab12cd34-0000-4000-8000-000000000000'\n"
        "storage.create(name, b'x')\n"
        "storage.remove(name)\n"
        "assert storage.path_of(name).startswith(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    assert list(tmp_path.iterdir()) == []
