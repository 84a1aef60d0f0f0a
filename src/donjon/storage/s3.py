"""A storage area in an S3-compatible bucket, laid out as Orthanc's AWS S3 object-storage plugin does.

Object keys (`RootPath/` first when set):
  flat    `<uuid>.dcm` (DICOM), `<uuid>.json` (DICOM-as-JSON), `<uuid>.dcm.head` (header until the
          pixel data), `<uuid>.unk` (anything else), so a bucket written by Orthanc reads back here;
  legacy  `<uuid[0:2]>/<uuid[2:4]>/<uuid>`, the folder layout, so a storage folder copied as is works.

Only plain S3 calls are used: PutObject (with Content-MD5), GetObject (whole or a byte range),
DeleteObject, HeadObject and, for orphan checks, ListObjectsV2. No bucket is created: like Orthanc,
Donjon expects an existing bucket and checks at start-up that it can reach it. Compression happens
above this layer, exactly as with a folder.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from typing import Any

from ..errors import ErrorCode, OrthancError
from ..registry import ContentType
from .s3_settings import S3Settings
from .wait_hook import before_wait

log = logging.getLogger(__name__)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_EXTENSIONS = {ContentType.DICOM: ".dcm", ContentType.DICOM_AS_JSON: ".json",
               ContentType.DICOM_UNTIL_PIXEL_DATA: ".dcm.head"}
_MISSING = ("NoSuchKey", "404", "NotFound")
_POOL = 32  # connections kept to the server: the HTTP worker threads and jobs read and write in parallel


def _quiet_sdk_logs() -> None:
    """botocore logs request headers and bodies at DEBUG: keep it at INFO even under `--trace`."""
    for name in ("botocore", "boto3", "s3transfer", "urllib3"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


class S3Storage:
    def __init__(self, settings: S3Settings, check: bool = True):
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - boto3 is a dependency
            raise OrthancError(ErrorCode.PLUGIN, "The AwsS3Storage section needs boto3 (pip install boto3)") from None
        _quiet_sdk_logs()
        self.settings = settings
        self.bucket = settings.bucket
        self._root = settings.root_path + "/" if settings.root_path else ""
        config = Config(
            region_name=settings.region, connect_timeout=settings.connect_timeout,
            read_timeout=settings.request_timeout, max_pool_connections=_POOL,
            retries={"mode": "standard", "max_attempts": 4},
            s3={"addressing_style": "virtual" if settings.virtual_addressing else "path"},
            # checksums only where S3 requires them (plain S3-compatible servers lack the newer ones);
            # uploads carry a Content-MD5 instead, as Orthanc's plugin sends
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        verify: bool | str = settings.ca_file if settings.verify and settings.ca_file else settings.verify
        session = boto3.session.Session(aws_access_key_id=settings.access_key,
                                        aws_secret_access_key=settings.secret_key,
                                        region_name=settings.region)
        self._client: Any = session.client("s3", endpoint_url=settings.endpoint, config=config, verify=verify)
        from botocore.exceptions import BotoCoreError, ClientError

        self._errors = (BotoCoreError, ClientError)
        self._client_error = ClientError
        if check:
            self._check_bucket()
        log.warning("Storage area: S3 bucket %s (%s keys%s) at %s", self.bucket,
                    "legacy" if settings.legacy_structure else "flat",
                    f", under {settings.root_path}/" if settings.root_path else "",
                    settings.endpoint or f"AWS {settings.region}")

    # -- keys -------------------------------------------------------------------------------------
    def key(self, uuid: str, content_type: int | None) -> str:
        if not _UUID.fullmatch(uuid):
            raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, "Bad attachment uuid")
        if self.settings.legacy_structure:
            return f"{self._root}{uuid[0:2]}/{uuid[2:4]}/{uuid}"
        if content_type is None:
            raise OrthancError(ErrorCode.INTERNAL_ERROR, "The S3 flat layout needs the content type of "
                               f"attachment {uuid}")
        return f"{self._root}{uuid}{_EXTENSIONS.get(content_type, '.unk')}"

    def _candidate_keys(self, uuid: str, content_type: int | None) -> list[str]:
        """The keys an attachment may have: one, unless the flat layout is used without a content type
        (a caller that only knows the uuid, e.g. the sweep of orphan files after a crash)."""
        if content_type is None and not self.settings.legacy_structure:
            return [self.key(uuid, t) for t in (*_EXTENSIONS, ContentType.UNKNOWN)]
        keys = [self.key(uuid, content_type)]
        if self.settings.legacy_unknown_files and not self.settings.legacy_structure and \
                content_type == ContentType.DICOM_UNTIL_PIXEL_DATA:
            keys.append(f"{self._root}{uuid}.unk")  # written so by versions 1.2.0 to 1.3.0 of the plugin
        return keys

    def uuid_of(self, key: str) -> str | None:
        """The attachment uuid an object key stands for, None for a foreign object."""
        if not key.startswith(self._root):
            return None
        rest = key[len(self._root):]
        if self.settings.legacy_structure:
            parts = rest.split("/")
            if len(parts) == 3 and _UUID.fullmatch(parts[2]) and parts[0] == parts[2][0:2] and \
                    parts[1] == parts[2][2:4]:
                return parts[2]
            return None
        m = _UUID.match(rest)
        if m is None or rest[36:] not in (".dcm", ".json", ".dcm.head", ".unk"):
            return None
        return m.group(0)

    # -- errors -----------------------------------------------------------------------------------
    def _is_missing(self, e: Exception) -> bool:
        if isinstance(e, self._client_error):
            error = e.response.get("Error", {})
            return str(error.get("Code")) in _MISSING
        return False

    def _failure(self, action: str, key: str, e: Exception, code: ErrorCode) -> OrthancError:
        """A clear error naming the object; botocore's messages never contain the secret key."""
        log.error("S3 %s of %s in bucket %s failed: %s", action, key, self.bucket, e)
        return OrthancError(code, f"S3 {action} of {key} failed: {e}")

    def _check_bucket(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except self._errors as e:
            if isinstance(e, self._client_error) and str(e.response.get("Error", {}).get("Code")) in ("403", "AccessDenied"):
                log.warning("Cannot check the S3 bucket %s (access denied to HeadBucket): going on", self.bucket)
                return
            raise OrthancError(ErrorCode.PLUGIN, f"Cannot reach the S3 bucket {self.bucket!r} at "
                               f"{self.settings.endpoint or 'AWS ' + self.settings.region}: {e}") from None

    # -- the storage area -------------------------------------------------------------------------
    def create(self, uuid: str, data: bytes, content_type: int | None = None) -> None:
        key = self.key(uuid, content_type)
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
        before_wait()  # the upload is mostly a wait on the network (storage/wait_hook.py)
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), ContentMD5=md5,
                                    ContentType="application/octet-stream")
        except self._errors as e:
            raise self._failure("write", key, e, ErrorCode.CANNOT_WRITE_FILE) from None

    def read(self, uuid: str, content_type: int | None = None) -> bytes:
        for key in self._candidate_keys(uuid, content_type):
            try:
                return bytes(self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
            except self._errors as e:
                if not self._is_missing(e):
                    raise self._failure("read", key, e, ErrorCode.STORAGE_AREA_PLUGIN) from None
        raise OrthancError(ErrorCode.INEXISTENT_FILE)

    def read_range(self, uuid: str, start: int, end: int, content_type: int | None = None) -> bytes:
        if end <= start:
            if end == start:
                return b""
            raise OrthancError(ErrorCode.BAD_RANGE)
        for key in self._candidate_keys(uuid, content_type):
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")
                data = bytes(answer["Body"].read())
            except self._errors as e:
                if self._is_missing(e):
                    continue
                if isinstance(e, self._client_error) and e.response.get("Error", {}).get("Code") == "InvalidRange":
                    raise OrthancError(ErrorCode.BAD_RANGE) from None
                raise self._failure("read", key, e, ErrorCode.STORAGE_AREA_PLUGIN) from None
            if len(data) != end - start:
                raise OrthancError(ErrorCode.BAD_RANGE)
            return data
        raise OrthancError(ErrorCode.INEXISTENT_FILE)

    def remove(self, uuid: str, content_type: int | None = None) -> None:
        for key in self._candidate_keys(uuid, content_type):
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except self._errors as e:
                if not self._is_missing(e):
                    log.warning("Cannot remove the S3 object %s: %s", key, e)

    def size_of(self, uuid: str, content_type: int | None = None) -> int | None:
        """The size of the object (HeadObject), None when it does not exist."""
        key = self.key(uuid, content_type)
        try:
            return int(self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except self._errors as e:
            if self._is_missing(e):
                return None
            raise self._failure("head", key, e, ErrorCode.STORAGE_AREA_PLUGIN) from None

    def has_read_range(self) -> bool:
        return True

    def path_of(self, uuid: str) -> str | None:
        return None

    def scan(self) -> list[str]:
        found: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        kwargs = {"Bucket": self.bucket, "Prefix": self._root} if self._root else {"Bucket": self.bucket}
        for page in paginator.paginate(**kwargs):
            for item in page.get("Contents", ()):
                uuid = self.uuid_of(item["Key"])
                if uuid is not None:
                    found.append(uuid)
        return found
