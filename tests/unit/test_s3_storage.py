"""The S3 storage area against a real S3-compatible server (moto's, on this machine): keys in both of
Orthanc's layouts, every operation of the storage protocol, errors, and the `AwsS3Storage` checks."""

from __future__ import annotations

import hashlib
import uuid as uuidlib
from typing import Any

import pytest

from donjon.errors import ErrorCode, OrthancError
from donjon.registry import ConfigurationError, ContentType
from donjon.storage.s3 import S3Storage
from donjon.storage.s3_settings import parse
from tests.support.s3 import SECRET_KEY, MotoServer, moto_or_skip


@pytest.fixture(scope="module")
def moto() -> MotoServer:
    return moto_or_skip()


def storage(moto: MotoServer, **extra: Any) -> S3Storage:
    return S3Storage(parse(moto.section(**extra)))


def keys(moto: MotoServer, bucket: str) -> set[str]:
    return {o["Key"] for o in moto.client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_flat_keys_are_orthancs(moto: MotoServer) -> None:
    s = storage(moto)
    ids = {t: str(uuidlib.uuid4()) for t in (1, 2, 3, 1025)}
    for content_type, uuid in ids.items():
        s.create(uuid, f"data {content_type}".encode(), content_type)
    assert keys(moto, s.bucket) == {f"{ids[1]}.dcm", f"{ids[2]}.json", f"{ids[3]}.dcm.head", f"{ids[1025]}.unk"}
    assert s.read(ids[3], 3) == b"data 3"
    assert sorted(s.scan()) == sorted(ids.values())


def test_legacy_keys_and_root_path(moto: MotoServer) -> None:
    s = storage(moto, StorageStructure="legacy", RootPath="orthanc/area/")
    uuid = str(uuidlib.uuid4())
    s.create(uuid, b"x", ContentType.DICOM)
    assert keys(moto, s.bucket) == {f"orthanc/area/{uuid[0:2]}/{uuid[2:4]}/{uuid}"}
    moto.client.put_object(Bucket=s.bucket, Key="elsewhere/foreign.txt", Body=b"not ours")
    assert s.scan() == [uuid]
    assert s.read(uuid) == b"x"  # the legacy layout does not need the content type


def test_read_range_and_sizes(moto: MotoServer) -> None:
    s = storage(moto)
    uuid = str(uuidlib.uuid4())
    data = bytes(range(256)) * 40
    s.create(uuid, data, ContentType.DICOM)
    assert s.read_range(uuid, 0, 132, ContentType.DICOM) == data[:132]
    assert s.read_range(uuid, 1000, 10240, ContentType.DICOM) == data[1000:]
    assert s.read_range(uuid, 5, 5, ContentType.DICOM) == b""
    for start, end in ((0, len(data) + 1), (len(data), len(data) + 10)):
        with pytest.raises(OrthancError) as e:
            s.read_range(uuid, start, end, ContentType.DICOM)
        assert e.value.code == ErrorCode.BAD_RANGE
    assert s.size_of(uuid, ContentType.DICOM) == len(data)
    assert s.size_of(str(uuidlib.uuid4()), ContentType.DICOM) is None
    assert s.has_read_range() and s.path_of(uuid) is None


def test_missing_and_removed(moto: MotoServer) -> None:
    s = storage(moto)
    uuid = str(uuidlib.uuid4())
    with pytest.raises(OrthancError) as e:
        s.read(uuid, ContentType.DICOM)
    assert e.value.code == ErrorCode.INEXISTENT_FILE
    s.create(uuid, b"", ContentType.DICOM)  # an empty attachment is an empty object
    assert s.read(uuid, ContentType.DICOM) == b""
    s.remove(uuid, ContentType.DICOM)
    s.remove(uuid, ContentType.DICOM)  # a missing object is not an error
    assert keys(moto, s.bucket) == set()
    with pytest.raises(OrthancError):
        s.create("../escape", b"x", ContentType.DICOM)


def test_uuid_only_callers(moto: MotoServer) -> None:
    """Callers that only know the uuid (the sweep of orphans after a crash) still reach the object."""
    s = storage(moto)
    uuid = str(uuidlib.uuid4())
    s.create(uuid, b"head", ContentType.DICOM_UNTIL_PIXEL_DATA)
    assert s.read(uuid) == b"head"
    s.remove(uuid)
    assert keys(moto, s.bucket) == set()
    with pytest.raises(OrthancError):
        s.create(uuid, b"x")  # but a new object must be named by its content type


def test_uploads_carry_their_md5(moto: MotoServer) -> None:
    """Content-MD5 on every PUT: the server checks what it received (its ETag is that MD5 here)."""
    s = storage(moto)
    uuid = str(uuidlib.uuid4())
    s.create(uuid, b"payload", ContentType.DICOM)
    head = moto.client.head_object(Bucket=s.bucket, Key=f"{uuid}.dcm")
    assert head["ETag"].strip('"') == hashlib.md5(b"payload").hexdigest()


def test_legacy_unknown_files_are_read(moto: MotoServer) -> None:
    """Versions 1.2.0 to 1.3.0 of Orthanc's plugin wrote headers as `.unk`: read with the option."""
    bucket = moto.new_bucket()
    uuid = str(uuidlib.uuid4())
    moto.client.put_object(Bucket=bucket, Key=f"{uuid}.unk", Body=b"head")
    plain = S3Storage(parse(moto.section(bucket)))
    with pytest.raises(OrthancError):
        plain.read(uuid, ContentType.DICOM_UNTIL_PIXEL_DATA)
    legacy = S3Storage(parse(moto.section(bucket, EnableLegacyUnknownFiles=True)))
    assert legacy.read(uuid, ContentType.DICOM_UNTIL_PIXEL_DATA) == b"head"


def test_missing_bucket_is_refused(moto: MotoServer) -> None:
    with pytest.raises(OrthancError) as e:
        S3Storage(parse(moto.section("no-such-bucket-here")))
    assert "no-such-bucket-here" in str(e.value.details) and SECRET_KEY not in str(e.value.details)


@pytest.mark.parametrize(("extra", "message"), [
    ({"BucketName": None}, "AwsS3Storage.BucketName\" is missing"),
    ({"Region": ""}, "AwsS3Storage.Region\" is missing"),
    ({"StorageStructure": "tree"}, "allowed values are 'flat' and 'legacy'"),
    ({"RootPath": "/abs"}, "shall not start with a /"),
    ({"StorageEncryption": {"Enable": True, "MasterKey": [1, "/k"]}}, "encryption"),
    ({"MigrationFromFileSystemEnabled": True}, "donjon storage migrate"),
    ({"HybridMode": "WriteToObjectStorage"}, "donjon storage migrate"),
    ({"SecretKey": None}, "go together"),
    ({"ConnectionTimeout": -1}, "positive number of seconds"),
    ({"VirtualAddressing": "maybe"}, "Boolean"),
])
def test_bad_sections_are_refused(extra: dict[str, Any], message: str) -> None:
    section = {"BucketName": "b", "Region": "r", "AccessKey": "a", "SecretKey": SECRET_KEY, **extra}
    section = {k: v for k, v in section.items() if v is not None}
    with pytest.raises(ConfigurationError) as e:
        parse(section)
    assert message in str(e.value)
    assert SECRET_KEY not in str(e.value)


def test_settings_defaults_and_secret() -> None:
    settings = parse({"BucketName": "b", "Region": "eu-west-1", "AccessKey": "a", "SecretKey": SECRET_KEY,
                      "Endpoint": "minio.local:9000", "StorageEncryption": {"Enable": False}})
    assert settings.endpoint == "https://minio.local:9000"  # HTTPS unless told, as Orthanc's plugin
    assert (settings.connect_timeout, settings.request_timeout) == (30, 1200)
    assert settings.virtual_addressing and not settings.legacy_structure
    assert SECRET_KEY not in repr(settings)
    assert parse({"BucketName": "b", "Region": "r", "ConnectTimeout": 5}).connect_timeout == 5
