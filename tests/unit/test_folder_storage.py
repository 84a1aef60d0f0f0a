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


def test_new_files_share_their_folders_then_move_on(tmp_path: Path) -> None:
    """Consecutive names share their two folders for FILES_PER_FOLDER files (one folder made per
    256 files, not per file), each still a valid random version-4 uuid; then another pair is drawn."""
    from donjon.storage.folder import FILES_PER_FOLDER

    storage = FolderStorage(str(tmp_path))
    names = [storage.new_uuid() for _ in range(FILES_PER_FOLDER * 8)]
    assert len(set(names)) == len(names)
    for name in names:
        parsed = uuid.UUID(name)
        assert str(parsed) == name and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    groups = [names[i:i + FILES_PER_FOLDER] for i in range(0, len(names), FILES_PER_FOLDER)]
    for group in groups:
        assert {n[:4] for n in group} == {group[0][:4]}
    assert len({g[0][:4] for g in groups}) > 1  # (eight draws of 65,536 pairs all equal: never)
    for name in names[:FILES_PER_FOLDER + 1]:
        storage.create(name, b"x")
    assert len([p for p in tmp_path.glob("*/*") if p.is_dir()]) <= 2
    assert sum(1 for p in tmp_path.rglob("*") if p.is_file()) == FILES_PER_FOLDER + 1


def test_names_come_from_the_storage_when_it_has_a_choice(tmp_path: Path) -> None:
    """write_attachment names files as the folder storage chooses, under its cache and journal
    wrappers; a storage without a choice (object storage, a plugin's) gets random uuids."""
    from donjon.core.attachments import AttachmentPolicy, new_file_uuid, write_attachment
    from donjon.storage.cache import CachingStorage
    from donjon.storage.journal import InflightJournal, JournaledStorage

    folder = FolderStorage(str(tmp_path / "storage"))
    wrapped = JournaledStorage(CachingStorage(folder, 1 << 20), InflightJournal(str(tmp_path / "journal")))
    infos = [write_attachment(wrapped, b"data %d" % i, 1, AttachmentPolicy()) for i in range(5)]
    assert len({info.uuid[:4] for info in infos}) == 1
    assert all((tmp_path / "storage" / i.uuid[:2] / i.uuid[2:4] / i.uuid).read_bytes() == b"data %d" % n
               for n, i in enumerate(infos))

    class Plain:
        pass

    picked = {new_file_uuid(Plain())[:4] for _ in range(50)}  # type: ignore[arg-type]
    assert len(picked) > 40  # random: 50 draws of 65,536 pairs


def test_a_file_in_the_page_cache_is_read_at_once_one_on_disk_is_left_to_a_worker(tmp_path: Path) -> None:
    """`read_resident` reads a file whose pages the kernel holds, and answers None at once for one only
    on disk (dropped from the page cache here with POSIX_FADV_DONTNEED), where the event loop must
    not wait for the disk."""
    import os

    from donjon.errors import ErrorCode, OrthancError

    storage = FolderStorage(str(tmp_path))
    name = storage.new_uuid()
    data = os.urandom(600_000)
    storage.create(name, data)
    read = storage.read_resident(name)
    assert isinstance(read, memoryview) and bytes(read) == data

    cold = storage.new_uuid()
    storage.create(cold, data)
    fd = os.open(storage.path_of(cold) or "", os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert storage.read_resident(cold) is None
    assert storage.read(cold) == data  # (a read brings it back)
    again = storage.read_resident(cold)
    assert again is not None and bytes(again) == data

    empty = storage.new_uuid()
    storage.create(empty, b"")
    assert storage.read_resident(empty) is None  # (a plain read answers it)
    with pytest.raises(OrthancError) as missing:
        storage.read_resident(storage.new_uuid())
    assert missing.value.code == ErrorCode.INEXISTENT_FILE
