"""Three Donjon processes on one PostgreSQL index and one storage folder, under concurrent writers.

8 client threads upload overlapping studies to random processes for ~25 s, with deletions, metadata
writes and label changes in between. Afterwards: no 5xx, no duplicate resource, counters equal to
what the tables hold, every process answers the same /statistics, one New* change per resource,
never two Stable* changes of a series without a new instance in between, no orphan file. Then a
process is killed with SIGKILL in the middle of a job, and the job finishes on another process.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.support.dicom_files import file_bytes
from tests.support.postgres import pg_bin_dir, shared_cluster
from tests.support.servers import Server, start_donjon

DURATION = float(os.environ.get("DONJON_SCALE_SECONDS", "25"))
STUDIES = 10
SERIES = 2
PER_SERIES = 8
LEASE = 3

pytestmark = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL server binaries are missing "
                                                             "(apt-get install postgresql)")


def instance(study: int, series: int, index: int) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{study}"
    ds.SeriesInstanceUID = f"{ds.StudyInstanceUID}.{series}"
    ds.SOPInstanceUID = f"{ds.SeriesInstanceUID}.{index}"
    ds.PatientID = f"SCALE{study % 4}"  # several studies per patient: stores and deletions meet
    ds.PatientName = f"SCALE^{study % 4}"
    ds.StudyDescription = f"Scale {study}"
    ds.Modality = "CT"
    ds.InstanceNumber = index
    ds.add_new(0x7FE00010, "OB", os.urandom(2048))
    return file_bytes(ds)


@pytest.fixture(scope="module")
def cluster_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Server], str]]:
    cluster = shared_cluster()
    database = cluster.create_database(f"scale_{os.getpid()}_{int(time.time())}")
    storage = tmp_path_factory.mktemp("shared-storage")
    # KeepAliveTimeout: idle kept-alive connections are closed after 1 s by default (as Orthanc); a
    # client thread reusing one at that very moment gets a reset, which is HTTP's rule, not this test's
    config = {"StorageDirectory": str(storage), "ConcurrentJobs": 1, "StableAge": 1, "KeepAliveTimeout": 60,
              "UserMetadata": {"Scale": 1024},
              "PostgreSQL": cluster.section(database, Lock=False, JobsLeaseDuration=LEASE)}
    servers: list[Server] = []
    try:
        for _ in range(3):
            servers.append(start_donjon(config))
        yield servers, cluster.uri(database)
    finally:
        for s in servers:
            s.stop()


def _worker(servers: list[Server], files: dict[tuple[int, int, int], bytes], deadline: float, seed: int,
            statuses: Counter[int], errors: list[str]) -> None:
    rng = random.Random(seed)
    clients = [s.client for s in servers]
    keys = list(files)
    while time.monotonic() < deadline:
        client = rng.choice(clients)
        roll = rng.random()
        try:
            if roll < 0.80:
                key = rng.choice(keys)
                r = client.post("/instances", content=files[key])
            elif roll < 0.90:
                studies = client.get("/studies").json()
                if not studies:
                    continue
                r = client.put(f"/studies/{rng.choice(studies)}/metadata/Scale", content=str(rng.random()))
                if r.status_code == 404:  # deleted meanwhile by another client
                    continue
            elif roll < 0.95:
                series = client.get("/series").json()
                if not series:
                    continue
                r = client.put(f"/series/{rng.choice(series)}/labels/scale{rng.randint(0, 2)}")
                if r.status_code == 404:
                    continue
            else:
                studies = client.get("/studies").json()
                if not studies:
                    continue
                r = client.delete(f"/studies/{rng.choice(studies)}")
                if r.status_code == 404:
                    continue
            statuses[r.status_code] += 1
            if r.status_code >= 500:
                errors.append(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
        except Exception as e:  # a dropped connection is as bad as a 5xx
            errors.append(f"{type(e).__name__}: {e}")


def _db(uri: str) -> Any:
    import psycopg

    return psycopg.connect(uri, autocommit=True)


def test_concurrent_writers_keep_the_index_exact(cluster_servers: tuple[list[Server], str]) -> None:
    servers, uri = cluster_servers
    files = {(st, se, i): instance(st, se, i) for st in range(STUDIES) for se in range(SERIES)
             for i in range(1, PER_SERIES + 1)}
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    deadline = time.monotonic() + DURATION
    threads = [threading.Thread(target=_worker, args=(servers, files, deadline, seed, statuses, errors))
               for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:10]
    assert statuses[200] > 200, statuses  # the load was real
    time.sleep(3.5)  # StableAge 1 s + the monitors' period: every stable event is recorded

    with _db(uri) as conn:
        # no duplicates: one resource per DICOM identifier, whatever process created it
        for tag in (0x0020000D, 0x0020000E, 0x00080018):
            dup = conn.execute("SELECT norm, count(*) FROM identifiers WHERE tag = %s GROUP BY norm "
                               "HAVING count(*) > 1", (tag,)).fetchall()
            assert dup == [], dup
        patients = conn.execute("SELECT count(*), count(DISTINCT i.norm) FROM resources r JOIN identifiers i "
                                "ON i.resource_id = r.id AND i.tag = 1048608 WHERE r.level = 1").fetchone()
        assert patients[0] == patients[1]
        # counters (kept by triggers) equal to what the tables hold
        counted = dict(conn.execute("SELECT 'level' || level, count(*) FROM resources GROUP BY level").fetchall())
        disk, unc = conn.execute("SELECT coalesce(sum(compressed_size), 0), coalesce(sum(uncompressed_size), 0) "
                                 "FROM attachments").fetchone()
        counters = {k: int(v) for k, v in conn.execute("SELECT name, sum(value) FROM counters GROUP BY name")}
        for level in range(1, 5):
            assert counters[f"level{level}"] == counted.get(f"level{level}", 0)
        assert counters["disk"] == disk and counters["uncompressed"] == unc
        # one New* change per existing resource
        news = conn.execute("SELECT r.id, count(c.seq) FROM resources r LEFT JOIN changes c ON c.resource_id = r.id "
                            "AND c.type IN (2, 3, 4, 5) GROUP BY r.id HAVING count(c.seq) <> 1").fetchall()
        assert news == [], news
        # never two StableSeries of a series without a new instance in it in between
        rows = conn.execute(
            "SELECT coalesce(i.parent_id, c.resource_id), c.type, c.seq FROM changes c "
            "LEFT JOIN resources i ON i.id = c.resource_id AND c.type = 2 "
            "WHERE c.type IN (2, 14) ORDER BY c.seq").fetchall()
        last: dict[int, int] = {}
        for series_id, change_type, seq in rows:
            if change_type == 14:
                assert last.get(series_id) != 14, f"two StableSeries in a row for series {series_id} (seq {seq})"
            last[series_id] = change_type
        uuids = {r[0] for r in conn.execute("SELECT uuid FROM attachments")}

    stats = [s.get("/statistics").json() for s in servers]
    assert stats[0] == stats[1] == stats[2]
    assert stats[0]["CountInstances"] == counted.get("level4", 0) == len(servers[0].get("/instances").json())
    assert stats[0]["CountStudies"] == len(servers[1].get("/studies").json())
    assert int(stats[0]["TotalDiskSize"]) == disk
    # the storage folder holds exactly the files the index knows (none orphaned by a lost race)
    storage = Path(servers[0].config["StorageDirectory"])
    on_disk = {p.name for p in storage.rglob("*") if p.is_file() and len(p.name) == 36}
    orphans, lost = on_disk - uuids, uuids - on_disk
    if orphans or lost:  # say where each went: which process announced it, and whether it was settled
        trail = {u: [f"{j.name}: {line}" for j in storage.glob("*.journal")
                     for line in j.read_text().splitlines() if line[1:] == u] for u in orphans | lost}
        pytest.fail(f"orphan files {sorted(orphans)}, lost files {sorted(lost)}, journals: {trail}")


def test_a_job_moves_to_another_process_when_its_owner_is_killed(
        cluster_servers: tuple[list[Server], str]) -> None:
    servers, _ = cluster_servers
    owner, other = servers[0], servers[1]
    count = 300
    for i in range(1, count + 1):
        r = owner.post("/instances", content=instance(500, 1, i))
        assert r.status_code == 200, r.text
    study = r.json()["ParentStudy"]
    job_id = owner.post(f"/studies/{study}/modify", json={"Replace": {"StudyDescription": "moved"},
                                                           "Asynchronous": True}).json()["ID"]
    deadline = time.monotonic() + 60
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:  # until the owner has saved a position, seen from another process
        r = other.get(f"/jobs/{job_id}")  # 404 until the owner has saved the job
        seen = r.json() if r.status_code == 200 else {}
        if seen and (seen["Progress"] > 0 or seen["State"] in ("Success", "Failure")):
            break
        time.sleep(0.01)
    assert seen["State"] == "Running" and seen["Progress"] < 100, seen
    os.kill(owner.process.pid, signal.SIGKILL)
    owner.process.wait()

    deadline = time.monotonic() + 60
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        info = other.get(f"/jobs/{job_id}").json()
        if info["State"] in ("Success", "Failure"):
            break
        time.sleep(0.1)
    assert info.get("State") == "Success", info
    logs = servers[1].log() + servers[2].log()
    assert f"Job {job_id}" in logs and "taken over" in logs
    new_study = info["Content"]["ID"]
    instances = other.get(f"/studies/{new_study}/instances").json()
    assert len(instances) == count  # redone instances are found again, not duplicated
    assert other.get(f"/studies/{new_study}").json()["MainDicomTags"]["StudyDescription"] == "moved"
    originals = {i["ID"] for i in other.get(f"/studies/{study}/instances").json()}
    assert {other.get(f"/instances/{i['ID']}/metadata/ModifiedFrom").text for i in instances} == originals
