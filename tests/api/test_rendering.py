"""`/instances/{id}/preview` and `/image-uint8|uint16|int16` (whole or per frame) against Orthanc's renderings.

The reference PNGs in the samples' `Formats/` are Orthanc's: `Brainix.png` is the `image-uint16` of
Brainix/Epi/IM-0001-0001, `SignedCT.png` the `image-int16` of SignedCT (two's complement bits in a
16-bit PNG). Orthanc's preview of a grayscale image is that image stretched from [min, max] to [0, 255],
so the expected preview is computed from the reference and compared within a tolerance.
(`KarstenHilbertRF.png` and `Multiframe*.png` have no source DICOM among the samples.)
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from donjon.api.rendering import negotiate
from tests.support.servers import Server

BRAINIX = "Brainix/Epi/IM-0001-0001.dcm"


def image_of(r: httpx.Response) -> np.ndarray:
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.headers["content-type"] == "image/png"
    return np.array(Image.open(io.BytesIO(r.content)))


def stretched(values: np.ndarray) -> np.ndarray:
    v = values.astype(np.float64)
    return np.floor((v - v.min()) * 255.0 / (v.max() - v.min()) + 0.5)


def upload(server: Server, samples: Path, name: str) -> str:
    r = server.upload(samples / name)
    assert r.status_code == 200, r.text
    return str(r.json()["ID"])


def test_brainix_uint16_and_preview(donjon: Server, samples: Path) -> None:
    truth = np.array(Image.open(samples / "Formats" / "Brainix.png"))
    i = upload(donjon, samples, BRAINIX)
    raw = image_of(donjon.get(f"/instances/{i}/image-uint16"))
    assert raw.dtype == np.uint16 and np.array_equal(raw, truth)
    preview = image_of(donjon.get(f"/instances/{i}/preview"))
    assert preview.dtype == np.uint8 and preview.shape == (256, 256)
    assert np.abs(preview.astype(int) - stretched(truth)).max() <= 1
    assert np.array_equal(image_of(donjon.get(f"/instances/{i}/frames/0/preview")), preview)
    uint8 = image_of(donjon.get(f"/instances/{i}/image-uint8"))
    assert np.array_equal(uint8, np.clip(truth, 0, 255).astype(np.uint8))


def test_signed_ct_int16_and_preview(donjon: Server, samples: Path) -> None:
    truth = np.array(Image.open(samples / "Formats" / "SignedCT.png"))
    i = upload(donjon, samples, "SignedCT.dcm")
    bits = image_of(donjon.get(f"/instances/{i}/image-int16"))
    assert np.array_equal(bits, truth)
    signed = truth.astype(np.uint16).view(np.int16)
    assert signed.min() < 0  # really signed data
    preview = image_of(donjon.get(f"/instances/{i}/preview"))
    assert np.abs(preview.astype(int) - stretched(signed)).max() <= 1
    uint16 = image_of(donjon.get(f"/instances/{i}/image-uint16"))
    assert np.array_equal(uint16, np.clip(signed, 0, None).astype(np.uint16))


def test_jpeg_baseline_color_preview(donjon: Server, samples: Path) -> None:
    truth = np.array(Image.open(samples / "TransferSyntaxes" / "1.2.840.10008.1.2.4.50.png").convert("RGB"))
    i = upload(donjon, samples, "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm")
    preview = image_of(donjon.get(f"/instances/{i}/preview"))
    assert preview.shape == truth.shape
    diff = np.abs(preview.astype(int) - truth.astype(int))
    assert diff.max() <= 8 and diff.mean() < 0.5  # JPEG decoders may differ by a rounding
    # a color image has no integer rendering
    assert donjon.get(f"/instances/{i}/image-uint8").status_code == 415


def test_palette_and_rgb_previews_are_color(donjon: Server, samples: Path) -> None:
    for name, shape in (("Implicit-vr-us-palette.dcm", (600, 800, 3)), ("ColorTestMalaterre.dcm", (41, 41, 3))):
        i = upload(donjon, samples, name)
        assert image_of(donjon.get(f"/instances/{i}/preview")).shape == shape


def test_frames_of_a_multiframe_image(donjon: Server, samples: Path) -> None:
    i = upload(donjon, samples, "LenaTwiceWithFragments.dcm")
    first = image_of(donjon.get(f"/instances/{i}/frames/0/preview"))
    second = image_of(donjon.get(f"/instances/{i}/frames/1/preview"))
    assert first.shape == second.shape == (512, 512, 3)
    assert np.array_equal(image_of(donjon.get(f"/instances/{i}/preview")), first)
    r = donjon.get(f"/instances/{i}/frames/2/preview")
    assert r.status_code == 415 and r.json()["HttpStatus"] == 415  # Orthanc's answer past the last compressed frame
    assert donjon.get(f"/instances/{i}/frames/x/preview").status_code == 404


def test_what_cannot_be_rendered(donjon: Server, samples: Path) -> None:
    no_pixels = upload(donjon, samples, "Issue22-NoPixelData.dcm")
    for path in ("preview", "frames/0/preview", "image-int16"):
        r = donjon.get(f"/instances/{no_pixels}/{path}")
        assert r.status_code == 415 and r.json()["HttpStatus"] == 415
    native = upload(donjon, samples, BRAINIX)
    r = donjon.get(f"/instances/{native}/frames/1/preview")
    assert r.status_code == 404 and r.json()["HttpStatus"] == 404
    assert donjon.get("/instances/nope/preview").status_code == 404
    patient = donjon.get(f"/instances/{native}/patient").json()["ID"]
    assert donjon.get(f"/instances/{patient}/preview").status_code == 404


def test_accept_header(donjon: Server, samples: Path) -> None:
    i = upload(donjon, samples, BRAINIX)
    r = donjon.get(f"/instances/{i}/preview", headers={"Accept": "image/jpeg"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
    small = donjon.get(f"/instances/{i}/preview?quality=10", headers={"Accept": "image/jpeg"})
    assert len(small.content) < len(r.content)
    assert donjon.get(f"/instances/{i}/preview?quality=0", headers={"Accept": "image/jpeg"}).status_code == 415
    pam = donjon.get(f"/instances/{i}/preview", headers={"Accept": "image/x-portable-arbitrarymap"})
    assert pam.headers["content-type"] == "image/x-portable-arbitrarymap"
    assert pam.content.startswith(b"P7\nWIDTH 256\nHEIGHT 256\nDEPTH 1\nMAXVAL 255\n")
    assert len(pam.content) == pam.content.index(b"ENDHDR\n") + 7 + 256 * 256
    for accept in ("*/*", "image/*", "image/png, image/jpeg"):
        assert donjon.get(f"/instances/{i}/preview", headers={"Accept": accept}).headers["content-type"] == "image/png"
    r = donjon.get(f"/instances/{i}/preview", headers={"Accept": "text/html"})
    assert r.status_code == 404 and r.json()["HttpStatus"] == 404


@pytest.mark.parametrize(("accept", "expected"), [
    ("", "image/png"), ("image/jpeg;q=0.5, image/png", "image/png"), ("image/png;q=0.1, image/jpeg", "image/jpeg"),
    ("application/json", None), ("image/png;q=0", None), ("text/html, */*;q=0.8", "image/png"),
])
def test_negotiate(accept: str, expected: str | None) -> None:
    assert negotiate(accept) == expected


_KINDS = ("preview", "image-uint8", "image-uint16", "image-int16")
_BAD = [  # (path after /instances/{id}/, status), Orthanc 1.10.1's status with Orthanc's JSON body
    *((f"{kind}?quality={q}", 415) for kind in _KINDS
      for q in ("abc", "0", "101", "-1", "\u00b2", "9" * 40, "nan", "1e2", "", "%00")),
    *((f"frames/{f}/{kind}", 404) for kind in _KINDS for f in ("-1", "1", "99999999999999999999", "\u00b2", "x")),
    ("frames/0/preview?quality=500", 415), ("image-uint16?quality=50", 415),
]


def test_bad_rendering_arguments_are_4xx_with_a_body(donjon: Server, samples: Path) -> None:
    """Every malformed frame number or quality: Orthanc's status, never a 5xx, a JSON error body."""
    from tests.faults.support import assert_error

    i = upload(donjon, samples, BRAINIX)
    for path, status in _BAD:
        assert_error(donjon.get(f"/instances/{i}/{path}", headers={"Accept": "image/jpeg"}), status)
    for path in ("preview?width=-1&height=0", "preview?smooth=2", "frames/0/preview?window-center=x"):
        assert donjon.get(f"/instances/{i}/{path}").status_code == 200  # arguments the route does not take
