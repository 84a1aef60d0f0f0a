"""Full storage: 507 with Orthanc's JSON (REST) and 0xA700 (DIMSE), in both recycling modes, whether
the disk is full (a small tmpfs) or the configured maximum is reached; no file is left behind."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import SecondaryCaptureImageStorage

from tests.faults.crafted import base_dataset, to_bytes
from tests.faults.support import alive, assert_error
from tests.support.servers import Server, start_donjon
from tests.support.stored import folder_uuids


def _instance(patient: str, size: int = 256 * 1024) -> bytes:
    ds = base_dataset(patient=patient)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = size // 512, 512, 8, 8, 7
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.PixelData = os.urandom(size)
    return to_bytes(ds)


def _cstore_status(server: Server, data: bytes) -> int:
    import io

    from pydicom import dcmread

    ae = AE(ae_title="FULL")
    ae.add_requested_context(SecondaryCaptureImageStorage)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="ORTHANC")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(dcmread(io.BytesIO(data))).Status)
    finally:
        assoc.release()


def _files(storage: Path) -> set[str]:
    return folder_uuids(storage)


def _indexed(index: Path) -> set[str]:
    db = sqlite3.connect(index)
    try:
        return {r[0] for r in db.execute("SELECT uuid FROM attachments")}
    finally:
        db.close()


@pytest.fixture()
def tmpfs() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    folder = Path(tempfile.mkdtemp(prefix="donjon-full-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs CAP_SYS_ADMIN): {r.stderr.decode()[:200]}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.parametrize("mode", ["Recycle", "Reject"])
@pytest.mark.parametrize("index_on_full_disk", [False, True])
def test_disk_full(tmpfs: Path, mode: str, index_on_full_disk: bool) -> None:
    index_dir = tmpfs if index_on_full_disk else Path(tempfile.mkdtemp(prefix="donjon-index-"))
    server = start_donjon({"StorageDirectory": str(tmpfs), "IndexDirectory": str(index_dir),
                           "MaximumStorageMode": mode, "StableAge": 1000})
    try:
        statuses = []
        for i in range(30):
            r = server.post("/instances", content=_instance(f"P{i}"))
            statuses.append(r.status_code)
            if r.status_code != 200:
                body = assert_error(r, 507)
                assert body["OrthancStatus"] == 19, body
                break
        assert 200 in statuses and statuses[-1] == 507, statuses
        assert _cstore_status(server, _instance("DIMSE")) == 0xA700
        assert alive(server)
        count = len(server.get("/instances").json())
        assert count == statuses.count(200)
    finally:
        server.stop()
    assert _files(tmpfs) == _indexed(index_dir / "index"), "a refused store left a file behind"


@pytest.mark.parametrize("mode", ["Recycle", "Reject"])
def test_maximum_storage_size(mode: str) -> None:
    """Recycle mode with every patient protected, and Reject mode: both refuse with 507 and 0xA700."""
    server = start_donjon({"MaximumStorageSize": 1, "MaximumStorageMode": mode, "StableAge": 1000})
    try:
        first = server.post("/instances", content=_instance("KEEP", 600 * 1024))
        assert first.status_code == 200
        assert server.put(f"/patients/{first.json()['ParentPatient']}/protected", content=b"1").status_code == 200
        body = assert_error(server.post("/instances", content=_instance("MORE", 600 * 1024)), 507)
        assert body["OrthancStatus"] == 19
        assert _cstore_status(server, _instance("DIMSE", 600 * 1024)) == 0xA700
        assert len(server.get("/instances").json()) == 1
    finally:
        server.stop()
    storage = server.workdir / "storage"
    assert _files(storage) == _indexed(storage / "index")
