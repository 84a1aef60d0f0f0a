"""What the plugin tests share: scripts, DICOM variants of a sample, DCMTK, waiting for callbacks."""

from __future__ import annotations

import io
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid

from tests.support.servers import ROOT, SAMPLES, Server

SCRIPTS = Path(__file__).parent / "scripts"
EXAMPLES = ROOT / "examples" / "plugins"
BRAINIX = SAMPLES / "Brainix" / "Flair" / "IM-0001-0001.dcm"
ENV = {**os.environ, "TCP_NODELAY": "1"}


def variant(patient_id: str, source: Path = BRAINIX, new_study: bool = True, **tags: str) -> bytes:
    """A copy of a sample with another PatientID, new UIDs (a new study by default) and `tags`."""
    ds = pydicom.dcmread(source)
    ds.PatientID = patient_id
    if new_study:
        ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for name, value in tags.items():
        setattr(ds, name, value)
    out = io.BytesIO()
    ds.save_as(out)
    return out.getvalue()


def write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def dcmtk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, errors="replace", env=ENV, timeout=timeout)


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def events(server: Server, kind: str) -> list[dict[str, Any]]:
    return [e for e in server.get("/sdk/events").json() if e["kind"] == kind]
