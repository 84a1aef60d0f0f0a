"""`donjon storage ...`: maintenance of the storage area of a configuration, with the server stopped.

  donjon storage compress CONFIG...     rewrite every attachment in Orthanc's zlib format
  donjon storage uncompress CONFIG...   rewrite every attachment uncompressed
  donjon storage migrate CONFIG... --to-s3 [--folder DIR]
                                        copy the folder storage into the AwsS3Storage bucket
  donjon storage migrate CONFIG... --to-folder [--folder DIR]
                                        copy the bucket back into the folder

Each command is resumable (run it again after an interruption), draws a progress bar on a terminal
and prints a summary. Exit status: 0 when every attachment was handled, 255 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..config import Configuration
from ..errors import OrthancError
from ..progress import Progress, human_bytes, human_duration
from ..registry import ConfigurationError

EXIT_FAILURE = -1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="donjon storage", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="The server must be stopped: the commands refuse to run while "
                                            "it holds the index.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, what in (("compress", "rewrite every attachment compressed (zlib, Orthanc's format)"),
                       ("uncompress", "rewrite every attachment uncompressed")):
        p = sub.add_parser(name, help=what, description=what)
        p.add_argument("config", nargs="+", metavar="CONFIG", help="configuration file(s) or folder(s)")
        if name == "compress":
            p.add_argument("--level", type=int, choices=range(1, 10), metavar="1..9",
                           help="zlib level (default: StorageCompressionLevel of CONFIG)")
        _common(p, jobs=4, batch=32)
    p = sub.add_parser("migrate", help="copy the attachment files into another storage area",
                       description="Copy every attachment file into another storage area; the index does "
                                   "not change. Then point the configuration at the new area.")
    p.add_argument("config", nargs="+", metavar="CONFIG", help="configuration file(s) or folder(s)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-s3", action="store_true",
                       help="from the folder (StorageDirectory) into the AwsS3Storage bucket of CONFIG")
    where.add_argument("--to-folder", action="store_true",
                       help="from the AwsS3Storage bucket of CONFIG into the folder")
    p.add_argument("--folder", metavar="DIR", help="the folder to read or write (default: StorageDirectory "
                                                   "of CONFIG)")
    _common(p, jobs=8, batch=64)
    return parser


def _common(p: argparse.ArgumentParser, jobs: int, batch: int) -> None:
    p.add_argument("--jobs", type=int, default=jobs, help=f"files handled in parallel (default {jobs})")
    p.add_argument("--batch", type=int, default=batch, help=f"files per index transaction (default {batch})")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="draw the progress bar (default: when the standard error is a terminal)")


def main(args: list[str]) -> int:
    opts = _parser().parse_args(args)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname).1s %(name)s] %(message)s")
    try:
        config = Configuration.load(opts.config)
        if opts.command == "migrate":
            return _migrate(config, opts)
        return _convert(config, opts)
    except ConfigurationError as e:
        return _fail(str(e))
    except OrthancError as e:
        return _fail(e.details or e.description)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # the summary was piped into `head`: the work itself is done
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _fail(message: str) -> int:
    print(f"donjon storage: {message}", file=sys.stderr)
    return EXIT_FAILURE


def _workspace(config: Configuration) -> Any:
    from .maintenance import Workspace

    return Workspace(config)


def _convert(config: Configuration, opts: argparse.Namespace) -> int:
    from .convert import Converter
    from .factory import open_storage

    compress = opts.command == "compress"
    level = getattr(opts, "level", None) or config["StorageCompressionLevel"]
    storage = open_storage(config)
    workspace = _workspace(config)
    try:
        converter = Converter(workspace.index, storage, workspace.state_dir, compress, level,
                              md5=config["StoreMD5ForAttachments"], jobs=opts.jobs, batch=opts.batch)
        total, total_bytes = converter.pending()
        progress = Progress(opts.command, total, total_bytes, enabled=opts.progress)
        converter.on_progress = progress.advance
        try:
            report = converter.run()
        finally:
            progress.close()
    finally:
        workspace.close()
    verb = "compressed" if compress else "uncompressed"
    print(f"donjon storage {opts.command}: {report.examined} attachments examined, {report.converted} {verb}, "
          f"{report.already} already {verb}, {len(report.failures)} failed"
          + (f", {report.headers} DICOM headers (attachment 3) added" if report.headers else "")
          + (f", {report.recovered} recovered from an interrupted run" if report.recovered else ""))
    if report.converted:
        rate = report.bytes_data / report.seconds if report.seconds > 0 else 0.0
        print(f"  stored size of the converted files: {human_bytes(report.bytes_before)} -> "
              f"{human_bytes(report.bytes_after)}, in {human_duration(report.seconds)} "
              f"({human_bytes(rate)}/s of uncompressed data)")
    if compress != bool(config["StorageCompression"]):
        now, wanted = ("false", "true") if compress else ("true", "false")
        print(f"  note: StorageCompression is {now} in the configuration, so the server will store new files "
              f"{'un' if compress else ''}compressed: set it to {wanted} to keep the storage uniform")
    return _failures(report.failures)


def _migrate(config: Configuration, opts: argparse.Namespace) -> int:
    from .factory import s3_settings
    from .folder import FolderStorage
    from .migrate import Migrator, count
    from .s3 import S3Storage

    settings = s3_settings(config)
    if settings is None:
        return _fail("the configuration has no AwsS3Storage section: nothing to migrate to or from")
    folder_path = opts.folder or config.path("StorageDirectory")
    folder = FolderStorage(folder_path, fsync=config["SyncStorageArea"])
    bucket = S3Storage(settings)
    source, target = (folder, bucket) if opts.to_s3 else (bucket, folder)
    workspace = _workspace(config)
    try:
        migrator = Migrator(workspace.index, source, target, jobs=opts.jobs, batch=opts.batch)
        total, total_bytes = count(workspace.index)
        progress = Progress("migrate", total, total_bytes, enabled=opts.progress)
        migrator.on_progress = progress.advance
        try:
            report = migrator.run()
        finally:
            progress.close()
    finally:
        workspace.close()
    direction = f"{folder_path} -> S3 bucket {settings.bucket}" if opts.to_s3 else \
        f"S3 bucket {settings.bucket} -> {folder_path}"
    rate = report.bytes_copied / report.seconds if report.seconds > 0 else 0.0
    print(f"donjon storage migrate ({direction}): {report.examined} attachments examined, {report.copied} "
          f"copied ({human_bytes(report.bytes_copied)}, {human_bytes(rate)}/s), {report.present} already "
          f"there, {len(report.failures)} failed, in {human_duration(report.seconds)}")
    if not report.failures:
        if opts.to_s3:
            print("  the folder was left as it was: remove its files once the server runs on the bucket")
        else:
            print("  remove the AwsS3Storage section from the configuration to run on the folder")
    return _failures(report.failures)


def _failures(failures: list[str]) -> int:
    for line in failures[:50]:
        print(f"  failed: {line}", file=sys.stderr)
    if len(failures) > 50:
        print(f"  ... and {len(failures) - 50} more", file=sys.stderr)
    if failures:
        print("  the files that failed were left untouched; run the command again after fixing them",
              file=sys.stderr)
        return EXIT_FAILURE
    return 0
