"""Rules for several Donjon processes on one index (PostgreSQL with `Lock: false`).

Each process watches the resources *it* stored for stability, so two processes that both received
instances of a series would both announce it stable. The change log is the arbiter: a process records
a Stable* change only if nobody stored into the resource since `StableAge` seconds (its LastUpdate
metadata, written by every store, says so) and no Stable* change was logged after that last update.
The resource row is locked first, so two processes deciding at the same moment are serialised.
"""

from __future__ import annotations

import time

from ..index.protocol import WriteTransaction
from ..registry import Metadata


def _stamp(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(epoch))


def stable_change_is_due(tx: WriteTransaction, internal_id: int, change_type: int, stable_age: int) -> bool:
    """True if this process should log `change_type` (a Stable* change) for the resource now."""
    if not tx.lock_resource(internal_id):
        return False
    last_update = tx.metadata_one(internal_id, Metadata.LAST_UPDATE)
    if last_update is None:
        return True
    if last_update[0] > _stamp(time.time() - stable_age):
        return False  # another process stored into it meanwhile: that process will announce it
    recorded = tx.last_change_date(internal_id, change_type)
    return recorded is None or recorded < last_update[0]
