"""The lock that says "a Donjon process owns this SQLite index" (`index.lock` beside the index).

SQLite lets several processes open one database, so nothing else stops a maintenance command
(`donjon storage ...`) from rewriting files under a running server, whose in-memory caches would then
be wrong. The server holds an exclusive `flock` for its lifetime; the commands take the same lock and
refuse to run while it is held. The kernel drops the lock when the process dies, even by SIGKILL.
"""

from __future__ import annotations

import fcntl
import os

from ..errors import ErrorCode, OrthancError

LOCK_NAME = "index.lock"


class IndexLock:
    def __init__(self, index_dir: str):
        os.makedirs(index_dir, exist_ok=True)
        self.path = os.path.join(index_dir, LOCK_NAME)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise OrthancError(ErrorCode.DATABASE_UNAVAILABLE,
                               f"The index in {index_dir} is in use by another Donjon process (it holds "
                               f"{self.path}): stop that process first") from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
