"""The PostgreSQL index on a throw-away cluster: configuration, locking, concurrency, migration."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from donjon.index.postgres import SCHEMA_VERSION, PostgresIndex
from donjon.index.postgres_settings import validate
from donjon.registry import ConfigurationError
from tests.support.postgres import PostgresCluster, pg_bin_dir, shared_cluster
from tests.support.servers import ROOT, free_port, sample_files, start_donjon

pytestmark = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL server binaries are missing "
                                                             "(apt-get install postgresql)")


@pytest.fixture(scope="module")
def cluster() -> PostgresCluster:
    return shared_cluster()


def _fresh(cluster: PostgresCluster, name: str) -> str:
    db = f"{name}_{os.getpid()}_{time.monotonic_ns()}"
    return cluster.create_database(db)


def _settings(cluster: PostgresCluster, db: str, **extra: Any) -> Any:
    return validate(cluster.section(db, **extra))


def test_settings_follow_orthancs_plugin() -> None:
    s = validate({"EnableIndex": True, "Host": "db", "Port": "6543", "Database": "pacs", "Username": "u",
                  "Password": "p4ss", "EnableSsl": True, "Lock": False, "IndexConnectionsCount": 7,
                  "MaximumConnectionRetries": 2, "ConnectionRetryInterval": 1})
    assert (s.host, s.port, s.database, s.lock, s.connections, s.max_retries) == ("db", 6543, "pacs", False, 7, 2)
    assert "sslmode=require" in s.conninfo() and "password=p4ss" in s.conninfo()
    assert "p4ss" not in s.describe()
    uri = validate({"EnableIndex": True, "ConnectionUri": "postgresql://u:secret@h:5433/x"})
    assert uri.describe() == "h:5433/x" and "secret" not in uri.describe()
    defaults = validate({})
    assert (defaults.enable_index, defaults.host, defaults.port, defaults.lock, defaults.max_retries,
            defaults.retry_interval) == (False, "localhost", 5432, True, 10, 5)
    with pytest.raises(ConfigurationError, match=r"PostgreSQL\.Port"):
        validate({"Port": "x"})
    with pytest.raises(ConfigurationError, match=r"PostgreSQL\.Lock"):
        validate({"Lock": "maybe"})


def test_schema_version_row_and_exclusive_lock(cluster: PostgresCluster) -> None:
    db = _fresh(cluster, "lock")
    first = PostgresIndex(_settings(cluster, db))
    try:
        with first.pool.connection() as conn:
            assert conn.execute("SELECT version FROM donjon_schema").fetchall() == [(SCHEMA_VERSION,)] == [(2,)]
        from donjon.errors import OrthancError

        with pytest.raises(OrthancError, match="locked by another instance"):
            PostgresIndex(_settings(cluster, db))
        with pytest.raises(OrthancError, match='"Lock": true'):
            PostgresIndex(_settings(cluster, db, Lock=False))
    finally:
        first.close()
    again = PostgresIndex(_settings(cluster, db))  # the lock went with the first process' connection
    again.close()


def test_a_version_1_index_gets_the_study_copies_of_patient_identifiers(cluster: PostgresCluster) -> None:
    db = _fresh(cluster, "upgrade")
    index = PostgresIndex(_settings(cluster, db))
    try:
        patient = index.write(lambda tx: tx.create_resource(1, "patient-u", None, b"{}", None))
        blob = b'{"0010,0010": "Caf\xc3\xa9^Anon", "0010,0030": "19700101", "0008,0050": "A1"}'
        study = index.write(lambda tx: tx.create_resource(2, "study-u", patient, b"{}", blob))
        with index.pool.connection() as conn:  # as version 1 left it
            conn.execute("DELETE FROM identifiers")
            conn.execute("UPDATE donjon_schema SET version = 1")
    finally:
        index.close()
    index = PostgresIndex(_settings(cluster, db))
    try:
        with index.pool.connection() as conn:
            assert conn.execute("SELECT version FROM donjon_schema").fetchall() == [(2,)]
            rows = conn.execute("SELECT resource_id, tag, norm FROM identifiers ORDER BY tag").fetchall()
        assert rows == [(study, -0x00100030, "19700101"), (study, -0x00100010, "CAFÉ^ANON")]
    finally:
        index.close()


def test_migrating_a_version_3_sqlite_index_adds_the_study_copies(cluster: PostgresCluster, tmp_path: Path) -> None:
    from donjon.index.migrate import _migrate as migrate
    from donjon.index.sqlite import SQLiteIndex

    path = str(tmp_path / "index")
    source = SQLiteIndex(path)
    patient = source.write(lambda tx: tx.create_resource(1, "patient-m", None, b"{}", None))
    studies = [source.write(lambda tx, i=i: tx.create_resource(2, f"study-{i}", patient, b"{}",
                                                                 f'{{"0010,0020": "ID{i}"}}'.encode()))
               for i in range(3)]
    source.close()
    conn = sqlite3.connect(path, isolation_level=None)  # as version 3 left it: no copies
    conn.execute("DELETE FROM identifiers")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    db = _fresh(cluster, "migrate3")
    assert migrate(path, _settings(cluster, db), 2) == 0
    import psycopg

    with psycopg.connect(cluster.uri(db)) as pg:
        rows = pg.execute("SELECT resource_id, tag, norm FROM identifiers ORDER BY resource_id").fetchall()
    assert rows == [(study, -0x00100020, f"ID{i}") for i, study in enumerate(studies)]


def test_two_writers_never_duplicate_a_resource(cluster: PostgresCluster) -> None:
    """Two index objects (as two processes would) create the same patient/study at the same instant."""
    db = _fresh(cluster, "race")
    indexes = [PostgresIndex(_settings(cluster, db, Lock=False)) for _ in range(2)]
    try:
        barrier = threading.Barrier(8)
        results: list[tuple[int, bool]] = []
        lock = threading.Lock()

        def create(index: PostgresIndex, n: int) -> None:
            barrier.wait()

            def run(tx: Any) -> tuple[int, bool]:
                patient, _, created = tx.get_or_create_resource(1, "patient-x", None, b"{}", None)
                study, _, _ = tx.get_or_create_resource(2, "study-x", patient, b"{}", b"{}")
                tx.create_resource(4 if n else 3, f"child-{n}", study, b"{}", None)
                return patient, created
            value = index.write(run)
            with lock:
                results.append(value)
        threads = [threading.Thread(target=create, args=(indexes[n % 2], n)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({patient for patient, _ in results}) == 1
        assert sum(created for _, created in results) == 1
        counters = indexes[0].reader().counters()
        assert (counters["level1"], counters["level2"]) == (1, 1)
    finally:
        for index in indexes:
            index.close()


def test_password_is_never_logged_and_retries_are_bounded(cluster: PostgresCluster, tmp_path: Path) -> None:
    secret = "S3cr3t-never-logged"
    cfg = {"HttpPort": free_port(), "DicomPort": free_port(), "StorageDirectory": str(tmp_path / "storage"),
           "PostgreSQL": {"EnableIndex": True, "Host": "127.0.0.1", "Port": free_port(), "Database": "x",
                          "Username": "donjon", "Password": secret, "MaximumConnectionRetries": 1,
                          "ConnectionRetryInterval": 1}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "donjon", str(tmp_path / "config.json")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert 1 <= time.monotonic() - started < 30  # one retry after 1 s, then a clean failure
    assert "Cannot connect to PostgreSQL at 127.0.0.1" in result.stderr
    assert secret not in result.stderr + result.stdout
    # a good password: the server starts, and its log does not show it either
    db = _fresh(cluster, "nolog")
    server = start_donjon({"PostgreSQL": cluster.section(db)}, args=["--verbose"])
    try:
        assert server.upload(sample_files()[0]).status_code == 200
    finally:
        server.stop()
    assert cluster.password not in server.log()
    assert "The index is in PostgreSQL" in server.log()


def _migrate(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "donjon", "migrate-index", *args, str(config)],
                            cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})


def _snapshot(server: Any) -> dict[str, Any]:
    return {
        "statistics": server.get("/statistics").json(),
        "patients": server.get("/patients?expand").json(),
        "studies": server.get("/studies?expand").json(),
        "instances": sorted(server.get("/instances").json()),
        "changes": server.get("/changes?limit=100000").json(),
        "find": server.post("/tools/find", json={"Level": "Series", "Query": {"Modality": "M*"}}).json(),
        "labels": server.get("/tools/labels").json(),
        "metadata": server.get(f"/instances/{server.get('/instances').json()[0]}/metadata?expand").json(),
    }


@pytest.fixture(scope="module")
def sqlite_donjon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """A SQLite-indexed Donjon with the sample files, a label and a protected patient, stopped."""
    workdir = tmp_path_factory.mktemp("sqlite-donjon")
    server = start_donjon({"PostgreSQL": {"EnableIndex": False}}, workdir=workdir)
    try:
        for f in sample_files():
            server.upload(f)
        patients = server.get("/patients").json()
        server.put(f"/patients/{patients[0]}/protected", content="1")
        server.put(f"/studies/{server.get('/studies').json()[0]}/labels/migrated")
        time.sleep(3.5)  # stable events in the change log
        snapshot = _snapshot(server)
    finally:
        server.stop()
    yield workdir, snapshot


def test_migrate_index_copies_everything(cluster: PostgresCluster, sqlite_donjon: tuple[Path, dict[str, Any]],
                                          tmp_path: Path) -> None:
    workdir, before = sqlite_donjon
    db = _fresh(cluster, "migrate")
    config = json.loads((workdir / "config.json").read_text())
    config["PostgreSQL"] = cluster.section(db)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = _migrate(path)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Migrated" in err and "100%" in err
    again = _migrate(path)
    _, err2 = again.communicate(timeout=60)
    assert again.returncode == 0 and "already migrated" in err2
    server = start_donjon({"PostgreSQL": cluster.section(db)}, workdir=workdir)
    try:
        after = _snapshot(server)
        assert after == before
        # the index goes on from there: new changes follow the migrated ones
        first = sample_files()[0]
        patient = server.upload(first).json()["ParentPatient"]  # AlreadyStored
        assert server.delete(f"/patients/{patient}").status_code == 200
        assert server.upload(first).json()["Status"] == "Success"
        last = server.get("/changes?last").json()["Changes"][0]
        assert last["Seq"] > before["changes"]["Last"]
    finally:
        server.stop()


def test_migrate_index_resumes_after_a_kill(cluster: PostgresCluster, sqlite_donjon: tuple[Path, dict[str, Any]],
                                            tmp_path: Path) -> None:
    workdir, before = sqlite_donjon
    db = _fresh(cluster, "resume")
    config = json.loads((workdir / "config.json").read_text())
    config["PostgreSQL"] = cluster.section(db)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    proc = _migrate(path, "--batch=2")
    assert proc.stderr is not None
    for line in proc.stderr:  # not a terminal: one line per 10%
        if line.startswith("30%"):
            proc.kill()
            break
    proc.wait()
    assert proc.returncode != 0
    import psycopg

    with psycopg.connect(cluster.uri(db)) as conn:
        copied = conn.execute("SELECT count(*) FROM resources").fetchone()[0]
        done = conn.execute("SELECT position FROM migration_progress WHERE step = 'finished'").fetchone()
    stats = before["statistics"]
    total = sum(stats[k] for k in ("CountPatients", "CountStudies", "CountSeries", "CountInstances"))
    assert 0 < copied < total and done is None
    resumed = _migrate(path, "--batch=50")
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    server = start_donjon({"PostgreSQL": cluster.section(db)}, workdir=workdir)
    try:
        assert _snapshot(server) == before
    finally:
        server.stop()


def _file(uuid: str) -> Any:
    from donjon.index.protocol import FileInfo

    return FileInfo(uuid, 1, 10, "md5", 1, 10, "md5")


def test_a_deletion_collects_the_files_of_rows_committed_while_it_waited(cluster: PostgresCluster) -> None:
    """A store commits a new series under the study being deleted while the deletion waits for its lock.
    Once the deletion holds its locks, that series must be locked too: otherwise a second store could add
    an instance to it between the deletion's listing of files and its DELETE, and the cascade would take
    an attachment row whose file nobody removes (an orphan file, seen with three processes)."""
    import psycopg

    from donjon.core.deletion import delete_cascade

    db = _fresh(cluster, "locktree")
    index = PostgresIndex(_settings(cluster, db, Lock=False))
    try:
        def setup(tx: Any) -> int:
            patient = tx.create_resource(1, "p", None, b"{}", None)
            study = tx.create_resource(2, "s", patient, b"{}", b"{}")
            series = tx.create_resource(3, "a", study, b"{}", None)
            instance = tx.create_resource(4, "a1", series, b"{}", None)
            tx.add_attachment(instance, _file("00000000-0000-0000-0000-0000000000a1"))
            return int(study)
        study = index.write(setup)
        store1 = psycopg.connect(cluster.uri(db), autocommit=True)
        store2 = psycopg.connect(cluster.uri(db), autocommit=True)

        def insert(conn: Any, level: int, public: str, parent: int) -> int:
            return int(conn.execute("INSERT INTO resources (level, public_id, parent_id, tags) VALUES "
                                    "(%s, %s, %s, '{}') RETURNING id", (level, public, parent)).fetchone()[0])

        def attach(conn: Any, resource: int, uuid: str) -> None:
            conn.execute("INSERT INTO attachments (resource_id, type, uuid, uncompressed_size, uncompressed_md5, "
                         "compression, compressed_size, compressed_md5, revision) "
                         "VALUES (%s, 1, %s, 10, 'md5', 1, 10, 'md5', 0)", (resource, uuid))

        store1.execute("BEGIN")  # store 1: a new series in the study, not committed yet
        new_series = insert(store1, 3, "n", study)
        attach(store1, insert(store1, 4, "n1", new_series), "00000000-0000-0000-0000-0000000000b1")

        locked = threading.Event()
        go_on = threading.Event()
        outcome: dict[str, Any] = {}

        class Paused:  # the deletion's transaction, held between its locking and its deleting
            def __init__(self, tx: Any):
                self._tx = tx

            def __getattr__(self, name: str) -> Any:
                return getattr(self._tx, name)

            def lock_tree(self, internal_id: int) -> None:
                self._tx.lock_tree(internal_id)
                locked.set()
                go_on.wait(10)

        def delete() -> None:
            outcome["deletion"] = index.write(lambda tx: delete_cascade(Paused(tx), study, "20261128T000000"))
        deleter = threading.Thread(target=delete)
        deleter.start()
        time.sleep(0.5)  # the deletion now waits for store 1's key-share lock on the study
        assert not locked.is_set()
        store1.execute("COMMIT")
        assert locked.wait(10)
        store2.execute("SET lock_timeout = '500ms'")
        store2_committed = False
        try:  # store 2: an instance into the series that store 1 committed
            store2.execute("BEGIN")
            attach(store2, insert(store2, 4, "n2", new_series), "00000000-0000-0000-0000-0000000000b2")
            store2.execute("COMMIT")
            store2_committed = True
        except psycopg.errors.LockNotAvailable:
            store2.execute("ROLLBACK")  # kept out: the series is locked by the deletion
        go_on.set()
        deleter.join(20)
        assert not store2_committed  # kept out while the deletion runs: it fails and retries later
        removed = {f.uuid for f in outcome["deletion"].files}
        assert removed == {"00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000b1"}
        with index.pool.connection() as conn:
            assert conn.execute("SELECT count(*) FROM resources").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM attachments").fetchone()[0] == 0
        store1.close()
        store2.close()
    finally:
        index.close()


def test_a_stale_prepared_statement_costs_a_retry_not_an_error(cluster: PostgresCluster) -> None:
    """psycopg believes a statement prepared that the server no longer has (seen after conflicts in
    pipelined transactions): reads and writes replace the connection and run again."""
    db = _fresh(cluster, "stale")
    index = PostgresIndex(_settings(cluster, db, Lock=False, IndexConnectionsCount=1))
    try:
        index.write(lambda tx: tx.create_resource(1, "p", None, b"{}", None))
        for _ in range(4):  # past the threshold: now prepared on the connection
            assert index.reader().lookup("p") is not None
            assert index.read(lambda tx: tx.lookup("p")) is not None
            index.write(lambda tx: tx.lookup("p"))

        def forget_on_the_server() -> None:
            with index.pool.connection() as conn:
                names = list(conn._prepared._names.values())
                assert names
                for name in names:
                    conn.execute(f"DEALLOCATE {name.decode()}", prepare=False)
        forget_on_the_server()
        assert index.reader().lookup("p") is not None
        for _ in range(3):
            index.read(lambda tx: tx.lookup("p"))
        forget_on_the_server()
        assert index.read(lambda tx: tx.lookup("p")) is not None
        for _ in range(3):
            index.write(lambda tx: tx.lookup("p"))
        forget_on_the_server()
        assert index.write(lambda tx: tx.lookup("p")) is not None
    finally:
        index.close()
