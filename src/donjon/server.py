"""Start the faces (HTTP; DICOM) over one server context, and stop them cleanly."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from .api.app import DonjonApp
from .api.http11 import HttpServer
from .api.security import check_remote_access
from .api.tls import server_context
from .config import Configuration
from .core.context import ServerContext
from .errors import ErrorCode, OrthancError, describe
from .network import jobs as _dicom_jobs  # noqa: F401 - registers the loaders of saved DICOM jobs
from .network.dicom_server import DicomServer
from .plugins import load_python_plugin

log = logging.getLogger(__name__)


def run_server(config: Configuration, no_jobs: bool = False,
               reload_config: Callable[[], Configuration] | None = None) -> int:
    """Serve until SIGINT/SIGTERM or `POST /tools/shutdown`; `POST /tools/reset` rebuilds the context."""
    check_remote_access(config)  # secure by default: no network access without users
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(_serve(config, no_jobs, reload_config))
    return uvloop.run(_serve(config, no_jobs, reload_config))


async def _serve(config: Configuration, no_jobs: bool,
                 reload_config: Callable[[], Configuration] | None) -> int:
    loop = asyncio.get_running_loop()
    plugins = load_python_plugin(config)  # imported before the context: it may bring its storage area
    ctx = ServerContext(config, no_jobs=no_jobs, storage=plugins.storage if plugins else None)
    app = DonjonApp(ctx)
    if plugins is not None:
        plugins.attach(ctx, app)
    stop = asyncio.Event()
    http: HttpServer | None = None
    dicom: DicomServer | None = None
    try:
        if config["HttpServerEnabled"]:
            http = HttpServer(app, "0.0.0.0", config["HttpPort"], keep_alive=config["KeepAlive"],
                              keep_alive_timeout=max(float(config["KeepAliveTimeout"]), 1.0),
                              request_timeout=float(config["HttpRequestTimeout"] or 30),
                              ssl_context=server_context(config))
            try:
                await http.start()
            except OSError as e:
                log.error("%s (port %d): %s", describe(ErrorCode.HTTP_PORT_IN_USE), config["HttpPort"], e)
                raise OrthancError(ErrorCode.HTTP_PORT_IN_USE) from None
        else:
            log.warning("HttpServerEnabled is false: the REST API is not served")
        dicom = _start_dicom(ctx)

        def reset() -> ServerContext:
            nonlocal dicom
            new_config = reload_config() if reload_config is not None else app.ctx.config
            if dicom is not None:
                dicom.stop()
                dicom = None
            app.ctx.close()
            new_ctx = ServerContext(new_config, no_jobs=no_jobs, storage=plugins.storage if plugins else None)
            if plugins is not None:
                plugins.attach(new_ctx, app)
            dicom = _start_dicom(new_ctx)
            return new_ctx

        app.shutdown_hook = lambda: loop.call_soon_threadsafe(stop.set)
        app.reset_hook = reset
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.warning("Donjon has started: HTTP on port %d", config["HttpPort"])
        if plugins is not None:
            plugins.started()
        await stop.wait()
        log.warning("Donjon is stopping")
        if plugins is not None:
            await loop.run_in_executor(None, plugins.stopping)
        return 0
    finally:
        if plugins is not None:
            plugins.close()
        if dicom is not None:
            dicom.stop()
        if http is not None:
            await http.stop()
        app.ctx.close()


def _start_dicom(ctx: ServerContext) -> DicomServer | None:
    """The DICOM server of a context (`DicomServerEnabled`), listening when this returns."""
    if not ctx.config["DicomServerEnabled"]:
        log.warning("DicomServerEnabled is false: the DICOM server is not started")
        return None
    server = DicomServer(lambda: ctx)
    server.start()
    return server
