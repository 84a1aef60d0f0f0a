"""Work that a storing thread hands to a helper at the moment it starts waiting for a file's fsync.

A store parses the DICOM file and looks it up in the index while its file is made durable
(core/store.py). The hand-over must happen when this thread is about to release Python's lock for
the fsync: handed over earlier, the helper would take the lock first and the fsync would only start
once the parse is over, so nothing would overlap. The storage calls `before_wait()` there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_local = threading.local()


def set_before_wait(fn: Callable[[], None] | None) -> None:
    """`fn` runs once, in this thread, when the next file write of this thread is about to wait for
    the disk. `fn` must not raise."""
    _local.fn = fn


def before_wait() -> None:
    fn: Callable[[], None] | None = getattr(_local, "fn", None)
    if fn is not None:
        _local.fn = None
        fn()
