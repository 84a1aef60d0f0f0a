"""Rendered images of an instance: `/preview` and `/image-uint8|uint16|int16`, whole or per frame.

Decoding is pydicom's: numpy for the native syntaxes, its own RLE decoder, Pillow for JPEG baseline,
pylibjpeg (libjpeg, openjpeg) for JPEG extended, lossless, JPEG-LS and JPEG 2000, set up by
`dicom/decoders.py`. What cannot be decoded (no pixel data, a syntax without a decoder such as video, a
broken stream) is Orthanc's empty 415. The grayscale preview is Orthanc's
min/max stretch to 8 bits (MONOCHROME1 inverted), not the DICOM window: Orthanc Explorer shows that, and
the Explorer of Donjon shows the same picture.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.attachments import read_attachment
from ..dicom import pixel_guard
from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..limits import too_large
from ..registry import ContentType, Level
from .app import Api
from .http import Request, Response, Router

KINDS = ("preview", "image-uint8", "image-uint16", "image-int16")
_PNG, _JPEG, _PAM = "image/png", "image/jpeg", "image/x-portable-arbitrarymap"
NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                             "1.2.840.10008.1.2.1.99"})


def register(router: Router) -> None:
    for kind in KINDS:
        router.add("GET", f"/instances/{{id}}/{kind}", _route(kind))
        router.add("GET", f"/instances/{{id}}/frames/{{frame}}/{kind}", _route(kind))


class Undecodable(Exception):
    """The pixel data cannot be turned into an image of the requested kind (Orthanc answers 415)."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: grayscale (h, w) integers or color (h, w, 3) uint8, and how to show it."""

    pixels: np.ndarray
    monochrome1: bool = False

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 3


def _route(kind: str):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str, frame: str | None = None) -> Response:
        index = 0
        if frame is not None:
            if not (frame.isascii() and frame.isdigit()):
                raise EmptyAnswer(404)
            index = int(frame)
        mime = negotiate(request.headers.get("accept", ""))
        if mime is None:
            raise EmptyAnswer(404)
        quality = _quality(request)
        data = await api.run(dicom_bytes, api, id)
        try:
            body = await api.run(render, data, index, kind, mime, quality)
        except Undecodable:
            raise EmptyAnswer(415) from None
        return Response(200, body, mime.encode())
    return handler


def _quality(request: Request) -> int:
    """`?quality=1..100` of JPEG answers; Orthanc 1.10.1 answers a bad value with an empty 415."""
    text = request.query.get("quality")
    if text is None:
        return 90
    t = text.strip()
    if not (t.isascii() and t.isdigit()) or not 1 <= int(t) <= 100:
        raise EmptyAnswer(415)
    return int(t)


def negotiate(accept: str) -> str | None:
    """The image type to answer with: the client's most preferred one we can write; PNG by default."""
    if not accept.strip():
        return _PNG
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        fields = [f.strip() for f in item.split(";")]
        media = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            name, _, value = f.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        chosen = {"*/*": _PNG, "image/*": _PNG, _PNG: _PNG, _JPEG: _JPEG, _PAM: _PAM}.get(media)
        if chosen is None or q <= 0:
            continue
        if best is None or q > best[0]:
            best = (q, position, chosen)
    return best[2] if best else None


def dicom_bytes(api: Api, public_id: str) -> bytes:
    def run(tx: Any) -> Any:
        found = tx.lookup(public_id)
        if found is None or found[1] != Level.INSTANCE:
            raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
        info = tx.attachment(found[0], ContentType.DICOM)
        if info is None:
            raise OrthancError(ErrorCode.INEXISTENT_FILE)
        return info
    return read_attachment(api.ctx.storage, api.ctx.index.read(run))


# -- decoding -------------------------------------------------------------------------------------


def decode(data: bytes, index: int) -> Frame:
    """Frame `index` of a DICOM file; EmptyAnswer(404) past the last frame of a native image."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:
        raise Undecodable from None
    if "PixelData" not in ds:
        raise Undecodable
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
    count = frame_count(ds)
    if index >= count:
        # Orthanc: past the end of a native image is "no such frame"; a codec just fails to decode
        if syntax in NATIVE_SYNTAXES:
            raise EmptyAnswer(404)
        raise Undecodable
    arr = guarded_pixels(ds, syntax, index if count > 1 else None)
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if arr.ndim == 3 and arr.shape[-1] == 3:
        return Frame(np.ascontiguousarray(rgb24(arr)))
    if arr.ndim != 2 or arr.dtype.kind not in "iu":
        raise Undecodable
    return Frame(arr, photometric == "MONOCHROME1")


def frame_count(ds: Any) -> int:
    """NumberOfFrames, 1 when absent or unreadable."""
    try:
        return max(int(ds.get("NumberOfFrames") or 1), 1)
    except (TypeError, ValueError):
        return 1


def rgb24(arr: np.ndarray) -> np.ndarray:
    """Color pixels as 8-bit RGB (RGB48 keeps its high bytes, as Orthanc)."""
    return (arr >> 8 if arr.dtype.itemsize > 1 else arr).astype(np.uint8)


def guarded_pixels(ds: Any, syntax: str, index: int | None) -> np.ndarray:
    """Frame `index` (all frames when None) decoded by pydicom, palette colors applied, after the size
    checks of `pixel_guard`: 413 past the configured size, `Undecodable` for what cannot be decoded."""
    from pydicom.pixels import apply_color_lut, pixel_array

    try:
        pixel_guard.check(ds, syntax)
    except pixel_guard.PixelsRefused as e:
        if e.too_large:
            raise too_large(str(e)) from None
        raise Undecodable from None
    try:
        arr = pixel_array(ds, index=index)
        if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
    except Exception:
        raise Undecodable from None
    return arr


def preview_pixels(frame: Frame) -> np.ndarray:
    """Orthanc's preview: color as is; grayscale stretched from [min, max] to [0, 255], rounded."""
    if frame.is_color:
        return frame.pixels
    values = frame.pixels.astype(np.float64)
    low, high = float(values.min(initial=0)), float(values.max(initial=0))
    if high == low:
        out = np.zeros(values.shape, dtype=np.uint8)
    else:
        out = np.clip(np.floor((values - low) * (255.0 / (high - low)) + 0.5), 0, 255).astype(np.uint8)
    return 255 - out if frame.monochrome1 else out


def kind_pixels(frame: Frame, kind: str) -> np.ndarray:
    """The pixels of one answer kind: uint8 (L/RGB), uint16, or int16 values (grayscale only)."""
    if kind == "preview":
        return preview_pixels(frame)
    if frame.is_color:
        raise Undecodable
    values = frame.pixels.astype(np.int64)
    if kind == "image-uint8":
        return np.clip(values, 0, 255).astype(np.uint8)
    if kind == "image-uint16":
        return np.clip(values, 0, 65535).astype(np.uint16)
    return np.clip(values, -32768, 32767).astype(np.int16)


# -- encoding -------------------------------------------------------------------------------------


def encode(pixels: np.ndarray, mime: str, quality: int = 90) -> bytes:
    """PNG (16-bit for uint16/int16, int16 as its two's complement bits, as Orthanc), JPEG or PAM."""
    from PIL import Image

    if mime == _PAM:
        return _pam(pixels)
    out = io.BytesIO()
    if pixels.dtype.itemsize == 2:
        if mime == _JPEG:
            raise Undecodable
        Image.fromarray(pixels.view(np.uint16)).save(out, "PNG")
        return out.getvalue()
    image = Image.fromarray(pixels)
    if mime == _JPEG:
        image.save(out, "JPEG", quality=quality)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _pam(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape[:2]
    depth = 3 if pixels.ndim == 3 else 1
    wide = pixels.dtype.itemsize == 2
    header = (f"P7\nWIDTH {width}\nHEIGHT {height}\nDEPTH {depth}\nMAXVAL {65535 if wide else 255}\n"
              f"TUPLTYPE {'RGB' if depth == 3 else 'GRAYSCALE'}\nENDHDR\n").encode("ascii")
    body = pixels.view(np.uint16).astype(">u2").tobytes() if wide else pixels.tobytes()
    return header + body


def render(data: bytes, index: int, kind: str, mime: str, quality: int = 90) -> bytes:
    """The answer body of a rendering route for one DICOM file."""
    return encode(kind_pixels(decode(data, index), kind), mime, quality)
