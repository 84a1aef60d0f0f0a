"""On-disk compatibility of compressed attachments with Orthanc 1.10.1, in both directions."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from donjon.storage.compression import compress, decompress
from tests.support.servers import ORTHANC, start_donjon, start_orthanc

pytestmark = pytest.mark.orthanc
FILES = ["Knee/T1/IM-0001-0001.dcm", "Brainix/Flair/IM-0001-0001.dcm", "SignedCT.dcm", "DummyCT.dcm"]


def _stored_path(storage: Path, uuid: str) -> Path:
    return storage / uuid[0:2] / uuid[2:4] / uuid


def test_files_written_by_orthanc_read_back_through_donjon(samples: Any) -> None:
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed (apt-get install orthanc)")
    orthanc = start_orthanc({"StorageCompression": True})
    try:
        for name in FILES:
            data = (samples / name).read_bytes()
            iid = orthanc.post("/instances", content=data).json()["ID"]
            info = orthanc.get(f"/instances/{iid}/attachments/dicom/info").json()
            stored = _stored_path(orthanc.workdir / "storage", info["Uuid"]).read_bytes()
            assert stored[:8] == len(data).to_bytes(8, "little")
            assert hashlib.md5(stored).hexdigest() == info["CompressedMD5"]
            assert decompress(stored) == data
            # level 6 reproduces Orthanc's bytes exactly with this machine's zlib
            assert compress(data, 6) == stored
    finally:
        orthanc.stop()


def test_files_written_by_donjon_are_read_by_orthancs_recovery_tool(samples: Any, tmp_path: Path) -> None:
    tool = shutil.which("OrthancRecoverCompressedFile")
    if tool is None:
        pytest.skip("OrthancRecoverCompressedFile (Debian package orthanc) is not installed")
    donjon = start_donjon({"StorageCompression": True})
    try:
        for name in FILES:
            data = (samples / name).read_bytes()
            iid = donjon.post("/instances", content=data).json()["ID"]
            uuid = donjon.get(f"/instances/{iid}").json()["FileUuid"]
            stored = _stored_path(donjon.workdir / "storage", uuid)
            out = tmp_path / f"{uuid}.dcm"
            subprocess.run([tool, str(stored), str(out)], check=True, capture_output=True)
            assert out.read_bytes() == data
            assert donjon.get(f"/instances/{iid}/file").content == data
            assert stored.stat().st_size < len(data)
    finally:
        donjon.stop()
