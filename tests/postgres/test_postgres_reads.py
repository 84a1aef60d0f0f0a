"""How the PostgreSQL index reads: one snapshot or statement by statement, and which pooled connection
serves a request (index/postgres.py), against a real PostgreSQL server."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from donjon.index.postgres import PostgresIndex
from donjon.index.postgres_settings import validate
from tests.support.postgres import pg_bin_dir, shared_cluster

pytestmark = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL server binaries are missing "
                                                             "(apt-get install postgresql)")


@pytest.fixture
def index() -> Iterator[PostgresIndex]:
    cluster = shared_cluster()
    db = cluster.create_database(f"reads_{os.getpid()}_{time.monotonic_ns()}")
    idx = PostgresIndex(validate(cluster.section(db)))
    try:
        yield idx
    finally:
        idx.close()


def _patient(index: PostgresIndex, public_id: str) -> int:
    return index.write(lambda tx: tx.create_resource(1, public_id, None, b"{}", None))


@pytest.mark.parametrize("snapshot", [True, False])
def test_a_snapshot_hides_what_commits_between_two_statements(index: PostgresIndex, snapshot: bool) -> None:
    first = _patient(index, "patient-first")

    def run(tx: Any) -> tuple[list[int], list[int]]:
        before = tx.ids_of_level(1)
        _patient(index, "patient-meanwhile")  # writes take their own connection: committed meanwhile
        index.write(lambda w: w.delete_resource(first))
        after = tx.ids_of_level(1)
        return before, after

    before, after = index.read(run, snapshot=snapshot)
    assert before == [first]
    if snapshot:
        assert after == [first]  # REPEATABLE READ: the first statement's view, whatever commits
    else:
        assert first not in after and len(after) == 1  # each statement sees the latest commits


def test_the_connection_returned_last_serves_the_next_request(index: PostgresIndex) -> None:
    """After a burst has grown the pool, sequential requests keep using one (hot) connection."""
    barrier = threading.Barrier(5)

    def hold() -> None:
        with index.pool.connection():
            barrier.wait()
            time.sleep(0.1)
    burst = [threading.Thread(target=hold) for _ in range(5)]
    for t in burst:
        t.start()
    for t in burst:
        t.join()
    pids = set()
    for _ in range(10):
        with index.pool.connection() as conn:
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            pids.add(row[0])
    assert len(pids) == 1
