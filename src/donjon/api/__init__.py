"""The REST face over the core."""

from __future__ import annotations

import importlib

from .http import Router

# Each module registers its own routes; order matters only where two patterns could overlap.
_ROUTE_MODULES = (
    "system", "resources", "instances", "tools", "protection", "metadata", "attachments", "labels",
    "jobs", "modification", "archives", "instance_content", "modalities", "peers", "queries",
    "rendering", "raw_frames", "numpy_export", "ui", "dicomweb", "plugins",
)


def build_router() -> Router:
    router = Router()
    for name in _ROUTE_MODULES:
        importlib.import_module(f"{__package__}.{name}").register(router)
    return router
