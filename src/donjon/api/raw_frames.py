"""`/instances/{id}/frames/{frame}/raw` and `raw.gz`: one frame's pixel data as stored, not decoded.

As Orthanc: the frame's bytes of a native syntax, or its compressed fragments joined for an
encapsulated one, typed `image/jpeg` for baseline JPEG, `image/jp2` for JPEG 2000 and
`application/octet-stream` for everything else; `raw.gz` is the same bytes gzipped. Frames count from
0; a number past the last frame (or negative) is Orthanc's 400 "Parameter out of range", a frame that
is no number an empty 404.
"""

from __future__ import annotations

import gzip
import io
import re

from pydicom import dcmread
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError

from ..errors import EmptyAnswer, ErrorCode, OrthancError
from .app import Api
from .http import Request, Response, Router
from .rendering import dicom_bytes

_MIME = {"1.2.840.10008.1.2.4.50": b"image/jpeg", "1.2.840.10008.1.2.4.90": b"image/jp2",
         "1.2.840.10008.1.2.4.91": b"image/jp2"}
_BINARY = b"application/octet-stream"
_NUMBER = re.compile(r"[+-]?[0-9]+")


def register(router: Router) -> None:
    router.add("GET", "/instances/{id}/frames/{frame}/raw", _raw)
    router.add("GET", "/instances/{id}/frames/{frame}/raw.gz", _raw_gz)


async def _raw(api: Api, request: Request, id: str, frame: str) -> Response:
    index = _frame_number(frame)
    data = await api.run(dicom_bytes, api, id)
    body, mime = await api.run(raw_frame, data, index)
    return Response(200, body, mime)


async def _raw_gz(api: Api, request: Request, id: str, frame: str) -> Response:
    index = _frame_number(frame)
    data = await api.run(dicom_bytes, api, id)
    body, _ = await api.run(raw_frame, data, index)
    return Response(200, await api.run(gzip.compress, body), b"application/gzip")


def _frame_number(text: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise EmptyAnswer(404)
    return int(text)


def raw_frame(data: bytes, index: int) -> tuple[bytes, bytes]:
    """The bytes of frame `index` and their MIME type."""
    try:
        ds = dcmread(io.BytesIO(data), force=True)
        pixels = ds.get("PixelData")
        syntax = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
        frames = int(ds.get("NumberOfFrames") or 1)
    except (InvalidDicomError, ValueError, TypeError, AttributeError, EOFError):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT) from None
    if index < 0 or index >= frames:  # checked first, as Orthanc does
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE)
    if pixels is None:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The instance has no pixel data")
    if ds["PixelData"].is_undefined_length:  # encapsulated: the fragments of that frame
        try:
            return get_frame(pixels, index, number_of_frames=frames), _MIME.get(syntax, _BINARY)
        except (ValueError, KeyError) as e:
            raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Cannot read frame {index}: {e}") from None
    size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel") or 1) * int(ds.BitsAllocated) // 8
    if size <= 0 or (index + 1) * size > len(pixels):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The pixel data is shorter than its frames")
    return bytes(pixels[index * size:(index + 1) * size]), _BINARY
