"""`donjon storage compress|uncompress|migrate` on real storage areas made by a real server: summaries,
refusal while the server runs, corrupted files left alone, and SIGKILL in the middle then resume,
with an audit of every file's MD5, the statistics and orphan files after each step."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.index import query_one
from tests.support.postgres import USE_POSTGRES
from tests.support.s3 import MotoServer, moto_or_skip
from tests.support.servers import ROOT, Server, sample_files, start_donjon
from tests.support.stored import read_stored, stored_sizes, write_stored

REPORT = 1030
# a folder storage, whatever DONJON_TEST_STORAGE says: the commands move files between folder and S3
CONFIG: dict[str, Any] = {"UserContentType": {"report": REPORT}, "MaximumStorageCacheSize": 0, "AwsS3Storage": {}}


@dataclass
class Area:
    """A stopped server's folder: its configuration and what was stored in it."""

    workdir: Path
    config: dict[str, Any]
    expected: dict[str, str]  # instance id -> MD5 of the file sent
    patient: str  # a patient with a user attachment

    @property
    def config_path(self) -> Path:
        return self.workdir / "config.json"

    def write_config(self, **changes: Any) -> Path:
        path = self.workdir / "config.json"
        path.write_text(json.dumps({**self.config, **changes}))
        return path

    def start(self, **changes: Any) -> Server:
        return start_donjon({**self.config, **changes}, workdir=self.workdir)


def populate(tmp_path: Path, count: int | None = None, **config: Any) -> Area:
    server = start_donjon({**CONFIG, **config}, workdir=tmp_path)
    expected: dict[str, str] = {}
    try:
        for path in sample_files()[:count]:
            data = path.read_bytes()
            r = server.post("/instances", content=data)
            if r.status_code == 200 and not isinstance(r.json(), list) and r.json()["Status"] == "Success":
                expected[r.json()["ID"]] = hashlib.md5(data).hexdigest()
        patient = server.get("/patients").json()[0]
        assert server.put(f"/patients/{patient}/attachments/report", content=b"report " * 500).status_code == 200
        cfg = {k: v for k, v in server.config.items() if k not in ("HttpPort", "DicomPort")}
    finally:
        server.stop()
    return Area(tmp_path, cfg, expected, patient)


def storage(area: Area, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "donjon", "storage", *args, str(config or area.config_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def start_storage(area: Area, *args: str, config: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "donjon", "storage", *args, str(config or area.config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def compressed_count(area: Area, content_type: int = 1) -> int:
    """DICOM files already compressed, read from the index while the command runs."""
    row = query_one(area.config, "SELECT COUNT(*) FROM attachments WHERE compression = 2 AND type = ?",
                    (content_type,))
    assert row is not None
    return int(row[0])


def kill_when(process: subprocess.Popen[str], condition: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"finished before the kill: {process.communicate()}"
        assert time.monotonic() < deadline, "the command made no progress"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()


def audit(server: Server, area: Area, compressed: bool | None = None) -> dict[str, dict[str, Any]]:
    """Every file reads back byte-identical, the statistics match the stored files, no orphan file."""
    referenced: dict[str, dict[str, Any]] = {}
    for iid, md5 in area.expected.items():
        r = server.get(f"/instances/{iid}/file")
        assert r.status_code == 200, (iid, r.text)
        assert hashlib.md5(r.content).hexdigest() == md5, iid
        tags = server.get(f"/instances/{iid}/tags?simplify")
        assert tags.status_code == 200, (iid, tags.text)
        for name, info in server.get(f"/instances/{iid}/attachments?expand").json().items():
            referenced[info["Uuid"]] = {**info, "Name": name}
    report = server.get(f"/patients/{area.patient}/attachments/report/info").json()
    referenced[report["Uuid"]] = report
    if compressed is not None:  # a compressed file has the size header: never the size of its content
        for info in referenced.values():
            assert (info["CompressedSize"] != info["UncompressedSize"]) is compressed, info
    assert server.get(f"/patients/{area.patient}/attachments/report/data").content == b"report " * 500
    sizes = stored_sizes(server)
    assert set(sizes) == set(referenced)  # no orphan, nothing missing
    assert all(sizes[u] == info["CompressedSize"] for u, info in referenced.items())
    stats = server.get("/statistics").json()
    assert int(stats["TotalDiskSize"]) == sum(sizes.values())
    assert stats["CountInstances"] == len(area.expected)
    return referenced


def test_compress_then_uncompress(tmp_path: Path, samples) -> None:
    area = populate(tmp_path, count=24)
    before = area.start()
    try:
        files_before = audit(before, area, compressed=False)
    finally:
        before.stop()
    result = storage(area, "compress", "--level", "6")
    assert result.returncode == 0, result.stderr
    n = len(files_before)
    assert f"{n} attachments examined, {n} compressed, 0 already compressed, 0 failed" in result.stdout
    assert "DICOM headers (attachment 3) added" in result.stdout
    assert "StorageCompression is false" in result.stdout
    server = area.start()
    try:
        files = audit(server, area, compressed=True)
        dicom = [f for f in files.values() if f.get("Name") == "dicom"]
        headers = [f for f in files.values() if f.get("Name") == "dicom-until-pixel-data"]
        assert len(dicom) == len(area.expected) and 0 < len(headers) <= len(dicom)
        one = next(iter(area.expected))
        assert server.get(f"/instances/{one}/attachments/dicom/is-compressed").text == "1"
        assert server.get(f"/instances/{one}/attachments/dicom/info").headers["etag"].startswith('"1-')
        stored = read_stored(server, dicom[0]["Uuid"])
        assert stored[:8] == dicom[0]["UncompressedSize"].to_bytes(8, "little")
    finally:
        server.stop()
    again = storage(area, "compress")
    assert again.returncode == 0 and " 0 compressed" in again.stdout  # idempotent
    result = storage(area, "uncompress")
    assert result.returncode == 0, result.stderr
    server = area.start()
    try:
        audit(server, area, compressed=False)
    finally:
        server.stop()


def test_refused_while_the_server_runs(tmp_path: Path, samples) -> None:
    area = populate(tmp_path, count=3)
    server = area.start()
    try:
        result = storage(area, "compress")
        assert result.returncode == 255
        if USE_POSTGRES:  # (the database's lock, taken by the server)
            assert "The PostgreSQL database is locked by another instance of Donjon" in result.stderr
        else:
            assert "in use by another Donjon process" in result.stderr and "stop that process first" in result.stderr
        assert compressed_count(area) == 0
        audit(server, area, compressed=False)
    finally:
        server.stop()


def test_sigkill_in_the_middle_then_resume(tmp_path: Path, samples) -> None:
    area = populate(tmp_path)
    total = len(area.expected)
    process = start_storage(area, "compress", "--level", "9", "--jobs", "1", "--batch", "2")
    kill_when(process, lambda: compressed_count(area) >= 6)
    assert compressed_count(area) < total, "the kill came too late to interrupt anything"
    server = area.start()  # the lock went with the killed process
    try:
        audit_readable(server, area)
    finally:
        server.stop()
    result = storage(area, "compress")
    assert result.returncode == 0, result.stderr
    assert "0 failed" in result.stdout
    server = area.start()
    try:
        audit(server, area, compressed=True)
    finally:
        server.stop()


def audit_readable(server: Server, area: Area) -> dict[str, dict[str, Any]]:
    """After a crash: every file reads back and the statistics are those of the index records (files
    of the batch in flight may still be on disk until the command runs again)."""
    referenced: dict[str, dict[str, Any]] = {}
    for iid, md5 in area.expected.items():
        r = server.get(f"/instances/{iid}/file")
        assert r.status_code == 200 and hashlib.md5(r.content).hexdigest() == md5, iid
        for info in server.get(f"/instances/{iid}/attachments?expand").json().values():
            referenced[info["Uuid"]] = info
    sizes = stored_sizes(server)
    assert set(referenced) <= set(sizes)
    assert len(set(sizes) - set(referenced)) <= 2 * 2 + 1  # at most the new files of the batch in flight
    stats = server.get("/statistics").json()
    report = server.get(f"/patients/{area.patient}/attachments/report/info").json()
    assert int(stats["TotalDiskSize"]) == sum(i["CompressedSize"] for i in referenced.values()) + \
        report["CompressedSize"]
    return referenced


def test_corrupted_file_is_left_untouched(tmp_path: Path, samples) -> None:
    area = populate(tmp_path, count=6)
    server = area.start()
    try:
        victim = next(iter(area.expected))
        uuid = server.get(f"/instances/{victim}").json()["FileUuid"]
        data = bytearray(read_stored(server, uuid))
        data[-1] ^= 0xFF
        write_stored(server, uuid, bytes(data))
    finally:
        server.stop()
    result = storage(area, "compress")
    assert result.returncode == 255
    assert f"failed: {victim} attachment 1 ({uuid}): corrupted file, left as is" in result.stderr
    assert " 1 failed" in result.stdout
    server = area.start()
    try:
        assert server.get(f"/instances/{victim}").json()["FileUuid"] == uuid
        assert server.get(f"/instances/{victim}/attachments/dicom/is-compressed").text == "0"
        assert read_stored(server, uuid) == bytes(data)
        others = [i for i in area.expected if i != victim]
        assert all(server.get(f"/instances/{i}/attachments/dicom/is-compressed").text == "1" for i in others)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def moto() -> MotoServer:
    return moto_or_skip()


def test_migrate_to_s3_interrupted_resumed_and_back(moto: MotoServer, tmp_path: Path, samples) -> None:
    area = populate(tmp_path, count=24)
    section = moto.section()
    s3_config = area.write_config(AwsS3Storage=section)
    folder = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "storage").rglob("*")
              if p.is_file() and len(p.name) == 36}
    bucket = section["BucketName"]
    count = lambda: moto.client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)  # noqa: E731
    process = start_storage(area, "migrate", "--to-s3", "--jobs", "1", "--batch", "2", config=s3_config)
    kill_when(process, lambda: count() >= 5)
    assert count() < len(folder)
    result = storage(area, "migrate", "--to-s3", config=s3_config)
    assert result.returncode == 0, result.stderr
    assert f"{len(folder)} attachments examined" in result.stdout and " 0 failed" in result.stdout
    assert "already there" in result.stdout and " 0 already there" not in result.stdout
    # the folder was not touched; the server now runs on the bucket
    assert {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "storage").rglob("*")
            if p.is_file() and len(p.name) == 36} == folder
    for path in folder:
        (tmp_path / path).unlink()
    server = area.start(AwsS3Storage=section)
    try:
        audit(server, area, compressed=False)
    finally:
        server.stop()
    # compression works the same on the bucket
    result = storage(area, "compress", config=s3_config)
    assert result.returncode == 0, result.stderr
    server = area.start(AwsS3Storage=section)
    try:
        audit(server, area, compressed=True)
    finally:
        server.stop()
    # and back into the (emptied) folder
    result = storage(area, "migrate", "--to-folder", config=s3_config)
    assert result.returncode == 0, result.stderr
    area.write_config()
    server = area.start()
    try:
        audit(server, area, compressed=True)
    finally:
        server.stop()
    shutil.rmtree(tmp_path / "storage", ignore_errors=True)


def test_migrate_needs_an_s3_section(tmp_path: Path, samples) -> None:
    area = populate(tmp_path, count=1)
    result = storage(area, "migrate", "--to-s3")
    assert result.returncode == 255 and "no AwsS3Storage section" in result.stderr
