"""What DICOMweb keeps per server context: parsed settings, remote servers, the metadata cache.

Created on first use and dropped with the context (`POST /tools/reset` builds a new one).
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

from .metadata import MetadataCache
from .servers import ServerRegistry
from .settings import DicomWebSettings, parse

if TYPE_CHECKING:
    from ..core.context import ServerContext


class DicomWebState:
    def __init__(self, ctx: ServerContext):
        self.settings: DicomWebSettings = parse(ctx.config.get("DicomWeb"))
        self.cache = MetadataCache(self.settings)
        self._servers: ServerRegistry | None = None
        self._lock = threading.Lock()

    def servers(self, ctx: ServerContext) -> ServerRegistry:
        with self._lock:
            if self._servers is None:
                self._servers = ServerRegistry(ctx, self.settings.servers, self.settings.servers_in_database)
            return self._servers


_STATES: weakref.WeakKeyDictionary[ServerContext, DicomWebState] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def state_of(ctx: ServerContext) -> DicomWebState:
    with _LOCK:
        state = _STATES.get(ctx)
        if state is None:
            state = _STATES[ctx] = DicomWebState(ctx)
            state.cache.watch(ctx)
        return state
