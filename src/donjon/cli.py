"""`donjon [CONFIG...] [options]`: Orthanc's command line, then the server."""

from __future__ import annotations

import logging
import os
import sys
import time

from . import __version__
from .registry import ConfigurationError

USAGE = f"""Usage: donjon [OPTION]... [CONFIGURATION]...
Donjon {__version__}, a lightweight RESTful DICOM server speaking Orthanc's REST API.

CONFIGURATION: a JSON file (comments allowed) or a folder of JSON files; without one,
the embedded defaults are used (SQLite index and storage in ./OrthancStorage).

  --help              this help
  --version           the version of Donjon
  --config=FILE       write a documented sample configuration to FILE ("-" for stdout)
  --errors            the list of error codes
  --openapi=FILE      write the OpenAPI description of the REST API to FILE
  --verbose           informative logs
  --trace             debug logs
  --logdir=DIR        write the logs into a new file in DIR
  --logfile=FILE      write the logs into FILE (appending)
  --no-jobs           do not restart the jobs saved in the index
"""


def _setup_logging(level: int, logdir: str | None, logfile: str | None) -> None:
    handlers: list[logging.Handler] = []
    if logdir:
        os.makedirs(logdir, exist_ok=True)
        name = time.strftime("Donjon-%Y%m%d-%H%M%S.log")
        handlers.append(logging.FileHandler(os.path.join(logdir, name)))
    elif logfile:
        handlers.append(logging.FileHandler(logfile))
    else:
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=level, handlers=handlers,
                        format="%(levelname).1s%(asctime)s %(threadName)s %(name)s] %(message)s",
                        datefmt="%m%d %H:%M:%S")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    paths: list[str] = []
    level = logging.WARNING
    logdir = logfile = None
    no_jobs = False
    for arg in args:
        if arg in ("--help", "-h"):
            print(USAGE)
            return 0
        if arg == "--version":
            print(f"Donjon {__version__}")
            return 0
        if arg == "--errors":
            from .errors import all_errors

            print(f"Donjon {__version__}\n\nList of error codes that could be returned:\n")
            for code, _name, desc, _status in all_errors():
                print(f"{code:>16}   {desc}")
            return 0
        if arg.startswith("--config="):
            from .sample_config import write_sample

            write_sample(arg[len("--config="):])
            return 0
        if arg.startswith("--openapi="):
            from .openapi import write_openapi

            write_openapi(arg[len("--openapi="):])
            return 0
        if arg == "--verbose":
            level = min(level, logging.INFO)
        elif arg == "--trace":
            level = logging.DEBUG
        elif arg.startswith("--logdir="):
            logdir = arg[len("--logdir="):]
        elif arg.startswith("--logfile="):
            logfile = arg[len("--logfile="):]
        elif arg == "--no-jobs":
            no_jobs = True
        elif arg.startswith("--"):
            print(f"Unknown option: {arg}\n\n{USAGE}", file=sys.stderr)
            return 2
        else:
            paths.append(arg)
    _setup_logging(level, logdir, logfile)
    log = logging.getLogger("donjon")
    try:
        from .config import Configuration

        config = Configuration.load(paths)
    except ConfigurationError as e:
        print(f"Donjon cannot start: {e}", file=sys.stderr)
        return 1
    from .server import run_server

    try:
        return run_server(config, no_jobs=no_jobs)
    except ConfigurationError as e:
        print(f"Donjon cannot start: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        log.info("interrupted")
        return 0
