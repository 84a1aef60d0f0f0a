"""Orthanc-style configuration: JSON with comments, folders of JSON files, `${VAR}` and `ORTHANC__*`.

Sources, from the weakest to the strongest:

1. Orthanc's defaults (`config_options.OPTIONS`);
2. the configuration files given on the command line (a folder contributes each of its `.json` files,
   in name order), with `//` and `/* */` comments and `${VAR}`, `${VAR:-default}` read from the
   environment;
3. the environment variable `ORTHANC_JSON` (a whole JSON document, as in Orthanc's Docker images);
4. the environment variables `ORTHANC__SECTION__OPTION_NAME=value` (the rule of Orthanc's Docker
   images), and `ORTHANC__..._SECRET=file` that reads the value from a file.

JSON objects coming from a stronger source are merged key by key into those of a weaker source; any
other value replaces the weaker one. The result is a `Configuration`: the merged raw values plus typed
access with Orthanc's defaults. A wrong type or value stops the start-up with a message naming the
option; an unknown option only gives a warning.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from .config_options import OPTIONS, Option, check_together
from .registry import ConfigurationError

log = logging.getLogger(__name__)

ENV_PREFIX = "ORTHANC__"
JSON_ENV = "ORTHANC_JSON"
SECRET_SUFFIX = "_SECRET"
SECRETS_FOLDER = "/run/secrets"

# ${NAME}, ${NAME:-default}, ${NAME:-"default"}, ${NAME:-'default'} (the forms Orthanc knows)
_VAR = re.compile(r"""\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(?:"([^"]*)"|'([^']*)'|([^"'}]*)))?\}""")
_KEY_BEFORE = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


# -- reading files ------------------------------------------------------------------------------------

def preprocess(text: str, env: Mapping[str, str] | None = None, source: str = "configuration") -> str:
    """Remove `//` and `/* */` comments outside JSON strings and, if `env` is given, substitute variables.

    Inside a JSON string, the value of a variable is inserted as string content (quotes and
    backslashes are escaped); outside strings it is inserted as is, so `"HttpPort": ${PORT:-8042}`
    gives a number. A variable that is not set and has no default is an error.
    """
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if c == "$" and env is not None:
            m = _VAR.match(text, i)
            if m is not None:
                value = _variable(m, env, text, source)
                out.append(json.dumps(value, ensure_ascii=False)[1:-1] if in_string else value)
                i = m.end()
                continue
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif c == "/" and text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line = text.count("\n", 0, i) + 1
                raise ConfigurationError(f"{source}: unterminated /* comment starting at line {line}")
            out.append("\n" * text.count("\n", i, end))  # keep line numbers right for error messages
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_comments(text: str) -> str:
    """Remove `//` and `/* */` comments that are outside JSON strings."""
    return preprocess(text)


def _variable(m: re.Match[str], env: Mapping[str, str], text: str, source: str) -> str:
    name = m.group(1)
    if name in env:
        return env[name]
    for default in m.group(2, 3, 4):
        if default is not None:
            return default
    line = text.count("\n", 0, m.start()) + 1
    keys = _KEY_BEFORE.findall(text, 0, m.start())
    near = f' (option "{keys[-1]}")' if keys else ""
    raise ConfigurationError(f"{source}, line {line}{near}: the environment variable {name} is not set; "
                             f"give it a value or a default: ${{{name}:-default}}")


def parse_json_with_comments(text: str, source: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A JSON object from `text`, after `preprocess()`."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        value = json.loads(preprocess(text, env, source))
    except json.JSONDecodeError as e:
        raise ConfigurationError(f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{source}: the configuration must be a JSON object")
    return value


def configuration_files(path: str) -> list[str]:
    """The files a configuration path stands for: the file itself, or the `.json` files of a folder."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(".json") and not os.path.isdir(os.path.join(path, f)))
        if not files:
            log.warning("No .json file in the configuration folder %s", path)
        return files
    if os.path.isfile(path):
        return [path]
    raise ConfigurationError(f"Inexistent path to configuration: {path}")


def read_sources(paths: list[str], env: Mapping[str, str] | None = None,
                 origins: dict[str, str] | None = None) -> dict[str, Any]:
    """Merge the configuration files (and folders of files) in order; later files win.

    `origins` receives, for each option (dotted path), the file that gave its value."""
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    origins = {} if origins is None else origins
    for path in paths:
        for f in configuration_files(path):
            log.info("Reading the configuration from %s", f)
            try:
                with open(f, encoding="utf-8") as fh:
                    text = fh.read()
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigurationError(f"{f}: cannot read the configuration: {e}") from None
            merge(merged, parse_json_with_comments(text, f, env), f, origins)
    return merged


def merge(target: dict[str, Any], source: Mapping[str, Any], source_name: str,
          origins: dict[str, str] | None = None, prefix: str = "", warn: bool = True) -> None:
    """Merge `source` into `target`: objects key by key, any other value replaces the former one."""
    origins = {} if origins is None else origins
    for key, value in source.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value, source_name, origins, path + ".", warn)
            continue
        if key in target and warn:
            log.warning("Option %s is defined by %s and by %s: the value of %s wins",
                        path, origins.get(path, "an earlier source"), source_name, source_name)
        target[key] = value
        origins[path] = source_name


# -- the environment ----------------------------------------------------------------------------------

def env_token_to_key(token: str) -> str:
    """The rule of Orthanc's Docker images for one level: `QUERY_RETRIEVE_SIZE` -> `QueryRetrieveSize`."""
    return "".join(word[0] + word[1:].lower() for word in token.split("_") if word)


def _normal(name: str) -> str:
    return name.replace("_", "").upper()


_KNOWN_BY_NORMAL = {_normal(name): name for name in OPTIONS}


def _match_key(section: Mapping[str, Any], token: str, top: bool) -> str:
    """The key an `ORTHANC__` token stands for: an existing key of the section or a known option whose
    name is the token without its underscores (ignoring case), else Docker's rule."""
    wanted = _normal(token)
    for existing in section:
        if _normal(existing) == wanted:
            return existing
    if top and wanted in _KNOWN_BY_NORMAL:
        return _KNOWN_BY_NORMAL[wanted]
    return env_token_to_key(token)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def env_value(text: str, option: Option | None = None) -> Any:
    """A value from the environment: JSON if it parses (numbers, Booleans, arrays, objects), else the
    text; the text too when the option wants a string (so that `ORTHANC__NAME=123` is the name "123")."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text
    if option is not None:
        if option.kind == "str" and not isinstance(value, str):
            return text
        if option.kind == "str-or-list" and not isinstance(value, str | list):
            return text
    return value


def _env_path(var: str) -> list[str] | None:
    if not var.startswith(ENV_PREFIX) or len(var) == len(ENV_PREFIX):
        return None
    tokens = var[len(ENV_PREFIX):].split("__")
    if any(not t.strip("_") for t in tokens):
        log.warning("Environment variable %s ignored: empty level in its name", var)
        return None
    return tokens


def environment_settings(env: Mapping[str, str]) -> list[tuple[str, list[str], str]]:
    """(variable, tokens, text) of every `ORTHANC__` variable, the `_SECRET` ones read from their file;
    shorter paths first, so that a more precise variable wins over a JSON object given higher up."""
    plain: dict[str, tuple[str, list[str], str]] = {}
    secrets: dict[str, tuple[str, list[str], str]] = {}
    for var, text in env.items():
        if not var.startswith(ENV_PREFIX):
            continue
        if var.endswith(SECRET_SUFFIX) and len(var) > len(ENV_PREFIX) + len(SECRET_SUFFIX):
            target = var[: -len(SECRET_SUFFIX)]
            tokens = _env_path(target)
            if tokens is not None:
                secrets[target] = (var, tokens, _read_secret(var, text))
            continue
        tokens = _env_path(var)
        if tokens is not None:
            plain[var] = (var, tokens, text)
    plain.update(secrets)  # a secret file wins over a plain variable, as in the Docker images
    return sorted(plain.values(), key=lambda item: (len(item[1]), item[0]))


def _read_secret(var: str, file_name: str) -> str:
    path = file_name if os.path.isabs(file_name) else os.path.join(SECRETS_FOLDER, file_name)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().rstrip("\n")
    except OSError as e:
        raise ConfigurationError(f"{var}: cannot read the secret file {path}: {e.strerror}") from None


def apply_environment(config: dict[str, Any], env: Mapping[str, str],
                      origins: dict[str, str] | None = None) -> list[str]:
    """Apply `ORTHANC_JSON` then every `ORTHANC__SECTION__OPTION_NAME=value`; the names of the options set.

    `origins` receives, for each option set (dotted path), the variable that set it."""
    origins = {} if origins is None else origins
    applied: list[str] = []
    if env.get(JSON_ENV, "").strip():
        document = parse_json_with_comments(env[JSON_ENV], JSON_ENV)
        merge(config, document, JSON_ENV, origins, warn=False)
        applied.extend(document)
    for var, tokens, text in environment_settings(env):
        target: dict[str, Any] = config
        keys: list[str] = []
        for depth, token in enumerate(tokens):
            key = _match_key(target, token, top=depth == 0)
            keys.append(key)
            if depth == len(tokens) - 1:
                option = OPTIONS.get(key) if depth == 0 else None
                value = env_value(text, option)
                if isinstance(value, dict) and isinstance(target.get(key), dict):
                    merge(target[key], value, var, origins, ".".join(keys) + ".", warn=False)
                else:
                    target[key] = value
                origins[".".join(keys)] = var
            else:
                child = target.get(key)
                if not isinstance(child, dict):
                    if child is not None:
                        log.warning("%s replaces the value of %s by a JSON object", var, ".".join(keys))
                    child = {}
                    target[key] = child
                target = child
        log.info("Configuration option %s set by the environment variable %s", ".".join(keys), var)
        applied.append(".".join(keys))
    return applied


# -- the result ---------------------------------------------------------------------------------------

class Configuration:
    """Typed access to the merged configuration, with Orthanc's defaults.

    `config["Name"]` is the checked value of a known option, or its default when it is not set (a JSON
    `null` counts as not set). Unknown options are kept in `raw` and reported with a warning.
    """

    def __init__(self, raw: dict[str, Any] | None = None, source_dir: str | None = None,
                 origins: dict[str, str] | None = None):
        self.raw: dict[str, Any] = raw or {}
        self.source_dir = source_dir or os.getcwd()
        # Orthanc's configuration path (the plugins' GetConfigurationPath): the file, or a folder's parent
        self.configuration_path = ""
        self.origins: dict[str, str] = origins or {}  # option (dotted path) -> file or variable
        self._values: dict[str, Any] = {}
        self.unknown: list[str] = []
        self._validate()

    @classmethod
    def load(cls, paths: list[str], env: Mapping[str, str] | None = None) -> Configuration:
        """Read the files and folders of `paths`, then the environment, and check everything."""
        env = os.environ if env is None else env
        origins: dict[str, str] = {}
        raw = read_sources(paths, env, origins) if paths else {}
        apply_environment(raw, env, origins)
        source_dir = None
        if paths:
            first = paths[0]
            source_dir = os.path.abspath(first if os.path.isdir(first) else os.path.dirname(os.path.abspath(first)))
        config = cls(raw, source_dir, origins)
        if paths:  # as boost's absolute() and parent_path(): joined to the current folder, not normalized
            joined = os.path.join(os.getcwd(), paths[0])
            config.configuration_path = os.path.dirname(joined) if os.path.isdir(paths[0]) else joined
        return config

    def _validate(self) -> None:
        for key, value in self.raw.items():
            option = OPTIONS.get(key)
            if option is None:
                self.unknown.append(key)
                close = difflib.get_close_matches(key, list(OPTIONS), n=1, cutoff=0.8)
                hint = f' (did you mean "{close[0]}"?)' if close else ""
                log.warning("Unknown configuration option ignored: %s%s", key, hint)
                continue
            if value is None:
                continue
            try:
                self._values[key] = option.check(value)
            except ConfigurationError as e:
                raise ConfigurationError(f"{e}{self._origin_of(key)}") from None
        check_together(self._values)

    def _origin_of(self, key: str) -> str:
        sources = {self.origins[p] for p in self.origins if p == key or p.startswith(key + ".")}
        return f" (set by {', '.join(sorted(sources))})" if sources else ""

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
        """Whether the option was given (by a file or the environment), even with its default value."""
        return name in self._values

    def path(self, name: str) -> str:
        """A path option, relative paths resolved against the folder of the configuration."""
        value = self[name]
        if value is None:
            raise KeyError(f"the configuration option {name} is not set")
        value = str(value)
        return value if os.path.isabs(value) else os.path.join(self.source_dir, value)

    def option(self, name: str) -> Option:
        return OPTIONS[name]
