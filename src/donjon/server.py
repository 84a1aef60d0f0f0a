"""Start the faces (HTTP now; DICOM later) over one server context, and stop them cleanly."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn

from .api.app import DonjonApp
from .config import Configuration
from .core.context import ServerContext

log = logging.getLogger(__name__)


def build_uvicorn(config: Configuration, app: DonjonApp, host: str = "0.0.0.0") -> uvicorn.Server:
    uv_config = uvicorn.Config(
        app, host=host, port=config["HttpPort"], loop="auto", http="auto", lifespan="on",
        access_log=False, log_level="warning", server_header=False, date_header=True,
        timeout_keep_alive=max(config["KeepAliveTimeout"], 1) if config["KeepAlive"] else 0,
        h11_max_incomplete_event_size=64 * 1024,
    )
    return uvicorn.Server(uv_config)


def run_server(config: Configuration, no_jobs: bool = False,
               reload_config: Callable[[], Configuration] | None = None) -> int:
    """Serve until SIGINT/SIGTERM or `POST /tools/shutdown`; `POST /tools/reset` rebuilds the context."""
    ctx = ServerContext(config)
    app = DonjonApp(ctx)
    try:
        if not config["HttpServerEnabled"]:
            log.warning("HttpServerEnabled is false: the REST API is not served")
            return 0
        server = build_uvicorn(config, app)

        def shutdown() -> None:
            server.should_exit = True

        def reset() -> ServerContext:
            new_config = reload_config() if reload_config is not None else app.ctx.config
            app.ctx.close()
            return ServerContext(new_config)

        app.shutdown_hook = shutdown
        app.reset_hook = reset
        log.warning("Donjon has started: HTTP on port %d", config["HttpPort"])
        server.run()
        return 0
    finally:
        app.ctx.close()
