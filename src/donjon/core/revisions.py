"""Revisions of metadata and attachments: ETags, If-Match / If-None-Match, `CheckRevisions`.

Orthanc's rules (shared by metadata and attachments): an ETag is `"<revision>-<md5>"`; a writer
that sends `If-Match` must quote the current revision and MD5, else 409; with `CheckRevisions` the
header is mandatory to replace or delete. Donjon stores real revisions (the database-plugin
behaviour), not the always-0 of Orthanc's SQLite index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ErrorCode, OrthancError

_SPACES = " \t\n\v\f\r"
_INT64 = (-2**63, 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Revision:
    """What a client quoted in If-Match / If-None-Match (or what an ETag says)."""

    number: int
    md5: str

    def etag(self) -> str:
        return f'"{self.number}-{self.md5}"'


def etag(revision: int, md5: str) -> bytes:
    return f'"{revision}-{md5}"'.encode()


def md5_text(value: str) -> str:
    return hashlib.md5(value.encode("utf-8")).hexdigest()


def _lexical_int64(text: str) -> int | None:
    """boost::lexical_cast<int64_t>: optional sign, ASCII digits, nothing else, no overflow."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all("0" <= c <= "9" for c in body):
        return None
    value = int(text)
    return value if _INT64[0] <= value <= _INT64[1] else None


def parse_header(headers: Mapping[str, str], header: str) -> Revision | None:
    """The revision quoted in `header` (None if absent), parsed as Orthanc's GetRevisionHeader.

    `header` is spelled as Orthanc spells it in its error message ("if-match", "If-None-Match").
    """
    raw = headers.get(header.lower())
    if raw is None:
        return None
    value = raw.strip(_SPACES)
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    dash = value.find("-")
    if dash >= 0:
        number = _lexical_int64(value[:dash])
        if number is not None:
            return Revision(number, value[dash + 1:])
    raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE,
                       f'The "{header}" HTTP header should contain the ETag (revision followed by MD5 hash), '
                       f"but found: {value}")


def conflict(details: str | None = None) -> OrthancError:
    return OrthancError(ErrorCode.REVISION, details)


MISSING_IF_MATCH = 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'


def check_replace(current_revision: int, current_md5: str, if_match: Revision | None,
                  check_revisions: bool) -> None:
    """Replacing an existing value: the quoted revision must be the current one (409 otherwise)."""
    if if_match is None:
        if check_revisions:
            raise conflict()
        return
    if if_match.number != current_revision or if_match.md5 != current_md5:
        raise conflict()


def check_delete_header(if_match: Revision | None, check_revisions: bool) -> None:
    """Before a deletion even looks for the value: `CheckRevisions` makes If-Match mandatory."""
    if if_match is None and check_revisions:
        raise conflict(MISSING_IF_MATCH)


def not_modified(if_none_match: Revision | None, revision: int, md5: str) -> bool:
    return if_none_match is not None and if_none_match.number == revision and if_none_match.md5 == md5
