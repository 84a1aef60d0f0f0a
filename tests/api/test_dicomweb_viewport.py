"""WADO-RS `viewport` (PS3.18 §8.3.5.1.3): crop, flip and scale, the region checked against the image,
and the bound on the rendered size (a tiny request must not make the server allocate gigabytes)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pydicom
import pytest
from PIL import Image

from donjon.dicomweb.render import MAX_UPSCALED_PIXELS
from tests.faults.support import MB, assert_error, peak_rss, reset_peak_rss
from tests.support.servers import SAMPLES, Server, start_donjon

FLAIR = "Brainix/Flair/IM-0001-0001.dcm"  # 288 x 288, grayscale


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"StableAge": 1000, "MaximumDecodedFrameSize": 8})
    assert s.upload(SAMPLES / FLAIR).status_code == 200
    yield s
    s.stop()


def _path() -> str:
    ds = pydicom.dcmread(SAMPLES / FLAIR, stop_before_pixels=True)
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


def _png(server: Server, viewport: str | None = None) -> np.ndarray:
    r = server.get(f"{_path()}/rendered", params={"viewport": viewport} if viewport else {},
                   headers={"accept": "image/png"})
    assert r.status_code == 200, r.text
    return np.array(Image.open(io.BytesIO(r.content)))


def test_crop_flip_and_scale(server: Server) -> None:
    full = _png(server)
    assert full.shape == (288, 288)
    assert np.array_equal(_png(server, "144,144,10,20,144,144"), full[20:164, 10:154])
    assert np.array_equal(_png(server, "144,144,154,20,-144,144"), np.fliplr(full[20:164, 10:154]))
    assert np.array_equal(_png(server, "144,144,10,164,144,-144"), np.flipud(full[20:164, 10:154]))
    assert np.array_equal(_png(server, "88,88,200,200,0,0"), full[200:, 200:])  # 0: up to the edge
    assert _png(server, "100,50").shape == (50, 50)
    for bad in ("100,100,0,0,-20000,-20000", "100,100,0,0,289,10", "100,100,288,0,0,0", "10,10,-1,0,5,5"):
        body = assert_error(server.get(f"{_path()}/rendered", params={"viewport": bad}), 400)
        assert "not inside" in body["Details"] or "negative" in body["Details"], body


def test_rendered_size_is_bounded(server: Server) -> None:
    """Up to MAX_UPSCALED_PIXELS and MaximumDecodedFrameSize (8 MB here): 200; beyond: 413 at once."""
    side = 2896  # 2896^2 = 8.0 MiB of grayscale pixels, under both bounds
    assert side * side <= min(MAX_UPSCALED_PIXELS, 8 * MB)
    assert _png(server, f"{side},{side}").shape == (side, side)
    before = reset_peak_rss(server)
    for viewport in ("2897,2897", "20000,20000", "65000,65000", "65500,300,0,0,288,1"):
        body = assert_error(server.get(f"{_path()}/rendered", params={"viewport": viewport},
                                       headers={"accept": "image/png"}), 413)
        assert "MaximumDecodedFrameSize" in body["Details"], body
    body = assert_error(server.get(f"{_path()}/thumbnail", params={"viewport": "65501,65501,0,0,1,1"}), 400)
    assert "65500 pixels a side" in body["Details"], body
    assert peak_rss(server) - before < 16 * MB
