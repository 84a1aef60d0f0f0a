"""Bounds on the work any single input can cause, from the configuration (docs/security.md).

The DICOM scanner and the pixel decoders are called from many places with only bytes in hand, so the
limits that concern them live here as process-wide settings, applied when a server context is built
(one configuration per process; `/tools/reset` applies the new one). HTTP limits are read by the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ErrorCode, OrthancError

MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    request_body: int = 4096 * MB
    json_depth: int = 256
    decompressed: int = 512 * MB
    zip_total: int = 4096 * MB
    sequence_depth: int = 64
    elements: int = 1_000_000
    decoded_frame: int = 256 * MB

    @classmethod
    def from_config(cls, config: Any) -> Limits:
        return cls(request_body=config["MaximumRequestBodySize"] * MB, json_depth=config["MaximumJsonDepth"],
                   decompressed=config["MaximumDecompressedSize"] * MB,
                   zip_total=config["MaximumZipUncompressedSize"] * MB,
                   sequence_depth=config["MaximumDicomSequenceDepth"], elements=config["MaximumDicomElements"],
                   decoded_frame=config["MaximumDecodedFrameSize"] * MB)


_current = Limits()


def current() -> Limits:
    return _current


def configure(config: Any) -> Limits:
    """Make the limits of `config` those of this process."""
    global _current
    _current = Limits.from_config(config)
    return _current


def too_large(what: str) -> OrthancError:
    """The error of an input over a limit: 413 with Orthanc's body."""
    return OrthancError(ErrorCode.BAD_REQUEST, what, http_status=413)


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests deeper than `limit` (iterative: no recursion to exhaust)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
    return False
