"""Orthanc's Python plugins, run in-process: a script imports the module `orthanc` and registers
callbacks (REST routes, changes, ingest filters, C-FIND/C-MOVE, storage area) that Donjon calls.

Nothing here is imported unless `PythonScript` (or `Python.Path`) is configured; see `host.py` for
the hooks of the core and docs/plugins.md for the supported calls.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .host import PluginHost

log = logging.getLogger("donjon.plugins")


def load_python_plugin(config: Any) -> PluginHost | None:
    """The host of the configured script (imported now), or None when there is none."""
    from .settings import python_settings

    settings = python_settings(config)
    if settings is None:
        return None
    from .host import PluginHost

    log.warning("Python plugin is initializing")
    host = PluginHost(settings, config)
    host.load()
    return host
