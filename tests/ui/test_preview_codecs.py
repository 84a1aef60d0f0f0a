"""The Explorer's preview of every compressed transfer syntax among the samples, against DCMTK.

Orthanc 1.10.1 renders all of them (DCMTK and OpenJPEG); Donjon does with pydicom and its plugins
(Pillow, pylibjpeg-libjpeg, pylibjpeg-openjpeg, pydicom's RLE decoder). Where DCMTK has a
decompressor (`dcmdjpeg`, `dcmdjpls`, `dcmdrle`), its pixels are the truth; DCMTK has no JPEG 2000,
so there the truth is Pillow's OpenJPEG decoding, made in the test (the server uses
pylibjpeg-openjpeg). Only a syntax without any decoder (video) is Orthanc's 415.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.encaps import encapsulate
from pydicom.pixels import pixel_array
from pydicom.uid import UID

from tests.support.servers import Server

TS = "TransferSyntaxes/1.2.840.10008.1.2.{}.dcm"
# syntax: (DCMTK decompressor, or "pillow" for pydicom's Pillow plugin, largest pixel difference)
COMPRESSED = {
    "4.50": ("dcmdjpeg", 8),  # JPEG baseline, YBR_FULL_422 color (decoders round differently)
    "4.51": ("dcmdjpeg", 2),  # JPEG extended 12-bit, with a malformed scan header DCMTK tolerates
    "4.57": ("dcmdjpeg", 0),  # JPEG lossless
    "4.70": ("dcmdjpeg", 0),  # JPEG lossless, first-order prediction
    "4.80": ("dcmdjpls", 0),  # JPEG-LS lossless
    "4.81": ("dcmdjpls", 0),  # JPEG-LS near-lossless
    "4.90": ("pillow", 0),    # JPEG 2000 lossless
    "4.91": ("pillow", 0),    # JPEG 2000
    "5": ("dcmdrle", 0),      # RLE lossless
}


def upload(server: Server, data: bytes) -> str:
    r = server.post("/instances", content=data)
    assert r.status_code == 200, r.text
    return str(r.json()["ID"])


def dcmtk_pixels(tool: str, source: Path, tmp: Path) -> np.ndarray:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} (DCMTK) is not installed")
    out = tmp / f"{source.stem}.native.dcm"
    subprocess.run([tool, str(source), str(out)], check=True, capture_output=True, timeout=60)
    return pydicom.dcmread(out).pixel_array


def stretched(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.float64)
    return np.floor((v - v.min()) * 255.0 / (v.max() - v.min()) + 0.5)


def image(content: bytes, kind: str) -> np.ndarray:
    picture = Image.open(io.BytesIO(content))
    assert picture.format == kind
    picture.load()  # a truncated or corrupt stream fails here
    return np.array(picture)


@pytest.mark.parametrize("syntax", sorted(COMPRESSED))
def test_compressed_syntax_previews(donjon: Server, samples: Path, tmp_path: Path, syntax: str) -> None:
    source = samples / TS.format(syntax)
    ds = pydicom.dcmread(source)
    assert str(ds.file_meta.TransferSyntaxUID) == f"1.2.840.10008.1.2.{syntax}"
    tool, tolerance = COMPRESSED[syntax]
    i = upload(donjon, source.read_bytes())

    r = donjon.get(f"/instances/{i}/preview")
    assert r.status_code == 200, (syntax, r.status_code)
    assert r.headers["content-type"] == "image/png"
    preview = image(r.content, "PNG")
    color = int(ds.SamplesPerPixel) == 3
    assert preview.shape == ((ds.Rows, ds.Columns, 3) if color else (ds.Rows, ds.Columns))
    assert preview.dtype == np.uint8 and preview.max() > preview.min()  # a picture, not a blank

    jpeg = donjon.get(f"/instances/{i}/preview", headers={"Accept": "image/jpeg"})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert image(jpeg.content, "JPEG").shape[:2] == (ds.Rows, ds.Columns)

    if tool == "pillow":
        truth = pixel_array(ds, decoding_plugin="pillow")
    else:
        truth = dcmtk_pixels(tool, source, tmp_path)
    if color:
        diff = np.abs(preview.astype(int) - truth.astype(int))
        assert diff.max() <= tolerance and diff.mean() < 0.5
        return
    kind = "image-int16" if int(ds.PixelRepresentation) else "image-uint16"
    bits = image(donjon.get(f"/instances/{i}/{kind}").content, "PNG")
    if kind == "image-int16":
        bits = bits.astype(np.uint16).view(np.int16)
    assert bits.shape == truth.shape
    assert np.abs(bits.astype(int) - truth.astype(int)).max() <= tolerance
    # the preview is the min/max stretch of those pixels
    assert np.abs(preview.astype(int) - stretched(bits)).max() <= 1


def test_syntax_without_decoder_is_415(donjon: Server, samples: Path) -> None:
    """MPEG-2 video: no decoder in Donjon nor in Orthanc, whose answer is an empty 415."""
    ds = pydicom.dcmread(samples / "Brainix/Epi/IM-0001-0001.dcm")
    ds.file_meta.TransferSyntaxUID = UID("1.2.840.10008.1.2.4.100")
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
    ds["PixelData"].VR = "OB"
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    i = upload(donjon, out.getvalue())
    for route in ("preview", "image-uint8", "frames/0/preview"):
        r = donjon.get(f"/instances/{i}/{route}")
        assert r.status_code == 415 and r.json()["HttpStatus"] == 415, (route, r.status_code)
    assert donjon.get("/system").status_code == 200


def test_scan_header_repair_touches_only_a_bad_sequential_scan(samples: Path) -> None:
    from pydicom.encaps import generate_frames

    from donjon.dicom.decoders import repaired

    def frame(syntax: str) -> bytes:
        return next(generate_frames(pydicom.dcmread(samples / TS.format(syntax)).PixelData, number_of_frames=1))

    bad = frame("4.51")
    fixed = repaired(bad)
    assert fixed is not None and len(fixed) == len(bad)
    changed = [i for i in range(len(bad)) if bad[i] != fixed[i]]
    assert len(changed) == 1 and bad[changed[0]] == 0 and fixed[changed[0]] == 63  # Se only
    assert fixed[changed[0] - 8:changed[0] - 4] == b"\xff\xda\x00\x08"  # of the SOS header
    assert repaired(frame("4.50")) is None  # a well-formed baseline frame
    assert repaired(frame("4.70")) is None  # lossless (SOF3) scans are not sequential
    assert repaired(b"not a jpeg") is None
