"""The REST face over the core."""

from __future__ import annotations

from .http import Router


def build_router() -> Router:
    from . import instances, protection, resources, system, tools

    router = Router()
    for module in (system, resources, instances, tools, protection):
        module.register(router)
    __import__(f"{__package__}.metadata", fromlist=["register"]).register(router)
    __import__(f"{__package__}.attachments", fromlist=["register"]).register(router)
    __import__(f"{__package__}.labels", fromlist=["register"]).register(router)
    __import__(f"{__package__}.jobs", fromlist=["register"]).register(router)
    __import__(f"{__package__}.modification", fromlist=["register"]).register(router)
    __import__(f"{__package__}.archives", fromlist=["register"]).register(router)
    __import__(f"{__package__}.instance_content", fromlist=["register"]).register(router)
    return router
