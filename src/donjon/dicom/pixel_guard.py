"""Pixel buffers checked before any decoder allocates them.

A file may claim Rows x Columns = 65536 x 65536 with a few bytes of pixel data: a decoder that trusts
the header allocates gigabytes (Orthanc 1.10.1 dies on `/preview` of such a file). Here the geometry is
checked first: for native syntaxes against the real length of Pixel Data, and for every syntax
against `MaximumDecodedFrameSize` (what a decoded frame may cost in memory).
"""

from __future__ import annotations

from typing import Any

from .. import limits
from . import decoders

NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                             "1.2.840.10008.1.2.1.99"})


class PixelsRefused(ValueError):
    """The pixel data cannot be decoded safely; `too_large` when only the size limit is in the way."""

    def __init__(self, message: str, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


def _int(ds: Any, name: str, default: int | None = None) -> int:
    value = ds.get(name, default)
    if value is None or value == "":
        if default is None:
            raise PixelsRefused(f"no {name}")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise PixelsRefused(f"bad {name}") from None
    return number


def frame_size(ds: Any) -> tuple[int, int]:
    """(bytes of one decoded frame, number of frames), from a pydicom data set's header only."""
    rows, columns = _int(ds, "Rows"), _int(ds, "Columns")
    samples = _int(ds, "SamplesPerPixel", 1)
    bits = _int(ds, "BitsAllocated", 8)
    frames = _int(ds, "NumberOfFrames", 1) or 1
    if rows <= 0 or columns <= 0 or not 1 <= samples <= 4 or bits not in (1, 8, 16, 32, 64) or frames < 0:
        raise PixelsRefused("bad image geometry")
    if bits == 1:
        return (rows * columns * samples + 7) // 8, frames
    return rows * columns * samples * (bits // 8), frames


def check(ds: Any, syntax: str | None = None, limit: int | None = None) -> None:
    """Raise PixelsRefused unless decoding the pixel data of `ds` is bounded and consistent."""
    if "PixelData" not in ds:
        return
    decoders.register()  # every decoding path comes here first
    size, frames = frame_size(ds)
    budget = limit if limit is not None else limits.current().decoded_frame
    if size > budget:
        raise PixelsRefused(f"a decoded frame would take {size} bytes (MaximumDecodedFrameSize: {budget})",
                            too_large=True)
    if syntax is None:
        meta = getattr(ds, "file_meta", None)
        syntax = str(getattr(meta, "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
    if syntax in NATIVE_SYNTAXES:
        element = ds["PixelData"]
        length = len(element.value) if element.value is not None else 0
        ybr422 = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "YBR_FULL_422"
        needed = size * max(frames, 1)
        if ybr422:
            needed = needed * 2 // 3
        if _int(ds, "BitsAllocated", 8) == 1:
            needed = (_int(ds, "Rows") * _int(ds, "Columns") * _int(ds, "SamplesPerPixel", 1) * max(frames, 1)
                      + 7) // 8
        if length < needed:
            raise PixelsRefused(f"Pixel Data has {length} bytes where the header implies {needed}")


def enforce(ds: Any, whole: bool = False) -> None:
    """`check` for callers that map failures themselves: over the limit is Orthanc's 413 error, any
    other refusal a PixelsRefused (a ValueError). `whole`: every frame is decoded at once."""
    budget = limits.current().decoded_frame
    try:
        if whole and "PixelData" in ds:
            size, frames = frame_size(ds)
            if size * max(frames, 1) > budget:
                raise PixelsRefused(f"decoding every frame would take {size * max(frames, 1)} bytes "
                                    f"(MaximumDecodedFrameSize: {budget})", too_large=True)
        check(ds, limit=budget)
    except PixelsRefused as e:
        if e.too_large:
            raise limits.too_large(str(e)) from None
        raise
