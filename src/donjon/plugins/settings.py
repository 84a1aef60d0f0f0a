"""Where the Python plugin script is, and the limits its callbacks run under.

Orthanc's plugin reads `PythonScript` (or `Python.Path`) and `PythonVerbose` (or `Python.Verbose`);
Donjon adds `Python.CallbackTimeout`: the seconds a synchronous callback of the ingest path (received
instance, C-STORE filter, stored instance) or the HTTP request filter may take before Donjon goes on
without its answer. Validated at start-up by `config_options`, so that a typo fails early.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from ..registry import ConfigurationError

log = logging.getLogger(__name__)

DEFAULT_CALLBACK_TIMEOUT = 10.0
_KNOWN = ("Path", "Verbose", "DisplayMemoryUsage", "AllowThreads", "CallbackTimeout")


@dataclass(frozen=True)
class PythonSettings:
    script: str  # absolute path of the script
    verbose: bool = False
    callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT


def validate(option: Any, value: Any) -> Any:
    """The `Python` section: an object whose members have the right types (unknown ones warn)."""
    if not isinstance(value, dict):
        raise ConfigurationError('Bad value for the configuration option "Python": expected a JSON object')
    for key, member in value.items():
        if key not in _KNOWN:
            log.warning('Unknown member of the "Python" configuration section ignored: %s', key)
        elif key == "Path" and not isinstance(member, str):
            raise ConfigurationError('Bad value for the configuration option "Python.Path": expected a string')
        elif key in ("Verbose", "DisplayMemoryUsage", "AllowThreads") and not isinstance(member, bool):
            raise ConfigurationError(f'Bad value for the configuration option "Python.{key}": expected a Boolean')
        elif key == "CallbackTimeout" and (isinstance(member, bool) or not isinstance(member, int | float)
                                           or member <= 0):
            raise ConfigurationError('Bad value for the configuration option "Python.CallbackTimeout": '
                                     "expected a positive number of seconds")
    return value


def python_settings(config: Any) -> PythonSettings | None:
    """None when no script is configured (then nothing of the plugin host is even imported).

    As Orthanc does, `PythonScript` wins over `Python.Path`, a relative path is relative to the working
    directory, and the script must be a `.py` file.
    """
    section = config.get("Python") or {}
    script = config.get("PythonScript") or section.get("Path")
    if not script:
        return None
    path = os.path.abspath(script)
    if not path.lower().endswith(".py"):
        raise ConfigurationError(f"Python script must have the \".py\" file extension: {script}")
    if not os.path.isfile(path):
        raise ConfigurationError(f"Inexistent Python script: {script}")
    verbose = bool(config.get("PythonVerbose") or section.get("Verbose", False))
    timeout = float(section.get("CallbackTimeout", DEFAULT_CALLBACK_TIMEOUT))
    return PythonSettings(path, verbose, timeout)
