"""`index/postgres_fast.py`: hot statements through libpq, against a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import psycopg
import pytest

from donjon.index import postgres_fast as fast
from tests.support.postgres import pg_bin_dir, shared_cluster

pytestmark = pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL server binaries are missing "
                                                             "(apt-get install postgresql)")


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    cluster = shared_cluster()
    db = cluster.create_database(f"fast_{os.getpid()}_{time.monotonic_ns()}")
    with psycopg.connect(cluster.uri(db), autocommit=True) as c:
        c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, data BYTEA)")
        yield c


def test_parameters_and_results_in_text_survive_awkward_values(conn: psycopg.Connection) -> None:
    names = ['a "quoted" name', "back\\slash", "comma, brace } {", "ünïcödé", ""]
    blobs = [b"\x00\x01\xff", b"", b'{"0010,0010": "x"}']
    echo = fast.Statement("echo_arrays", "SELECT array_to_json($1::text[]), array_length($1::text[], 1), $2::bytea[], "
                                         "$2::bytea[] = ARRAY[$3::bytea, $4::bytea, $5::bytea]")
    r = fast.execute(conn, echo, [fast.text_array(names), fast.bytea_array(blobs),
                                  *(b"\\x" + b.hex().encode() for b in blobs)])
    assert int(r.get_value(0, 1) or 0) == len(names)
    assert r.get_value(0, 3) == b"t"  # the bytea[] parameter arrived byte for byte
    assert json.loads(r.get_value(0, 0) or b"") == names
    ints = fast.Statement("ints", "SELECT ARRAY[1, 22, 333]::bigint[], ARRAY[true, false]::boolean[], "
                                  "'{}'::bigint[], '\\x00ff'::bytea")
    r = fast.execute(conn, ints, [])
    assert fast.int_array(r.get_value(0, 0) or b"") == [1, 22, 333]
    assert fast.bool_array(r.get_value(0, 1) or b"") == [True, False]
    assert fast.int_array(r.get_value(0, 2) or b"") == []
    assert fast.bytea(r.get_value(0, 3) or b"") == b"\x00\xff"


def test_a_statement_the_server_forgot_is_prepared_again(conn: psycopg.Connection) -> None:
    insert = fast.Statement("insert_t", "INSERT INTO t (id, name) VALUES ($1, $2)")
    fast.execute(conn, insert, [b"1", b"one"])
    conn.execute("DEALLOCATE ALL")  # what a connection pooler or a DISCARD does
    fast.execute(conn, insert, [b"2", b"two"])
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_server_errors_are_psycopgs_exceptions(conn: psycopg.Connection) -> None:
    insert = fast.Statement("insert_t2", "INSERT INTO t (id, name) VALUES ($1, $2)")
    fast.execute(conn, insert, [b"7", b"seven"])
    with pytest.raises(psycopg.errors.UniqueViolation):
        fast.execute(conn, insert, [b"7", b"again"])
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        fast.execute(conn, insert, [b"not a number", b"x"])
    assert conn.execute("SELECT name FROM t WHERE id = 7").fetchone()[0] == "seven"  # connection still usable
