"""Donjon on S3-compatible object storage (moto's server on this machine): Orthanc's object keys,
compression exactly as with a folder, sizes, deletion, and no secret in the logs.

(The whole store/attachments/recycling/delete suites also run on S3 with DONJON_TEST_STORAGE=s3.)
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.s3 import SECRET_KEY, MotoServer, moto_or_skip
from tests.support.servers import Server, start_donjon
from tests.support.stored import stored_sizes

KNEE1 = "Knee/T1/IM-0001-0001.dcm"
KNEE1_ID = "c8df6478-d7794217-0f11c293-a41237c9-31d98357"
PATIENT = "ca29faea-b6a0e17f-067743a1-8b778011-a48b2a17"


@pytest.fixture(scope="module")
def moto() -> MotoServer:
    return moto_or_skip()


@pytest.fixture(scope="module")
def compressed(moto: MotoServer) -> Iterator[Server]:
    """Compression on, Orthanc's level, no memory cache: every read goes to the bucket."""
    s = start_donjon({"AwsS3Storage": moto.section(), "StorageCompression": True, "StorageCompressionLevel": 6,
                      "MaximumStorageCacheSize": 0, "UserContentType": {"report": 1030}}, args=["--trace"])
    yield s
    s.stop()


def objects(moto: MotoServer, server: Server) -> dict[str, bytes]:
    bucket = server.config["AwsS3Storage"]["BucketName"]
    listing = moto.client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: moto.client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listing}


def test_compressed_instance_in_orthancs_keys_and_format(moto: MotoServer, compressed: Server, samples) -> None:
    compressed.wipe()
    data = (samples / KNEE1).read_bytes()
    assert compressed.post("/instances", content=data).json()["Status"] == "Success"
    attachments = compressed.get(f"/instances/{KNEE1_ID}/attachments?expand").json()
    dicom, header = attachments["dicom"], attachments["dicom-until-pixel-data"]
    stored = objects(moto, compressed)
    assert set(stored) == {f"{dicom['Uuid']}.dcm", f"{header['Uuid']}.dcm.head"}
    # the spec's test vector: Orthanc's zlib-with-size bytes, byte for byte
    assert stored[f"{dicom['Uuid']}.dcm"] == struct.pack("<Q", len(data)) + zlib.compress(data, 6)
    assert hashlib.md5(stored[f"{dicom['Uuid']}.dcm"]).hexdigest() == "9e94a7a75e03b923ccfe8e4565daec61"
    assert len(stored[f"{header['Uuid']}.dcm.head"]) == 1440
    # clients see the uncompressed bytes
    assert compressed.get(f"/instances/{KNEE1_ID}/file").content == data
    assert compressed.get(f"/instances/{KNEE1_ID}/simplified-tags").json()["PatientName"] == "KNEE"
    stats = compressed.get("/statistics").json()
    assert int(stats["TotalDiskSize"]) == sum(len(b) for b in stored.values())
    assert int(stats["TotalUncompressedSize"]) == len(data) + 3192


def test_user_attachments_and_deletion(moto: MotoServer, compressed: Server, samples) -> None:
    compressed.wipe()
    compressed.upload(samples / KNEE1)
    base = f"/patients/{PATIENT}/attachments/report"
    assert compressed.put(base, content=b"report " * 100).status_code == 200
    info = compressed.get(f"{base}/info").json()
    assert f"{info['Uuid']}.unk" in objects(moto, compressed)
    assert compressed.get(f"{base}/data").content == b"report " * 100
    assert compressed.post(f"{base}/verify-md5").json() == {}
    assert compressed.post(f"{base}/uncompress").status_code == 200
    raw = compressed.get(f"{base}/info").json()
    assert objects(moto, compressed)[f"{raw['Uuid']}.unk"] == b"report " * 100
    assert f"{info['Uuid']}.unk" not in objects(moto, compressed)  # the replaced object went
    assert compressed.delete(f"/patients/{PATIENT}").status_code == 200
    assert objects(moto, compressed) == {}
    assert compressed.get("/statistics").json()["TotalDiskSize"] == "0"


def test_secret_never_logged(compressed: Server) -> None:
    """The server runs with --trace: the S3 calls were logged at their highest verbosity."""
    assert "AwsS3Storage" not in compressed.get("/system").text
    log = compressed.log()
    assert "S3 bucket" in log and SECRET_KEY not in log


def test_legacy_layout_with_root_path(moto: MotoServer, samples) -> None:
    s = start_donjon({"AwsS3Storage": moto.section(StorageStructure="legacy", RootPath="pacs"),
                      "MaximumStorageCacheSize": 0})
    try:
        data = (samples / KNEE1).read_bytes()
        s.post("/instances", content=data)
        uuid = s.get(f"/instances/{KNEE1_ID}").json()["FileUuid"]
        assert set(objects(moto, s)) == {f"pacs/{uuid[0:2]}/{uuid[2:4]}/{uuid}"}
        assert s.get(f"/instances/{KNEE1_ID}/file").content == data
        # uncompressed with range reads: no attachment 3, the tags come from a range GET of the file
        assert s.get(f"/instances/{KNEE1_ID}/attachments").json() == ["dicom"]
        assert s.get(f"/instances/{KNEE1_ID}/tags?simplify").json()["PatientID"] == "887"
        assert stored_sizes(s) == {uuid: len(data)}
    finally:
        s.stop()


@pytest.mark.parametrize(("section", "message"), [
    ({"BucketName": "donjon-missing-bucket"}, "Cannot reach the S3 bucket 'donjon-missing-bucket'"),
    ({"StorageEncryption": {"Enable": True}}, "AwsS3Storage.StorageEncryption"),
    ({"Endpoint": "http://127.0.0.1:9"}, "Cannot reach the S3 bucket"),
])
def test_start_refused_with_a_clear_message(moto: MotoServer, section: dict[str, Any], message: str) -> None:
    config = {"AwsS3Storage": {**moto.section("donjon-unused"), "ConnectionTimeout": 1, **section}}
    with pytest.raises(RuntimeError) as e:
        start_donjon(config)
    assert message in str(e.value)
    assert SECRET_KEY not in str(e.value)
