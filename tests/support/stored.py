"""What a test server holds in its storage area, whether a folder or an S3 bucket (`AwsS3Storage`).

Tests look at the stored files directly (orphans, sizes, corrupting one on purpose); these helpers
give the same view of both kinds of storage, keyed by attachment uuid.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .servers import Server

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _s3(server: Server) -> tuple[Any, str] | None:
    section = server.config.get("AwsS3Storage")
    if not section:
        return None
    import boto3

    client = boto3.client("s3", endpoint_url=section["Endpoint"], region_name=section["Region"],
                          aws_access_key_id=section["AccessKey"], aws_secret_access_key=section["SecretKey"])
    return client, section["BucketName"]


def _s3_keys(client: Any, bucket: str) -> dict[str, tuple[str, int]]:
    """uuid -> (key, size) of every attachment object of the bucket."""
    out: dict[str, tuple[str, int]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", ()):
            m = _UUID.search(item["Key"].rsplit("/", 1)[-1])
            if m is not None:
                out[m.group(0)] = (item["Key"], int(item["Size"]))
    return out


def folder_uuids(storage: Path) -> set[str]:
    """The uuids of the files in a storage folder laid out as Orthanc's (`<uuid[0:2]>/<uuid[2:4]>/<uuid>`)."""
    return {p.name for p in storage.glob("??/??/*") if _UUID.fullmatch(p.name)}


def stored_sizes(server: Server) -> dict[str, int]:
    """Size of every stored file, by uuid."""
    s3 = _s3(server)
    if s3 is not None:
        return {u: size for u, (_, size) in _s3_keys(*s3).items()}
    root = server.workdir / "storage"
    return {p.name: p.stat().st_size for p in root.rglob("*") if p.is_file() and _UUID.fullmatch(p.name)}


def stored_files(server: Server) -> set[str]:
    return set(stored_sizes(server))


def settled_sizes(server: Server, expected: Callable[[dict[str, int]], bool], timeout: float = 5.0) -> dict[str, int]:
    """`stored_sizes` once `expected` holds (or the last view after `timeout`): the files of patients
    recycled by a store leave the storage once the index is durable (core/index_sync.py), a few
    tenths of a second after the store's answer."""
    deadline = time.monotonic() + timeout
    while True:
        sizes = stored_sizes(server)
        if expected(sizes) or time.monotonic() > deadline:
            return sizes
        time.sleep(0.05)


def read_stored(server: Server, uuid: str) -> bytes:
    s3 = _s3(server)
    if s3 is not None:
        client, bucket = s3
        return bytes(client.get_object(Bucket=bucket, Key=_s3_keys(client, bucket)[uuid][0])["Body"].read())
    return (server.workdir / "storage" / uuid[:2] / uuid[2:4] / uuid).read_bytes()


def write_stored(server: Server, uuid: str, data: bytes) -> None:
    """Replace the bytes of an existing stored file (to corrupt it on purpose)."""
    s3 = _s3(server)
    if s3 is not None:
        client, bucket = s3
        client.put_object(Bucket=bucket, Key=_s3_keys(client, bucket)[uuid][0], Body=data)
        return
    (server.workdir / "storage" / uuid[:2] / uuid[2:4] / uuid).write_bytes(data)


def is_stored(server: Server, uuid: str) -> bool:
    return uuid in stored_files(server)


@contextmanager
def stored_file_removed(server: Server, uuid: str) -> Iterator[bytes]:
    """Remove a stored file for the duration of the block (yields its bytes), then put it back."""
    s3 = _s3(server)
    if s3 is not None:
        client, bucket = s3
        key = _s3_keys(client, bucket)[uuid][0]
        data = bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        client.delete_object(Bucket=bucket, Key=key)
        try:
            yield data
        finally:
            client.put_object(Bucket=bucket, Key=key, Body=data)
        return
    path = server.workdir / "storage" / uuid[:2] / uuid[2:4] / uuid
    data = path.read_bytes()
    path.unlink()
    try:
        yield data
    finally:
        path.write_bytes(data)
