"""A metadata read is answered from memory while the index has committed nothing since
(core/metadata.py `MetadataReads`): the tests count the SQL statements the reader connection really
runs, and check that every kind of commit (a PUT, a DELETE, a store, a deletion of the resource, a
write from another thread) makes the next read ask the index again."""

from __future__ import annotations

import threading

import pytest

from donjon.core import metadata as md
from donjon.core.context import ServerContext
from donjon.core.store import StoreOrigin
from donjon.errors import OrthancError
from donjon.registry import Level
from tests.faults.crafted import base_dataset, to_bytes
from tests.support.contexts import USER_KEY, context_fixture  # noqa: F401 - the `ctx` fixture

KEY = USER_KEY


class _Statements:
    """The statements this thread's reader connection runs (SQLite's own trace)."""

    def __init__(self, ctx: ServerContext):
        self.seen: list[str] = []
        ctx.index.reader().conn.set_trace_callback(self.seen.append)  # type: ignore[attr-defined]

    def count(self) -> int:
        return sum("FROM resources r LEFT JOIN metadata" in s for s in self.seen)


def _store(ctx: ServerContext, patient: str = "P") -> str:
    return ctx.store(to_bytes(base_dataset(patient)), StoreOrigin()).ids.instance


def test_repeated_reads_run_one_statement(ctx: ServerContext) -> None:
    instance = _store(ctx)
    md.set_metadata(ctx, instance, KEY, "first", None)
    statements = _Statements(ctx)
    for _ in range(5):
        assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("first", 0)
    assert statements.count() == 1


def test_a_put_or_delete_is_seen_at_once(ctx: ServerContext) -> None:
    instance = _store(ctx)
    md.set_metadata(ctx, instance, KEY, "first", None)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("first", 0)
    md.set_metadata(ctx, instance, KEY, "second", None)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("second", 1)
    md.delete_metadata(ctx, instance, KEY, None)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) is None


def test_any_commit_retires_the_cached_reads(ctx: ServerContext) -> None:
    instance = _store(ctx)
    md.set_metadata(ctx, instance, KEY, "value", None)
    statements = _Statements(ctx)
    md.get_metadata(ctx, Level.INSTANCE, instance, KEY)
    _store(ctx, "OTHER")  # a commit that does not touch this value
    md.get_metadata(ctx, Level.INSTANCE, instance, KEY)
    assert statements.count() == 2


def test_a_deleted_resource_is_unknown_at_once(ctx: ServerContext) -> None:
    instance = _store(ctx)
    md.set_metadata(ctx, instance, KEY, "value", None)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("value", 0)
    assert ctx.delete(Level.INSTANCE, instance) is not None
    with pytest.raises(OrthancError):
        md.get_metadata(ctx, Level.INSTANCE, instance, KEY)


def test_a_write_from_another_thread_is_seen(ctx: ServerContext) -> None:
    instance = _store(ctx)
    md.set_metadata(ctx, instance, KEY, "mine", None)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("mine", 0)
    writer = threading.Thread(target=md.set_metadata, args=(ctx, instance, KEY, "theirs", None))
    writer.start()
    writer.join()
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == ("theirs", 1)


def test_large_values_are_not_kept(ctx: ServerContext) -> None:
    instance = _store(ctx)
    big = "x" * 5000
    md.set_metadata(ctx, instance, KEY, big, None)
    statements = _Statements(ctx)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == (big, 0)
    assert md.get_metadata(ctx, Level.INSTANCE, instance, KEY) == (big, 0)
    assert statements.count() == 2


def test_a_shared_index_is_always_asked(ctx: ServerContext) -> None:
    """Several processes on one index (PostgreSQL): another one's commits are not counted here."""
    instance = _store(ctx)
    md.set_metadata(ctx, instance, KEY, "value", None)
    ctx.index.shared = True  # type: ignore[misc]
    reads = md.MetadataReads(ctx.index)
    statements = _Statements(ctx)
    reads.get(instance, KEY)
    reads.get(instance, KEY)
    assert statements.count() == 2
