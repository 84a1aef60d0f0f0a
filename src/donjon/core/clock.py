"""Timestamps in Orthanc's format: YYYYMMDDTHHMMSS, UTC, whole seconds."""

from __future__ import annotations

import time


def now_utc() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime())


def now_local() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.localtime())
