"""`/instances/{id}/numpy` and `/frames/{n}/numpy` against Orthanc 1.10.1 on the sample images.

Shapes and types must match exactly (frames x rows x columns x channels; RGB `uint8`; grayscale
`float32` rescaled by default, the stored integers with `rescale=0`); values too, except where Donjon
differs on purpose (api/numpy_export.py): lossy JPEG decoded by another library (a unit or two), and
rescaled values kept exact where Orthanc 1.10.1 drops their fraction (less than 1 apart, and equal to
stored * slope + intercept). JPEG 2000, which 1.10.1 cannot decode (500), is decoded.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest

from tests.support.error_bodies import as_orthanc_1_10
from tests.support.servers import SAMPLES, Server, loaded_pair

pytestmark = pytest.mark.orthanc

FILES = [*sorted(f"TransferSyntaxes/{p.name}" for p in (SAMPLES / "TransferSyntaxes").glob("*.dcm")),
         "LenaTwiceWithFragments.dcm", "Issue22-NoPixelData.dcm", "Implicit-vr-us-palette.dcm",
         "ColorTestMalaterre.dcm", "SignedCT.dcm"]
LOSSY = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
QUERIES = ("/numpy", "/numpy?rescale=0", "/numpy?compress", "/frames/0/numpy", "/frames/1/numpy",
           "/frames/0/numpy?rescale=false", "/frames/x/numpy")


@pytest.fixture(scope="module")
def pair() -> Iterator[list[Server]]:
    yield from loaded_pair(FILES)


def _array(body: bytes, compressed: bool) -> np.ndarray:
    loaded = np.load(io.BytesIO(body))
    return loaded["arr_0"] if compressed else loaded


def test_numpy_matches_orthanc(pair: list[Server]) -> None:
    orthanc, donjon = pair
    compared = 0
    for name in FILES:
        ds = pydicom.dcmread(SAMPLES / name, force=True, stop_before_pixels=True)
        found = orthanc.post("/tools/lookup", content=str(ds.SOPInstanceUID)).json()
        instance = next(f["ID"] for f in found if f["Type"] == "Instance")
        syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        for query in QUERIES:
            path = f"/instances/{instance}{query}"
            theirs, ours = orthanc.get(path), donjon.get(path)
            if theirs.status_code == 500 and syntax.startswith("1.2.840.10008.1.2.4.9"):
                assert ours.status_code in (200, 400), (path, ours.status_code)  # decoded, or frame 1 out of range
                continue
            ours = as_orthanc_1_10(theirs, ours)
            assert ours.status_code == theirs.status_code, (name, query, ours.text[:200])
            if theirs.status_code != 200:
                assert ours.json()["OrthancStatus"] == theirs.json()["OrthancStatus"], (name, query)
                continue
            assert ours.headers["content-type"] == theirs.headers["content-type"]
            a, b = _array(theirs.content, "compress" in query), _array(ours.content, "compress" in query)
            assert (a.shape, a.dtype) == (b.shape, b.dtype), (name, query)
            gap = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
            if syntax in LOSSY:
                assert gap <= 2, (name, query, gap)
            elif b.dtype == np.float32 and slope != int(slope):
                assert gap < 1, (name, query, gap)  # Orthanc 1.10.1 drops the fraction
                stored = _array(donjon.get(f"/instances/{instance}/numpy?rescale=0").content, False)
                expected = stored.astype(np.float32) * np.float32(slope) + np.float32(intercept)
                assert np.array_equal(b.reshape(-1), expected.reshape(-1)[:b.size]), (name, query)
            else:
                assert gap == 0, (name, query, gap)
            compared += 1
    assert compared >= 40
