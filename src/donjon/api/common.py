"""Argument parsing shared by route families."""

from __future__ import annotations

from ..core.views import TagFormat
from ..errors import ErrorCode, OrthancError
from .http import Request

MAX_UINT32 = 0xFFFFFFFF


def tag_format(request: Request) -> TagFormat:
    if "short" in request.query and request.flag("short"):
        return TagFormat.SHORT
    if "full" in request.query and request.flag("full"):
        return TagFormat.FULL
    return TagFormat.HUMAN


def parse_uint(text: str, name: str, maximum: int = MAX_UINT32) -> int:
    t = text.strip()
    if not t.isdigit() or not t.isascii() or len(t) > 20:
        raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f'The argument "{name}" must be a non-negative integer, '
                                                         f"found: {text[:40]}")
    value = int(t)
    if value > maximum:
        raise OrthancError(ErrorCode.BAD_PARAMETER_TYPE, f'The argument "{name}" is too large: {text}')
    return value


def since_limit(request: Request) -> tuple[int, int] | None:
    """(since, limit) of a listing; both or neither must be given; None = everything."""
    q = request.query
    has_since, has_limit = "since" in q, "limit" in q
    if not has_since and not has_limit:
        return None
    uri = request.path if request.path.endswith("/") else request.path + "/"
    if not has_limit:
        raise OrthancError(ErrorCode.BAD_REQUEST, f'Missing "limit" argument for GET request against: {uri}')
    if not has_since:
        raise OrthancError(ErrorCode.BAD_REQUEST, f'Missing "since" argument for GET request against: {uri}')
    return parse_uint(q["since"], "since"), parse_uint(q["limit"], "limit")
