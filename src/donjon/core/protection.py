"""Protecting a patient from recycling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ErrorCode, OrthancError
from ..registry import Level

if TYPE_CHECKING:
    from .context import ServerContext


def _patient(tx, public_id: str) -> int:  # type: ignore[no-untyped-def]
    found = tx.lookup(public_id)
    if found is None or found[1] != Level.PATIENT:
        # Orthanc answers "Parameter out of range" here, not "Unknown resource"
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    return int(found[0])


def is_protected(ctx: ServerContext, public_id: str) -> bool:
    return ctx.index.read(lambda tx: tx.is_protected(_patient(tx, public_id)))


def set_protected(ctx: ServerContext, public_id: str, protected: bool) -> None:
    """Protected patients leave the recycling order; unprotected ones join it as the most recent."""
    ctx.index.write(lambda tx: tx.set_protected(_patient(tx, public_id), protected), durable=False)


def parse_protection(body: bytes) -> bool:
    text = body.decode("utf-8", "replace").strip().lower()
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Boolean value expected")
