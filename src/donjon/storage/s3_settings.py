"""The `AwsS3Storage` section, with the names of Orthanc's AWS S3 object-storage plugin.

Checked at start-up (from `config_options`), so that a typo or an unsupported option stops the server
with a clear message instead of silently storing files elsewhere: where Orthanc's plugin only logs an
error and leaves Orthanc on its folder storage, Donjon refuses to start. The secret key is kept out of
every message and of `repr`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ..registry import ConfigurationError

log = logging.getLogger(__name__)

SECTION = "AwsS3Storage"
STRUCTURES = ("flat", "legacy")

# Options of the plugin that Donjon accepts but does not need (the transfer manager is how the C++ SDK
# uploads big files in parts; a single PUT holds up to 5 GB).
_IGNORED = ("UseTransferManager", "TransferPoolSize", "TransferBufferSize")
_KNOWN = ("BucketName", "Region", "AccessKey", "SecretKey", "Endpoint", "VirtualAddressing",
          "StorageStructure", "ConnectionTimeout", "ConnectTimeout", "RequestTimeout", "RootPath",
          "StorageEncryption", "EnableLegacyUnknownFiles", "MigrationFromFileSystemEnabled", "HybridMode",
          *_IGNORED)


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    region: str
    endpoint: str | None = None  # a full URL (scheme included), or None for AWS itself
    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    virtual_addressing: bool = True
    legacy_structure: bool = False
    root_path: str = ""
    connect_timeout: int = 30
    request_timeout: int = 1200
    legacy_unknown_files: bool = False
    ca_file: str | None = None
    verify: bool = True


def _fail(name: str, why: str) -> ConfigurationError:
    return ConfigurationError(f'Bad value for the configuration option "{SECTION}.{name}": {why}')


def _string(section: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = section.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fail(name, "expected a string")
    return value


def _bool(section: dict[str, Any], name: str, default: bool) -> bool:
    value = section.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail(name, "expected a Boolean")


def _seconds(section: dict[str, Any], name: str, default: int) -> int:
    value = section.get(name)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _fail(name, "expected a positive number of seconds")
    return value


def _endpoint(value: str | None) -> str | None:
    """The plugin talks HTTPS unless the endpoint names another scheme, as the C++ SDK does."""
    if not value:
        return None
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = "https://" + value
    if not value.startswith(("http://", "https://")):
        raise _fail("Endpoint", "expected an http:// or https:// URL (or a host name)")
    return value


def _refuse_unsupported(section: dict[str, Any]) -> None:
    encryption = section.get("StorageEncryption")
    if isinstance(encryption, dict):
        encrypted = bool(encryption) and _bool(encryption, "Enable", True)
    else:
        encrypted = encryption is not None
    if encrypted:
        raise _fail("StorageEncryption", "client-side encryption of the object-storage plugin is not supported "
                    "by Donjon; use the bucket's server-side encryption instead, or remove this option")
    if _bool(section, "MigrationFromFileSystemEnabled", False):
        raise _fail("MigrationFromFileSystemEnabled", "reading a folder and a bucket side by side is not "
                    "supported by Donjon; copy the folder into the bucket with "
                    "`donjon storage migrate CONFIG --to-s3` instead")
    hybrid = _string(section, "HybridMode", "Disabled")
    if hybrid != "Disabled":
        raise _fail("HybridMode", "only \"Disabled\" is supported; copy the folder into the bucket with "
                    "`donjon storage migrate CONFIG --to-s3`")


def parse(section: dict[str, Any], https_ca: str = "", verify_peers: bool = True) -> S3Settings:
    """The settings of a non-empty `AwsS3Storage` section (a `ConfigurationError` if wrong)."""
    for key in section:
        if key not in _KNOWN:
            log.warning("Unknown option ignored in the %s section: %s", SECTION, key)
    _refuse_unsupported(section)
    bucket = _string(section, "BucketName")
    if not bucket:
        raise ConfigurationError(f'The configuration option "{SECTION}.BucketName" is missing')
    region = _string(section, "Region")
    if not region:
        raise ConfigurationError(f'The configuration option "{SECTION}.Region" is missing')
    structure = _string(section, "StorageStructure", "flat")
    if structure not in STRUCTURES:
        raise _fail("StorageStructure", f"{structure!r}, allowed values are 'flat' and 'legacy'")
    root = _string(section, "RootPath", "") or ""
    if root.startswith("/"):
        raise _fail("RootPath", "it shall not start with a /")
    access = _string(section, "AccessKey")
    secret = _string(section, "SecretKey")
    if bool(access) != bool(secret):
        raise ConfigurationError(f'"{SECTION}.AccessKey" and "{SECTION}.SecretKey" go together: give both, '
                                 "or neither to use the default AWS credentials (environment, profile, role)")
    connect = _seconds(section, "ConnectionTimeout", _seconds(section, "ConnectTimeout", 30))
    return S3Settings(
        bucket=bucket, region=region, endpoint=_endpoint(_string(section, "Endpoint")),
        access_key=access or None, secret_key=secret or None,
        virtual_addressing=_bool(section, "VirtualAddressing", True),
        legacy_structure=structure == "legacy", root_path=root.strip("/"),
        connect_timeout=connect, request_timeout=_seconds(section, "RequestTimeout", 1200),
        legacy_unknown_files=_bool(section, "EnableLegacyUnknownFiles", False),
        ca_file=https_ca or None, verify=verify_peers)


def validate(option: Any, value: dict[str, Any]) -> dict[str, Any]:
    """`config_options` validator: an empty section means no object storage, as in Orthanc."""
    if value:
        parse(value)
    return value
