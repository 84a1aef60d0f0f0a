"""`donjon [OPTION]... [CONFIGURATION]...`: Orthanc's command line, then the server.

As in Orthanc, the options are read from left to right, an option that prints something (`--help`,
`--version`, `--errors`, `--config=`, `--openapi=`) does it at once and exits, and an unknown option
only gives a warning. Exit status: 0 on success, -1 (255) on error, as Orthanc on Unix.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from . import __version__
from .errors import OrthancError
from .registry import ConfigurationError

EXIT_FAILURE = -1

USAGE = f"""Usage: donjon [OPTION]... [CONFIGURATION]...
Donjon {__version__}, a lightweight RESTful DICOM server speaking Orthanc's REST API.

CONFIGURATION is a JSON file (with // and /* */ comments) or a folder whose .json files are
merged; several can be given, the later ones win. Without one, the defaults are used. Every
option can also be set as ORTHANC__OPTION_NAME in the environment (ORTHANC__HTTP_PORT=8043).

Options are read from left to right:
  --help              display this help and exit
  --version           output version information and exit
  --config=FILE       write a documented sample configuration to FILE and exit ("-": stdout)
  --errors            print the error codes and exit
  --openapi=FILE      write the OpenAPI description of the REST API to FILE and exit ("-": stdout)
  --verbose           be verbose in logs
  --trace             highest verbosity in logs (for debugging)
  --verbose-CATEGORY  be verbose in the logs of one category (generic, http, dicom, sqlite, jobs,
  --trace-CATEGORY    plugins, lua); same with the highest verbosity
  --logdir=DIR        write the logs into a new file of the existing folder DIR
  --logfile=FILE      append the logs to FILE
  --no-jobs           do not restart the jobs saved in the index
  --upgrade           upgrade the index and exit (Donjon upgrades its index by itself)

Commands:
  donjon migrate-index CONFIGURATION...  copy the SQLite index into the PostgreSQL index of the
                      configuration (resumable; see `donjon migrate-index --help`)
  donjon storage compress|uncompress CONFIGURATION...  rewrite every attachment (un)compressed
  donjon storage migrate CONFIGURATION... --to-s3|--to-folder  copy the files between the folder
                      and the AwsS3Storage bucket (see `donjon storage --help`; server stopped)

Exit status: 0 on success, 255 on error.
"""
STORAGE_COMMANDS = ("compress", "uncompress", "migrate", "-h", "--help")

VERSION = f"""Donjon {__version__}
A lightweight RESTful DICOM server speaking Orthanc's REST API.
Licensed under the Apache License, version 2.0.
"""

# Orthanc's log categories -> the loggers they stand for in Donjon
LOG_CATEGORIES: dict[str, tuple[str, ...]] = {
    "generic": ("donjon",),
    "http": ("donjon.api",),
    "dicom": ("donjon.dicom", "donjon.network", "pynetdicom"),
    "sqlite": ("donjon.index",),
    "jobs": ("donjon.jobs",),
    "plugins": ("donjon.plugins",),
    "lua": ("donjon.lua",),
}

_FORMAT = "%(levelname).1s%(asctime)s.%(msecs)03d %(threadName)s %(name)s] %(message)s"


class _Options:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.level = logging.WARNING
        self.categories: dict[str, int] = {}
        self.handler: logging.Handler | None = None
        self.no_jobs = False
        self.upgrade = False
        self.unsupported: list[str] = []


def print_errors() -> None:
    """The error codes, in the layout of Orthanc's `--errors`."""
    from .errors import all_errors

    print(f"Donjon {__version__}")
    print("A lightweight RESTful DICOM server speaking Orthanc's REST API.")
    print()
    print("List of error codes that could be returned by Donjon:")
    print()
    for code, _name, description, _status in all_errors():
        print(f"{code:>16}   {description}")
    print()


def _fail(message: str, opts: _Options) -> int:
    """One line on the standard error (and in the log file, if any), and the failure status."""
    print(f"Donjon cannot start: {message}", file=sys.stderr)
    if opts.handler is not None:
        logging.getLogger("donjon").error("Donjon cannot start: %s", message)
    return EXIT_FAILURE


def _category(arg: str) -> tuple[str, int] | None:
    for prefix, level in (("--verbose-", logging.INFO), ("--trace-", logging.DEBUG)):
        if arg.startswith(prefix) and arg[len(prefix):] in LOG_CATEGORIES:
            return arg[len(prefix):], level
    return None


def _file_handler(path: str) -> logging.Handler:
    return logging.FileHandler(path, mode="a", encoding="utf-8")


def _parse(args: list[str]) -> _Options | int:
    """The options, or an exit status when an option has done its work (or failed)."""
    opts = _Options()
    for arg in args:
        if not arg:
            continue
        if not arg.startswith("-"):
            opts.paths.append(arg)
        elif arg in ("--help", "-h"):
            print(USAGE, end="")
            return 0
        elif arg == "--version":
            print(VERSION, end="")
            return 0
        elif arg == "--errors":
            print_errors()
            return 0
        elif arg.startswith("--config="):
            from .sample_config import write_sample

            target = arg[len("--config="):]
            try:
                write_sample(target)
            except OSError as e:
                print(f"Cannot write the sample configuration to {target!r}: {e.strerror}", file=sys.stderr)
                return EXIT_FAILURE
            return 0
        elif arg.startswith("--openapi="):
            from .openapi import write_openapi

            target = arg[len("--openapi="):]
            try:
                write_openapi(target)
            except OSError as e:
                print(f"Cannot write the OpenAPI description to {target!r}: {e.strerror}", file=sys.stderr)
                return EXIT_FAILURE
            return 0
        elif arg == "--verbose":
            opts.level = logging.INFO
        elif arg == "--trace":
            opts.level = logging.DEBUG
        elif (category := _category(arg)) is not None:
            opts.categories[category[0]] = category[1]
        elif arg.startswith("--logdir="):
            folder = arg[len("--logdir="):]
            if not os.path.isdir(folder):
                print(f"The folder where to store the log files ({folder}) does not exist, aborting",
                      file=sys.stderr)
                return EXIT_FAILURE
            name = time.strftime("Donjon-%Y%m%d-%H%M%S") + f".{os.getpid()}.log"
            try:
                opts.handler = _file_handler(os.path.join(folder, name))
            except OSError as e:
                print(f"Cannot write a log file in {folder}: {e.strerror}, aborting", file=sys.stderr)
                return EXIT_FAILURE
        elif arg.startswith("--logfile="):
            path = arg[len("--logfile="):]
            try:
                opts.handler = _file_handler(path)
            except OSError as e:
                print(f"Cannot write to the log file {path}: {e.strerror}, aborting", file=sys.stderr)
                return EXIT_FAILURE
        elif arg == "--no-jobs":
            opts.no_jobs = True
        elif arg == "--upgrade":
            opts.upgrade = True
        elif arg == "--logs-no-thread":
            pass
        else:
            opts.unsupported.append(arg)
    return opts


def _setup_logging(opts: _Options) -> None:
    handler = opts.handler or logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%m%d %H:%M:%S"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(opts.level)
    for category, level in opts.categories.items():
        for name in LOG_CATEGORIES[category]:
            logging.getLogger(name).setLevel(min(level, opts.level))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "migrate-index":  # a command, not a server: copy a SQLite index to PostgreSQL
        from .index.migrate import main as migrate_index

        logging.basicConfig(level=logging.WARNING, format=_FORMAT, datefmt="%m%d %H:%M:%S")
        return migrate_index(args[1:])
    if len(args) > 1 and args[0] == "storage" and args[1] in STORAGE_COMMANDS:  # storage maintenance
        from .storage.commands import main as storage_main

        return storage_main(args[1:])
    parsed = _parse(args)
    if isinstance(parsed, int):
        return parsed
    opts = parsed
    _setup_logging(opts)
    log = logging.getLogger("donjon")
    for arg in opts.unsupported:
        log.warning("Option unsupported by Donjon: %s", arg)
    log.warning("Donjon version: %s", __version__)
    try:
        from .config import Configuration

        config = Configuration.load(opts.paths)
    except ConfigurationError as e:
        return _fail(str(e), opts)
    if opts.upgrade:
        log.warning("Donjon upgrades its index by itself when it starts: nothing to do for --upgrade")
        return 0
    from .server import run_server

    try:
        return run_server(config, no_jobs=opts.no_jobs, reload_config=lambda: Configuration.load(opts.paths))
    except ConfigurationError as e:
        return _fail(str(e), opts)
    except OrthancError as e:
        return _fail(e.details or e.description, opts)
    except KeyboardInterrupt:
        log.info("interrupted")
        return 0
