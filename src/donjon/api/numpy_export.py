"""`/instances/{id}/numpy` and `/instances/{id}/frames/{n}/numpy`: decoded pixels as a NumPy `.npy` file.

For scripts that want the pixels without decoding DICOM themselves (`numpy.load(io.BytesIO(body))`),
as Orthanc (1.10+) shapes them: an instance is (frames, rows, columns, channels), a frame is (rows,
columns, channels); color (palette images included) is RGB `uint8`; grayscale keeps its stored integer
type, or with `rescale` (the default) becomes `float32` with the Modality LUT's slope and intercept
applied. `?compress` answers a `.npz` file (the array named `arr_0`). Decoding is the one of
`api/rendering.py`'s previews (pydicom's decoders, the same size checks).

Deliberately not as Orthanc 1.10.1: the rescaled values are exact (1.10.1 drops their fractional part:
a slope of 3.77 turns 1 into 3.0), JPEG 2000 is decoded (1.10.1 answers 500), and lossy JPEG may
differ by a unit or two from DCMTK's decoder. Not served: `/series/{id}/numpy` (it needs Orthanc's
slice ordering).
"""

from __future__ import annotations

import io
import re

import numpy as np

from ..errors import EmptyAnswer, ErrorCode, OrthancError
from .app import Api
from .http import Request, Response, Router
from .rendering import NATIVE_SYNTAXES, Undecodable, dicom_bytes, frame_count, guarded_pixels, rgb24

_NUMBER = re.compile(r"[0-9]+")
_PLAIN = {(True, True): "1.2.840.10008.1.2", (False, True): "1.2.840.10008.1.2.1",
          (False, False): "1.2.840.10008.1.2.2", (True, False): "1.2.840.10008.1.2"}


def register(router: Router) -> None:
    router.add("GET", "/instances/{id}/numpy", _instance)
    router.add("GET", "/instances/{id}/frames/{frame}/numpy", _frame)


async def _instance(api: Api, request: Request, id: str) -> Response:
    return await _answer(api, request, id, None)


async def _frame(api: Api, request: Request, id: str, frame: str) -> Response:
    if not _NUMBER.fullmatch(frame):
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE, 'Expected an unsigned integer for the "frame" argument')
    return await _answer(api, request, id, int(frame))


async def _answer(api: Api, request: Request, id: str, frame: int | None) -> Response:
    rescale = request.flag("rescale") if "rescale" in request.query else True
    compress = request.flag("compress")
    data = await api.run(dicom_bytes, api, id)
    body = await api.run(numpy_file, data, frame, rescale, compress)
    return Response(200, body, b"application/octet-stream")


def numpy_file(data: bytes, frame: int | None, rescale: bool, compress: bool) -> bytes:
    pixels = decoded(data, frame, rescale)
    out = io.BytesIO()
    if compress:
        np.savez_compressed(out, pixels)
    else:
        np.save(out, pixels)
    return out.getvalue()


def decoded(data: bytes, frame: int | None, rescale: bool) -> np.ndarray:
    """Every frame (`frame` None) or one frame of the file, shaped and typed as Orthanc does."""
    import pydicom

    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT) from None
    if "PixelData" not in ds:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "The instance has no pixel data")
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax:  # a file stored without its meta header: the encoding pydicom found
        implicit, little = ds.original_encoding
        syntax = _PLAIN[(bool(implicit), bool(little))]
        ds.ensure_file_meta()
        ds.file_meta.TransferSyntaxUID = syntax
    count = frame_count(ds)
    if frame is not None and frame >= count:  # Orthanc's two codes: no such native frame, no such fragment
        raise OrthancError(ErrorCode.PARAMETER_OUT_OF_RANGE if syntax in NATIVE_SYNTAXES else ErrorCode.BAD_FILE_FORMAT)
    try:
        arr = guarded_pixels(ds, syntax, frame if count > 1 else None)
    except Undecodable:
        raise EmptyAnswer(415) from None  # as the previews: a stored file that cannot be decoded
    several = count > 1 and frame is None
    color = arr.ndim == (4 if several else 3) and arr.shape[-1] == 3
    if color:
        arr = rgb24(arr)
    else:
        if arr.dtype.kind not in "iu":
            raise EmptyAnswer(415)
        arr = arr[..., np.newaxis]
        if rescale:
            slope, intercept = _number(ds, "RescaleSlope", 1.0), _number(ds, "RescaleIntercept", 0.0)
            arr = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    if frame is None and not several:
        arr = arr[np.newaxis]
    return np.ascontiguousarray(arr)


def _number(ds: object, keyword: str, default: float) -> float:
    """A decimal string of the file, or `default` when absent, empty or not a finite number."""
    try:
        value = float(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default
    return value if np.isfinite(value) else default
