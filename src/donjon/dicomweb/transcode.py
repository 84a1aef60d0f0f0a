"""Transfer syntaxes of WADO-RS answers: what can be converted to what, frames, and the conversions.

Everything goes through pydicom's pluggable codecs (set up in `dicom/decoders.py`): numpy for the
native syntaxes, pydicom's RLE codec (both ways), Pillow for JPEG baseline, pylibjpeg-libjpeg for JPEG
extended, lossless and JPEG-LS (decoding only), pylibjpeg-openjpeg for JPEG 2000 (both ways). A conversion
that is not possible is `Untranscodable`; the routes answer 406 when the client insisted on a syntax.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..dicom.pixel_guard import enforce as guard_pixels
from ..errors import OrthancError

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DEFLATED_LE = "1.2.840.10008.1.2.1.99"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE, DEFLATED_LE, EXPLICIT_BE})
WRITABLE_NATIVE = frozenset({IMPLICIT_LE, EXPLICIT_LE})

# media type of a frame in each transfer syntax (PS3.18 Table 8.7.3-5)
_FRAME_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc", RLE: "image/dicom-rle",
    "1.2.840.10008.1.2.4.100": "video/mpeg", "1.2.840.10008.1.2.4.101": "video/mpeg",
    "1.2.840.10008.1.2.4.102": "video/mp4", "1.2.840.10008.1.2.4.103": "video/mp4",
    "1.2.840.10008.1.2.4.104": "video/mp4", "1.2.840.10008.1.2.4.105": "video/mp4",
    "1.2.840.10008.1.2.4.106": "video/mp4", "1.2.840.10008.1.2.4.107": "video/H265",
    "1.2.840.10008.1.2.4.108": "video/H265",
}
# default transfer syntax of each frame media type (PS3.18 Table 8.7.3-5, "default")
DEFAULT_SYNTAX = {"application/octet-stream": EXPLICIT_LE, "image/jpeg": "1.2.840.10008.1.2.4.70",
                  "image/jls": "1.2.840.10008.1.2.4.80", "image/jp2": "1.2.840.10008.1.2.4.90",
                  "image/jpx": "1.2.840.10008.1.2.4.92", "image/dicom-rle": RLE,
                  "image/jphc": "1.2.840.10008.1.2.4.201", "video/mpeg": "1.2.840.10008.1.2.4.100",
                  "video/mp4": "1.2.840.10008.1.2.4.102", "video/H265": "1.2.840.10008.1.2.4.107"}


log = logging.getLogger(__name__)

class Untranscodable(Exception):
    """The data cannot be turned into the requested transfer syntax here."""


def frame_media_type(syntax: str) -> str:
    return "application/octet-stream" if syntax in NATIVE else _FRAME_TYPES.get(syntax, "application/octet-stream")


def can_decode(syntax: str | None) -> bool:
    if syntax is None or syntax in NATIVE:
        return True
    try:
        from pydicom.pixels import get_decoder
        return bool(get_decoder(syntax).is_available)
    except (NotImplementedError, ValueError, ImportError):
        return False


def can_encode(syntax: str) -> bool:
    if syntax in WRITABLE_NATIVE:
        return True
    try:
        from pydicom.pixels import get_encoder
        return bool(get_encoder(syntax).is_available)
    except (NotImplementedError, ValueError, ImportError):
        return False


def can_transcode(source: str | None, target: str) -> bool:
    return source == target or (can_decode(source) and can_encode(target))


def _read(data: bytes, syntax: str | None):  # type: ignore[no-untyped-def]
    import pydicom
    from pydicom.uid import UID

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    meta = ds.file_meta
    if "TransferSyntaxUID" not in meta:
        meta.TransferSyntaxUID = UID(syntax or IMPLICIT_LE)
    return ds


def _native_pixels(ds) -> None:  # type: ignore[no-untyped-def]
    """Decode the pixel data in place into native little endian (compressed or big endian sources)."""
    from pydicom.uid import UID

    syntax = str(ds.file_meta.TransferSyntaxUID)
    if "PixelData" not in ds:
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
        return
    guard_pixels(ds, whole=True)
    if syntax not in NATIVE:
        ds.decompress()  # Explicit VR Little Endian, YBR converted to RGB as DCMTK does
        return
    if syntax == EXPLICIT_BE:
        arr = ds.pixel_array
        _little_endian(ds)
        ds.PixelData = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()
        ds["PixelData"].VR = "OW" if int(ds.get("BitsAllocated", 8)) > 8 else "OB"
        if int(ds.get("SamplesPerPixel", 1)) > 1:
            ds.PlanarConfiguration = 0  # numpy gives interleaved samples
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)


def _little_endian(ds) -> None:  # type: ignore[no-untyped-def]
    """Decode every element of a big-endian data set, so that it can be written in little endian."""
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                _little_endian(item)
    ds.set_original_encoding(False, True, ds.original_character_set)


def transcode(data: bytes, source: str | None, target: str) -> bytes:
    """The DICOM file `data` (in `source`) written in `target`."""
    if source == target:
        return data
    if not can_transcode(source, target):
        raise Untranscodable(f"{source} -> {target}")
    from pydicom.uid import UID

    try:
        ds = _read(data, source)
        _native_pixels(ds)
        if target in WRITABLE_NATIVE:
            ds.file_meta.TransferSyntaxUID = UID(target)
        else:
            ds.compress(UID(target))
        out = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds.save_as(out, enforce_file_format=True)
        return out.getvalue()
    except Untranscodable:
        raise
    except Exception as e:  # codecs raise anything (RuntimeError, ValueError, NotImplementedError...)
        raise Untranscodable(str(e)) from None


def transcoded_or_as_stored(data: bytes, target: str) -> bytes:
    """The file in `target` if Donjon can convert it, else unchanged: what Orthanc's jobs do with a
    `Transcode` option (peer store, archives, media)."""
    from ..dicom.header import MalformedDicom, scan

    try:
        return transcode(data, scan(data).transfer_syntax, target)
    except (Untranscodable, MalformedDicom) as e:
        log.info("Cannot transcode an instance to %s, it is kept as stored: %s", target, e)
        return data


@dataclass(frozen=True)
class Frames:
    """The frames of one file as stored: raw bytes (native) or the fragments of each frame."""

    syntax: str
    frames: list[bytes]


def stored_frames(data: bytes, syntax: str | None) -> Frames:
    """Split the pixel data into frames without decoding them."""
    from pydicom.encaps import generate_frames

    ds = _read(data, syntax)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    if "PixelData" not in ds:
        return Frames(syntax, [])
    count = max(int(ds.get("NumberOfFrames") or 1), 1)
    if syntax in NATIVE:
        if syntax == EXPLICIT_BE:
            _native_pixels(ds)
            syntax = EXPLICIT_LE
        pixels = ds.PixelData
        rows, columns = int(ds.Rows), int(ds.Columns)
        bits, samples = int(ds.BitsAllocated), int(ds.get("SamplesPerPixel", 1))
        size_bits = rows * columns * samples * bits
        if bits == 1:  # frames are packed bit by bit, not aligned on bytes
            return Frames(syntax, [_bits_frame(pixels, i * size_bits, size_bits) for i in range(count)])
        size = size_bits // 8
        return Frames(syntax, [pixels[i * size:(i + 1) * size] for i in range(count)])
    return Frames(syntax, list(generate_frames(ds.PixelData, number_of_frames=count)))


def _bits_frame(pixels: bytes, start: int, size: int) -> bytes:
    bits = np.unpackbits(np.frombuffer(pixels, dtype=np.uint8), bitorder="little")[start:start + size]
    return np.packbits(bits, bitorder="little").tobytes()


def decoded_frame(data: bytes, syntax: str | None, index: int) -> bytes:
    """Frame `index` decoded to native little-endian bytes (what `application/octet-stream` wants)."""
    from pydicom.pixels import pixel_array

    try:
        ds = _read(data, syntax)
        count = max(int(ds.get("NumberOfFrames") or 1), 1)
        guard_pixels(ds)
        arr = pixel_array(ds, index=index if count > 1 else None)
    except OrthancError:
        raise
    except Exception as e:
        raise Untranscodable(str(e)) from None
    return np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes()


def encoded_frame(data: bytes, syntax: str | None, index: int, target: str) -> bytes:
    """Frame `index` encoded in the compressed `target` (RLE here, more with pylibjpeg)."""
    if not can_encode(target) or target in WRITABLE_NATIVE:
        raise Untranscodable(target)
    from pydicom.encaps import generate_frames
    from pydicom.uid import UID

    try:
        ds = _read(data, syntax)
        _native_pixels(ds)
        count = max(int(ds.get("NumberOfFrames") or 1), 1)
        ds.compress(UID(target))
        return next(iter(list(generate_frames(ds.PixelData, number_of_frames=count))[index:index + 1]))
    except StopIteration:
        raise Untranscodable("no such frame") from None
    except Exception as e:
        raise Untranscodable(str(e)) from None
