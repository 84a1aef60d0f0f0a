"""kill -9 during REST and C-STORE ingest, then a consistency audit: every acknowledged instance is
there with its exact bytes, every index entry has its file, and no orphan file is left behind (the
in-flight journal is swept at start-up)."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sqlite3
import threading
import time
import uuid as uuidlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import SecondaryCaptureImageStorage

from tests.faults.crafted import base_dataset, to_bytes
from tests.support.servers import Server, start_donjon
from tests.support.stored import folder_uuids


def _instances(count: int, prefix: str) -> Iterator[bytes]:
    """Made on the fly: only what is sent before the kill costs anything."""
    for i in range(count):
        ds = base_dataset(patient=f"{prefix}{i % 7}")
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 128, 128, 8, 8, 7
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
        ds.PixelData = os.urandom(128 * 128)
        yield to_bytes(ds)


def _rest_client(server: Server, files: Iterable[bytes], acked: dict[str, str], stop: threading.Event) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for data in files:
            if stop.is_set():
                return
            try:
                r = client.post("/instances", content=data)
            except httpx.HTTPError:
                return  # the server died under us
            if r.status_code == 200:
                acked[r.json()["ID"]] = hashlib.md5(data).hexdigest()


def _cstore_client(server: Server, files: Iterable[bytes], acked_sop: dict[str, str], stop: threading.Event) -> None:
    ae = AE(ae_title="CRASHER")
    ae.add_requested_context(SecondaryCaptureImageStorage)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title="ORTHANC")
    if not assoc.is_established:
        return
    try:
        for data in files:
            if stop.is_set() or not assoc.is_established:
                return
            ds = dcmread(io.BytesIO(data))
            status = assoc.send_c_store(ds)
            if status and status.Status == 0:
                acked_sop[str(ds.SOPInstanceUID)] = str(ds.SOPInstanceUID)
    finally:
        if assoc.is_established:
            assoc.abort()


def _storage_uuids(storage: Path) -> set[str]:
    return folder_uuids(storage)


def _audit(server: Server, acked: dict[str, str], acked_sop: dict[str, str]) -> dict[str, int]:
    """Zero acknowledged instance lost, zero index entry without its file, zero orphan file."""
    for instance, md5 in acked.items():
        r = server.get(f"/instances/{instance}/file")
        assert r.status_code == 200, f"acknowledged instance {instance} lost"
        assert hashlib.md5(r.content).hexdigest() == md5, f"instance {instance} corrupted"
    for sop in acked_sop:
        found = server.post("/tools/lookup", content=sop).json()
        assert [f for f in found if f["Type"] == "Instance"], f"C-STORE acknowledged {sop} lost"
    workdir = server.workdir
    server.stop()
    db = sqlite3.connect(workdir / "storage" / "index")
    rows = db.execute("SELECT uuid, compressed_md5, compressed_size FROM attachments").fetchall()
    db.close()
    on_disk = _storage_uuids(workdir / "storage")
    indexed = {r[0] for r in rows}
    assert indexed <= on_disk, f"index entries without their file: {sorted(indexed - on_disk)[:5]}"
    assert on_disk <= indexed, f"orphan files left behind: {sorted(on_disk - indexed)[:5]}"
    for uuid, md5, size in rows:
        data = next((workdir / "storage").glob(f"{uuid[:2]}/{uuid[2:4]}/{uuid}")).read_bytes()
        assert len(data) == size and (not md5 or hashlib.md5(data).hexdigest() == md5), uuid
    return {"acked": len(acked) + len(acked_sop), "files": len(on_disk)}


def test_kill_9_during_rest_and_cstore_ingest() -> None:
    server = start_donjon({"StableAge": 1000})
    workdir = server.workdir
    acked: dict[str, str] = {}
    acked_sop: dict[str, str] = {}
    stop = threading.Event()
    threads = [threading.Thread(target=_rest_client, args=(server, _instances(400, f"R{i}"), acked, stop))
               for i in range(4)]
    threads += [threading.Thread(target=_cstore_client, args=(server, _instances(400, f"D{i}"), acked_sop, stop))
                for i in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) + len(acked_sop) < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(server.process.pid, signal.SIGKILL)  # in the middle of stores, REST and DICOM alike
    server.process.wait()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert len(acked) > 20 and len(acked_sop) > 10, (len(acked), len(acked_sop))
    restarted = start_donjon({"StableAge": 1000}, workdir=workdir)
    swept = "orphan file" in restarted.log()
    counts = _audit(restarted, acked, acked_sop)
    assert counts["files"] >= counts["acked"]
    print(f"kill -9: {counts['acked']} acknowledged, {counts['files']} files, orphans swept: {swept}")


def test_orphans_of_interrupted_stores_are_removed_at_start_up() -> None:
    """A crash between the file and the index commit leaves a journaled file: removed at start-up;
    a journaled file that the index does reference is kept."""
    server = start_donjon({"StableAge": 1000})
    workdir = server.workdir
    answer = server.post("/instances", content=next(_instances(1, "J"))).json()
    info = server.get(f"/instances/{answer['ID']}/attachments/dicom/info").json()
    server.stop()
    storage = workdir / "storage"
    orphan = str(uuidlib.uuid4())
    (storage / orphan[:2] / orphan[2:4]).mkdir(parents=True, exist_ok=True)
    (storage / orphan[:2] / orphan[2:4] / orphan).write_bytes(b"half-written")
    journal = storage / "donjon-inflight.journal"
    journal.write_text(f"+{orphan}\n+{info['Uuid']}\n")
    restarted = start_donjon({"StableAge": 1000}, workdir=workdir)
    assert "Removed 1 orphan file" in restarted.log()
    assert not (storage / orphan[:2] / orphan[2:4] / orphan).exists()
    assert restarted.get(f"/instances/{answer['ID']}/file").status_code == 200
    _audit(restarted, {}, {})


@pytest.mark.parametrize("compression", [False, True], ids=["plain", "compressed"])
def test_a_power_cut_loses_no_acknowledged_instance(compression: bool) -> None:
    """Store commits are fsynced by batches (core/index_sync.py). A power cut keeps the fsynced files
    and loses the index commits of the last interval; here the index is put back as it was on disk
    before those commits (the one fault no test can cause for real), and the restart stores the
    files of the lost commits again, from the in-flight journal."""
    config = {"StableAge": 1000, "IndexSyncInterval": 60, "StorageCompression": compression}
    server = start_donjon(config)
    workdir, storage = server.workdir, server.workdir / "storage"
    files = list(_instances(12, "P"))
    acked: dict[str, str] = {}
    for data in files[:4]:
        acked[server.post("/instances", content=data).json()["ID"]] = hashlib.md5(data).hexdigest()
    os.kill(server.process.pid, signal.SIGSTOP)  # the index as the disk holds it: these 4 only
    snapshot = {name: (storage / name).read_bytes() for name in ("index", "index-wal") if (storage / name).exists()}
    os.kill(server.process.pid, signal.SIGCONT)
    for data in files[4:]:
        r = server.post("/instances", content=data)
        assert r.status_code == 200
        acked[r.json()["ID"]] = hashlib.md5(data).hexdigest()
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    for name in ("index", "index-wal", "index-shm"):  # the power cut: the last 8 commits never reached the disk
        (storage / name).unlink(missing_ok=True)
    for name, data in snapshot.items():
        (storage / name).write_bytes(data)
    torn = str(uuidlib.uuid4())  # a file whose write the cut interrupted: shorter than announced
    (storage / torn[:2] / torn[2:4]).mkdir(parents=True, exist_ok=True)
    (storage / torn[:2] / torn[2:4] / torn).write_bytes(files[0][:100])
    with open(storage / "donjon-inflight.journal", "a") as journal:
        journal.write(f"+{torn} 1 {len(files[0])}\n")

    restarted = start_donjon(config, workdir=workdir)
    assert "Stored again 8 of 8 instance(s)" in restarted.log()
    # the torn file, and with compression the 8 headers (attachment 3) stored beside the lost ones
    assert f"Removed {9 if compression else 1} orphan file" in restarted.log()
    assert len(restarted.get("/instances").json()) == 12
    origins = {restarted.get(f"/instances/{i}/metadata/Origin").text for i in acked}
    assert origins == {"RestApi", "Unknown"}  # the origin of an adopted instance was in the lost commit
    _audit(restarted, acked, {})  # every byte back, no orphan file, no index entry without its file


def test_acknowledged_stores_become_durable_within_the_interval() -> None:
    """The deferred fsync does happen: after one interval the journal holds nothing in flight."""
    server = start_donjon({"StableAge": 1000, "IndexSyncInterval": 0.1})
    journal = server.workdir / "storage" / "donjon-inflight.journal"
    for data in _instances(5, "D"):
        assert server.post("/instances", content=data).status_code == 200
    announced = [line for line in journal.read_text().splitlines() if line.startswith("+")]
    assert len(announced) == 5
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        settled = [line for line in journal.read_text().splitlines() if line.startswith("-")]
        if len(settled) == 5:
            break
        time.sleep(0.05)
    assert len(settled) == 5
    server.stop()


def test_recycled_files_waiting_for_the_index_sync_survive_no_crash() -> None:
    """A store that recycles a patient commits the deletion without its fsync; the recycled files are
    removed once the index is durable (core/index_sync.py). Killed before that, the next start-up
    removes them (the journal's `x` lines): no orphan file, and the kept patient intact."""
    config = {"StableAge": 1000, "IndexSyncInterval": 60, "MaximumPatientCount": 1}
    server = start_donjon(config)
    workdir, storage = server.workdir, server.workdir / "storage"
    first, second = (to_bytes(base_dataset(patient=name)) for name in ("RECYCLED", "KEPT"))
    assert server.post("/instances", content=first).status_code == 200
    r = server.post("/instances", content=second)
    assert r.status_code == 200
    acked = {r.json()["ID"]: hashlib.md5(second).hexdigest()}
    assert len(_storage_uuids(storage)) == 2  # the recycled file waits for the next durable commit
    assert "\nx" in "\n" + (storage / "donjon-inflight.journal").read_text()
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()

    restarted = start_donjon(config, workdir=workdir)
    assert "Removed 1 orphan file" in restarted.log()
    assert [p["MainDicomTags"]["PatientID"] for p in restarted.get("/patients?expand").json()] == ["KEPT"]
    _audit(restarted, acked, {})


def test_a_power_cut_after_a_recycling_store_keeps_index_and_files_in_agreement() -> None:
    """The power cut takes the commit that recycled a patient: the index names that patient again,
    and its file must still be there (it is removed only after the deletion is durable). The store
    that recycled it is adopted at start-up and recycles it again."""
    config = {"StableAge": 1000, "IndexSyncInterval": 60, "MaximumPatientCount": 1}
    server = start_donjon(config)
    workdir, storage = server.workdir, server.workdir / "storage"
    first, second = (to_bytes(base_dataset(patient=name)) for name in ("RECYCLED", "KEPT"))
    assert server.post("/instances", content=first).status_code == 200
    os.kill(server.process.pid, signal.SIGSTOP)  # the index as the disk holds it: the first store only
    snapshot = {name: (storage / name).read_bytes() for name in ("index", "index-wal") if (storage / name).exists()}
    os.kill(server.process.pid, signal.SIGCONT)
    r = server.post("/instances", content=second)
    assert r.status_code == 200
    acked = {r.json()["ID"]: hashlib.md5(second).hexdigest()}
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    for name in ("index", "index-wal", "index-shm"):
        (storage / name).unlink(missing_ok=True)
    for name, data in snapshot.items():
        (storage / name).write_bytes(data)

    restarted = start_donjon(config, workdir=workdir)
    assert "Stored again 1 of 1 instance(s)" in restarted.log()
    assert [p["MainDicomTags"]["PatientID"] for p in restarted.get("/patients?expand").json()] == ["KEPT"]
    _audit(restarted, acked, {})  # (its stop makes the second recycling durable and removes the file)


def test_a_crash_between_a_deletion_and_its_unlinks_leaves_no_orphan(tmp_path: Path) -> None:
    """The process dies after the deletion's commit, before its files are removed (simulated: the
    removal fails, the context is dropped without closing): the next start-up removes them."""
    from donjon.config import Configuration
    from donjon.core.context import ServerContext
    from donjon.core.store import StoreOrigin
    from donjon.registry import Level

    raw = {"StorageDirectory": str(tmp_path / "storage"), "IndexDirectory": str(tmp_path / "storage"),
           "StableAge": 3600}
    ctx = ServerContext(Configuration(raw), no_jobs=True)
    gone = ctx.store(to_bytes(base_dataset(patient="GONE")), StoreOrigin())
    kept = ctx.store(to_bytes(base_dataset(patient="KEPT")), StoreOrigin())
    inner = ctx.storage.inner.inner  # (the folder storage, under the memory cache and the journal)

    def crash(uuid: str, content_type: int | None = None) -> None:
        raise OSError("the process died here")

    inner.remove = crash
    assert ctx.delete(Level.PATIENT, gone.ids.patient) is not None
    assert len(_storage_uuids(tmp_path / "storage")) == 2  # the deleted patient's file is still there
    ctx.index_sync.close()
    ctx.index.close()
    ctx.journal.close()
    if ctx._lock is not None:
        ctx._lock.release()

    restarted = ServerContext(Configuration(raw), no_jobs=True)
    try:
        assert len(_storage_uuids(tmp_path / "storage")) == 1
        assert restarted.instance_file(kept.ids.instance) is not None
        assert restarted.index.reader().lookup(gone.ids.patient) is None
    finally:
        restarted.close()
