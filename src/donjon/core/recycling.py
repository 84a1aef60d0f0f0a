"""Keeping the storage under its limits: recycle the oldest unprotected patient, or refuse."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ErrorCode, OrthancError
from ..index.protocol import WriterBusy
from .deletion import Deletion, delete_cascade

if TYPE_CHECKING:
    from ..index.protocol import WriteTransaction as SQLiteWriter

MB = 1024 * 1024
# the largest patient (resources of every level) an event loop's store deletes itself: ~50 µs of
# SQLite per instance here, so a few milliseconds of the loop at most (~2 ms for 40 instances)
LIGHT_RESOURCES = 128


def _full(details: str | None = None) -> OrthancError:
    return OrthancError(ErrorCode.FULL_STORAGE, details, http_status=507)


@dataclass
class Recycler:
    max_size_mb: int = 0
    max_patients: int = 0
    reject: bool = False

    @property
    def max_size(self) -> int:
        return self.max_size_mb * MB

    def active(self) -> bool:
        return self.max_size_mb > 0 or self.max_patients > 0

    def _need(self, tx: SQLiteWriter) -> tuple[bool, bool]:
        counters = tx.counters()
        over_size = self.max_size > 0 and counters["disk"] > self.max_size
        over_count = self.max_patients > 0 and counters["level1"] > self.max_patients
        return over_size, over_count

    def make_room(self, tx: SQLiteWriter, added_size: int, patient_id: int | None, now: str,
                  reject_applies: bool = True, light_only: bool = False) -> Deletion | None:
        """Called inside a write transaction after the new rows exist; raises to roll it back.
        `light_only` (an event loop's write): a pass that must delete more than `LIGHT_RESOURCES`
        resources (a large patient, or many small ones to fit a large instance) raises `WriterBusy`,
        rolling the transaction back, for a worker to run it again. The files of what it deletes are
        removed after the commit, off the loop (`ServerContext.after_deletion`)."""
        if not self.active():
            return None
        tx.lock_recycling()  # several processes: one pass at a time (re-entrant; stores take it first)
        if self.max_size > 0 and added_size > self.max_size:
            raise _full(f"Cannot store an instance of size {added_size} bytes in a storage area limited to "
                        f"{self.max_size}")
        if self.reject and reject_applies:
            over_size, over_count = self._need(tx)
            if over_size:
                raise _full("Maximum storage size reached")
            if over_count:
                raise _full("Maximum patient count reached")
            return None
        deletion: Deletion | None = None
        light_budget = LIGHT_RESOURCES  # (for all the patients this pass deletes)
        while any(self._need(tx)):
            victim = tx.oldest_unprotected_patient(patient_id)
            if victim is None:
                raise _full("Cannot recycle more patients")
            subtree = None  # (read before `lock_tree`: only an event loop's write, one SQLite writer)
            if light_only:
                subtree = tx.subtree_resources(victim)
                light_budget -= len(subtree)
                if light_budget < 0:
                    raise WriterBusy()
            d = delete_cascade(tx, victim, now, subtree)
            deletion = d if deletion is None else deletion.merge(d)
        return deletion
