"""The REST face over the core."""

from __future__ import annotations

from .http import Router


def build_router() -> Router:
    from . import instances, protection, resources, system, tools

    router = Router()
    for module in (system, resources, instances, tools, protection):
        module.register(router)
    return router
