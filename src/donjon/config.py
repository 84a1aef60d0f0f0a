"""Orthanc-style configuration: JSON with comments, folders of JSON files, `${VAR}` and `ORTHANC__*`.

The result is a `Configuration`: the merged raw values plus typed access with Orthanc's defaults
(declared in `config_options`). A wrong type or value stops the start-up with a message naming the
option; an unknown option only gives a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from .config_options import OPTIONS, Option
from .registry import ConfigurationError

log = logging.getLogger(__name__)

ENV_PREFIX = "ORTHANC__"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def strip_comments(text: str) -> str:
    """Remove `//` and `/* */` comments that are outside JSON strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
            continue
        if c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif c == "/" and i + 1 < n and text[i + 1] == "/":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            if end < 0:
                raise ConfigurationError("unterminated /* comment")
            # keep line numbers stable for error messages
            out.append("\n" * text.count("\n", i, end))
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_json_with_comments(text: str, source: str) -> dict[str, Any]:
    try:
        value = json.loads(strip_comments(text))
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{source}: the configuration must be a JSON object")
    return value


def expand_variables(value: Any, env: Mapping[str, str]) -> Any:
    """Replace `${VAR}` and `${VAR:-default}` in every string value."""
    if isinstance(value, str):
        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigurationError(f"environment variable {name} is not set (used as ${{{name}}})")
        return _VAR.sub(repl, value)
    if isinstance(value, list):
        return [expand_variables(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_variables(v, env) for k, v in value.items()}
    return value


def read_sources(paths: list[str]) -> dict[str, Any]:
    """Merge JSON files (a folder contributes each of its `.json` files, in name order)."""
    merged: dict[str, Any] = {}
    for path in paths:
        if os.path.isdir(path):
            files = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(".json"))
        elif os.path.isfile(path):
            files = [path]
        else:
            raise ConfigurationError(f"configuration file or folder not found: {path}")
        for f in files:
            with open(f, encoding="utf-8-sig") as fh:
                content = parse_json_with_comments(fh.read(), f)
            for key, value in content.items():
                if key in merged:
                    log.warning("Option %s is defined in several configuration files; %s wins", key, f)
                merged[key] = value
    return merged


def _normal(name: str) -> str:
    return name.replace("_", "").upper()


_KNOWN_BY_NORMAL = {_normal(name): name for name in OPTIONS}


def _env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_environment(config: dict[str, Any], env: Mapping[str, str]) -> None:
    """`ORTHANC__SECTION__OPTION_NAME=value` sets config["Section"]["OptionName"]."""
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX) or len(var) <= len(ENV_PREFIX):
            continue
        parts = [p for p in var[len(ENV_PREFIX):].split("__") if p]
        if not parts:
            continue
        target: dict[str, Any] = config
        for depth, part in enumerate(parts):
            key = _match_key(target, part, top=depth == 0)
            if depth == len(parts) - 1:
                target[key] = _env_value(text)
            else:
                child = target.get(key)
                if not isinstance(child, dict):
                    child = {}
                    target[key] = child
                target = child


def _match_key(section: Mapping[str, Any], upper_snake: str, top: bool) -> str:
    wanted = _normal(upper_snake)
    for existing in section:
        if _normal(existing) == wanted:
            return existing
    if top and wanted in _KNOWN_BY_NORMAL:
        return _KNOWN_BY_NORMAL[wanted]
    return "".join(p.capitalize() for p in upper_snake.lower().split("_"))


class Configuration:
    """Typed access to the merged configuration, with Orthanc's defaults."""

    def __init__(self, raw: dict[str, Any] | None = None, source_dir: str | None = None):
        self.raw: dict[str, Any] = raw or {}
        self.source_dir = source_dir or os.getcwd()
        self._values: dict[str, Any] = {}
        self._validate()

    @classmethod
    def load(cls, paths: list[str], env: Mapping[str, str] | None = None) -> Configuration:
        env = os.environ if env is None else env
        raw = read_sources(paths) if paths else {}
        raw = expand_variables(raw, env)
        apply_environment(raw, env)
        source_dir = None
        if paths:
            first = paths[0]
            source_dir = first if os.path.isdir(first) else os.path.dirname(os.path.abspath(first))
        return cls(raw, source_dir)

    def _validate(self) -> None:
        for key, value in self.raw.items():
            option = OPTIONS.get(key)
            if option is None:
                log.warning("Unknown configuration option ignored: %s", key)
                continue
            self._values[key] = option.check(value)

    def __getitem__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return OPTIONS[name].default_value()

    def get(self, name: str, default: Any = None) -> Any:
        if name in self._values:
            return self._values[name]
        option = OPTIONS.get(name)
        return option.default_value() if option is not None else default

    def is_set(self, name: str) -> bool:
        return name in self._values

    def path(self, name: str) -> str:
        """A path option, relative paths resolved against the folder of the configuration."""
        value = str(self[name])
        return value if os.path.isabs(value) else os.path.join(self.source_dir, value)

    def option(self, name: str) -> Option:
        return OPTIONS[name]
