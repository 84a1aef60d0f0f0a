"""The storage area a configuration asks for: an S3 bucket when `AwsS3Storage` is set, else a folder."""

from __future__ import annotations

from ..config import Configuration
from .folder import FolderStorage
from .protocol import StorageArea
from .s3_settings import SECTION, S3Settings, parse


def s3_settings(config: Configuration) -> S3Settings | None:
    """The object-storage settings, None when the section is absent or empty (folder storage)."""
    section = config.get(SECTION)
    if not section:
        return None
    return parse(section, config.get("HttpsCACertificates") or "", bool(config.get("HttpsVerifyPeers", True)))


def folder_storage(config: Configuration) -> FolderStorage:
    return FolderStorage(config.path("StorageDirectory"), fsync=config["SyncStorageArea"])


def open_storage(config: Configuration) -> StorageArea:
    settings = s3_settings(config)
    if settings is None:
        return folder_storage(config)
    from .s3 import S3Storage

    return S3Storage(settings)
