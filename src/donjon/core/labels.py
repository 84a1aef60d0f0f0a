"""Labels (Orthanc 1.12): a set of short strings per resource, indexed for `/tools/find`.

No value, no revision and no change-log entry; deleted with the resource by the index cascade.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..errors import ErrorCode, OrthancError
from ..registry import Level

if TYPE_CHECKING:
    from ..index.sqlite import SQLiteReader, SQLiteWriter
    from .context import ServerContext

_VALID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_label(label: str) -> None:
    """Orthanc's ServerToolbox::CheckValidLabel, with its message."""
    if not _VALID.fullmatch(label):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE,
                           "A label must be a non-empty, alphanumeric string, possibly with '_' or '-' "
                           f"characters, with maximum 64 characters, but got: {label}")


def _resource(tx: SQLiteReader, level: Level, public_id: str) -> int:
    found = tx.lookup(public_id)
    if found is None or found[1] != level:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
    return found[0]


def list_labels(ctx: ServerContext, level: Level, public_id: str) -> list[str]:
    return ctx.index.read(lambda tx: tx.labels(_resource(tx, level, public_id)))


def has_label(ctx: ServerContext, level: Level, public_id: str, label: str) -> bool:
    """Whether the resource carries `label` (an invalid label is simply absent, as in Orthanc)."""
    return ctx.index.read(lambda tx: tx.has_label(_resource(tx, level, public_id), label))


def add_label(ctx: ServerContext, level: Level, public_id: str, label: str) -> None:
    """Idempotent."""
    check_label(label)

    def run(tx: SQLiteWriter) -> None:
        tx.add_label(_resource(tx, level, public_id), label)
    ctx.index.write(run, durable=False)


def remove_label(ctx: ServerContext, level: Level, public_id: str, label: str) -> None:
    """Succeeds even if the label is absent."""
    check_label(label)

    def run(tx: SQLiteWriter) -> None:
        tx.remove_label(_resource(tx, level, public_id), label)
    ctx.index.write(run, durable=False)


def all_labels(ctx: ServerContext) -> list[str]:
    return ctx.index.reader().all_labels()
