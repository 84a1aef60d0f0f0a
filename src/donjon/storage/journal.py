"""A journal of in-flight file writes, so that a crash leaves no orphan file behind for long.

Storage before index: a file is written (and fsynced) before the transaction that references it. A
`kill -9` between the two leaves a file that no index row names; so does a power cut that takes away
an index commit not yet fsynced (core/index_sync.py defers those fsyncs). Scanning a big storage for
such files at start-up would take minutes, so every new file is first announced by a line
`+uuid content-type size` appended to a small journal, and `-uuid` once its fate is sealed (indexed
durably, or removed). At start-up, the uuids announced but never settled are the only candidates: the
ones the index does not reference are either adopted (a complete DICOM file is stored again) or removed.

The other way round, `xuuid` marks a file whose index rows a deletion has just removed, before the
file is: at once when that commit was fsynced, after the next durable commit otherwise (a patient
recycled by a store, core/index_sync.py); `-uuid` once it is gone. At start-up such a file is removed
if the index no longer references it, kept if a power cut brought its rows back, and never adopted.

Cost: one small `write()` per file and per settlement, no fsync of its own: the append is ordered
before the data file's fsync on journaling file systems (data=ordered ext4, xfs), and after a process
crash (the case that matters most) the page cache keeps it anyway. The journal is compacted when it
grows, keeping only what is still in flight.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ErrorCode, OrthancError

log = logging.getLogger(__name__)

_COMPACT_BYTES = 1 << 20
_FORGET_AFTER = 3600.0  # an entry never settled by its writer (a code path without `settle`)


@dataclass(frozen=True)
class Leftover:
    """A file announced and never settled: `content_type` and `size` are None in old journals;
    `doomed`: a file to remove once its deletion is durable (`InflightJournal.doom`)."""
    uuid: str
    content_type: int | None = None
    size: int | None = None
    doomed: bool = False

    def line(self) -> str:
        if self.doomed:
            return f"x{self.uuid}\n"
        if self.content_type is None or self.size is None:
            return f"+{self.uuid}\n"
        return f"+{self.uuid} {self.content_type} {self.size}\n"


def _parse_begin(text: str) -> Leftover:
    uuid, *rest = text.split(" ")
    try:
        return Leftover(uuid, int(rest[0]), int(rest[1])) if len(rest) == 2 else Leftover(uuid)
    except ValueError:
        return Leftover(uuid)


class InflightJournal:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[float, Leftover]] = {}
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size

    def leftovers(self) -> list[Leftover]:
        """Files announced and never settled in the journal on disk (those of a crashed process)."""
        try:
            with open(self.path, "rb") as f:
                text = f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return []
        open_: dict[str, Leftover] = {}
        for line in text.splitlines():
            if len(line) < 2:
                continue
            if line[0] == "+":
                entry = _parse_begin(line[1:])
                open_[entry.uuid] = entry
            elif line[0] == "x":
                open_[line[1:]] = Leftover(line[1:], doomed=True)
            elif line[0] == "-":
                open_.pop(line[1:], None)
        return list(open_.values())

    def begin(self, uuid: str, content_type: int | None = None, size: int | None = None) -> None:
        """Announce a file before it is written; if that fails, the file must not be written."""
        entry = Leftover(uuid, content_type, size)
        with self._lock:
            try:
                self._append(entry.line())
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise OrthancError(ErrorCode.FULL_STORAGE, "The storage area is full (in-flight journal)",
                                       http_status=507) from None
                raise OrthancError(ErrorCode.CANNOT_WRITE_FILE, f"In-flight journal: {e.strerror}") from None
            self._pending[uuid] = (time.monotonic(), entry)

    def doom(self, uuids: Iterable[str]) -> None:
        """Files whose index rows a committed deletion removed, about to be removed themselves (then
        settled with `removed`). A failure here only leaves such a file behind after a crash."""
        entries = [Leftover(u, doomed=True) for u in uuids]
        with self._lock:
            try:
                self._append("".join(e.line() for e in entries))
            except OSError as e:
                log.warning("Cannot write the in-flight journal %s: %s", self.path, e)
                return
            now = time.monotonic()
            for entry in entries:
                self._pending[entry.uuid] = (now, entry)

    def keep(self, entries: Iterable[Leftover]) -> None:
        """Carry leftovers of the previous run over (files to adopt): rewritten by the next compaction."""
        with self._lock:
            for entry in entries:
                self._pending[entry.uuid] = (time.monotonic(), entry)

    def settle(self, uuids: Iterable[str], removed: bool = False) -> None:
        """These files are durably indexed, or (`removed`) gone. A file doomed meanwhile (deleted
        before its store's index commit was made durable) stays in the journal until it is removed.
        A failure here only costs a look at these uuids at the next start-up."""
        with self._lock:
            lines = []
            for u in uuids:
                pending = self._pending.get(u)
                if pending is not None and (removed or not pending[1].doomed):
                    del self._pending[u]
                    lines.append(f"-{u}\n")
            try:
                if lines:
                    self._append("".join(lines))
                if self._size > _COMPACT_BYTES:
                    self._compact()
            except OSError as e:
                log.warning("Cannot write the in-flight journal %s: %s", self.path, e)

    def _append(self, text: str) -> None:
        data = text.encode("ascii")
        os.write(self._fd, data)
        self._size += len(data)

    def _compact(self) -> None:
        """Rewrite the journal with what is still in flight (atomically: a crash keeps either file)."""
        now = time.monotonic()
        for uuid in [u for u, (t, _) in self._pending.items() if now - t > _FORGET_AFTER]:
            del self._pending[uuid]
        tmp = self.path + ".tmp"
        data = "".join(entry.line() for _, entry in self._pending.values()).encode("ascii")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = len(data)

    def reset(self) -> None:
        """Start afresh (after the start-up sweep), keeping only what `keep` carried over."""
        with self._lock:
            try:
                self._compact()
            except OSError as e:  # a full disk must not prevent the start-up
                log.warning("Cannot rewrite the in-flight journal %s: %s", self.path, e)

    def close(self) -> None:
        with self._lock:
            try:
                os.close(self._fd)
            except OSError:
                pass


class JournaledStorage:
    """A storage area whose new files are announced in the journal (`create`) and settled by `remove`
    or by `settle` (called once the index transaction that references them has committed)."""

    def __init__(self, inner: Any, journal: InflightJournal):
        self.inner = inner
        self.journal = journal
        if hasattr(inner, "start_create"):  # `create` for an event loop, where the inner storage has it
            self.start_create = self._start_create

    def create(self, uuid: str, data: bytes, *args: Any, **kwargs: Any) -> None:
        self.journal.begin(uuid, args[0] if args else kwargs.get("content_type"), len(data))
        try:
            self.inner.create(uuid, data, *args, **kwargs)
        except BaseException:
            self._failed(uuid, args[0] if args else kwargs.get("content_type"))
            raise

    def _start_create(self, uuid: str, data: bytes, content_type: int | None = None) -> Awaitable[None]:
        self.journal.begin(uuid, content_type, len(data))
        try:
            creating = self.inner.start_create(uuid, data, content_type)
        except BaseException:
            self._failed(uuid, content_type)
            raise
        return self._finish_create(creating, uuid, content_type)

    async def _finish_create(self, creating: Awaitable[None], uuid: str, content_type: int | None) -> None:
        try:
            await creating
        except BaseException:
            self._failed(uuid, content_type)
            raise

    def _failed(self, uuid: str, content_type: int | None) -> None:
        try:  # whatever the failed write left, and its journal line
            self.remove(uuid, content_type)
        except Exception as e:  # the line stays: the next start-up looks at this file again
            log.warning("Cannot remove the file %s after a failed write: %s", uuid, e)

    def remove(self, uuid: str, *args: Any, **kwargs: Any) -> None:
        self.inner.remove(uuid, *args, **kwargs)
        self.journal.settle([uuid], removed=True)

    def settle(self, uuids: Iterable[str]) -> None:
        self.journal.settle(uuids)

    def doom(self, uuids: Iterable[str]) -> None:
        self.journal.doom(uuids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def settle(storage: Any, uuids: Iterable[str]) -> None:
    """Tell the journal (if `storage` has one, under any cache) that these files are now indexed."""
    _journal_call(storage, "settle", uuids)


def doom(storage: Any, uuids: Iterable[str]) -> None:
    """Tell the journal (if `storage` has one) that these files go once their deletion is durable."""
    _journal_call(storage, "doom", uuids)


def _journal_call(storage: Any, name: str, uuids: Iterable[str]) -> None:
    target = storage
    for _ in range(4):
        fn = getattr(type(target), name, None)
        if fn is not None:
            fn(target, uuids)
            return
        target = getattr(target, "inner", None)
        if target is None:
            return


def sweep(journal: InflightJournal, referenced: Callable[[list[str]], set[str]],
          remove: Callable[[str], None], adoptable: Callable[[Leftover], bool] = lambda _: False
          ) -> tuple[list[str], list[Leftover]]:
    """Sort out the files of stores interrupted by a crash: the uuids removed, and the files that
    `adoptable` keeps for the caller to store again (they stay in the journal until it settles them)."""
    leftovers = journal.leftovers()
    removed: list[str] = []
    adopted: list[Leftover] = []
    if leftovers:
        known = referenced([e.uuid for e in leftovers])
        for entry in leftovers:
            uuid = entry.uuid
            if uuid in known:  # (a doomed file whose rows a power cut brought back stays too)
                continue
            if not entry.doomed and adoptable(entry):
                adopted.append(entry)
                continue
            try:
                remove(uuid)
                removed.append(uuid)
            except Exception:
                log.exception("cannot remove the orphan file %s", uuid)
        if removed:
            log.warning("Removed %d orphan file(s) of stores interrupted by a crash", len(removed))
    journal.keep(adopted)
    journal.reset()
    return removed, adopted
