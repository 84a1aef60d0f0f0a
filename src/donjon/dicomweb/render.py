"""Rendered images: WADO-RS `rendered` / `thumbnail` and WADO-URI images (PS3.18 §8.3.5 and §9).

Grayscale frames go through the Modality LUT (rescale, per frame for enhanced multi-frame objects),
then a VOI window: the `window=center,width,function` parameter (`linear`, `linear-exact`, `sigmoid`,
PS3.3 C.11.2.1.2), else the file's first window, else the frame's range; MONOCHROME1 is inverted.
Color frames are shown as decoded (8 bits). `viewport=vw,vh[,sx,sy,sw,sh]` crops then scales to fit.
Decoding is pydicom's (see `transcode`); what cannot be decoded is `Unrenderable`.

Bad parameters are `BadRenderParameter` (400): a crop region outside the image, a JPEG wider than the
format allows. The output is bounded (`RenderTooLarge`, 413): a viewport may enlarge a frame up to
`MAX_UPSCALED_PIXELS`, never beyond `MaximumDecodedFrameSize`, so a tiny request cannot make the server
allocate gigabytes (`viewport=20000,20000` of a 288x288 image took 387 MB before this bound).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import limits
from ..dicom.pixel_guard import enforce as guard_pixels
from ..errors import OrthancError

JPEG, PNG, GIF = "image/jpeg", "image/png", "image/gif"
_FORMATS = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF"}
THUMBNAIL_SIZE = 128
MAX_UPSCALED_PIXELS = 4096 * 4096  # a viewport may enlarge a smaller frame up to this many pixels
_MAX_SIDE = {JPEG: 65500, GIF: 65535, PNG: 1 << 24}  # what each format (or Pillow's writer) can hold
_MAX_PARAMETER = 1 << 31


class Unrenderable(Exception):
    """No image can be made of this instance or frame."""


class BadRenderParameter(ValueError):
    """A query parameter of a rendering request is malformed (400)."""


class RenderTooLarge(ValueError):
    """The requested output image is over the rendering bound (413)."""


@dataclass(frozen=True)
class RenderOptions:
    window: tuple[float, float, str] | None = None
    viewport: tuple[int, ...] | None = None
    quality: int = 90
    max_size: tuple[int, int] | None = None  # WADO-URI rows/columns


def parse_options(query: dict[str, str], thumbnail: bool = False) -> RenderOptions:
    """The options of a WADO-RS rendering request; BadRenderParameter for any malformed value."""
    window = None
    if query.get("window"):
        parts = query["window"].split(",")
        if len(parts) != 3 or parts[2].strip().lower() not in ("linear", "linear-exact", "sigmoid"):
            raise BadRenderParameter("window must be center,width,linear|linear-exact|sigmoid")
        center, width = finite(parts[0], "window center"), finite(parts[1], "window width")
        if width <= 0:
            raise BadRenderParameter("window width must be positive")
        window = (center, width, parts[2].strip().lower())
    viewport = None
    if query.get("viewport"):
        viewport = parse_viewport(query["viewport"])
    elif thumbnail:
        viewport = (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    quality = 90
    if query.get("quality"):
        text = query["quality"].strip()
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 100:
            raise BadRenderParameter("quality must be an integer between 1 and 100")
        quality = int(text)
    return RenderOptions(window, viewport, quality)


def finite(text: str, what: str) -> float:
    """A finite number of a query parameter (no NaN nor infinity: they would poison the window)."""
    try:
        value = float(text)
    except ValueError:
        raise BadRenderParameter(f"{what} must be a number") from None
    if not math.isfinite(value):
        raise BadRenderParameter(f"{what} must be a finite number")
    return value


def parse_viewport(text: str) -> tuple[int, ...]:
    """`vw,vh[,sx,sy,sw,sh]`: positive output sizes, a non-negative offset, any signed region size."""
    try:
        viewport = tuple(int(finite(x, "viewport")) for x in text.split(","))
    except BadRenderParameter:
        raise BadRenderParameter("viewport must be integers") from None
    if len(viewport) not in (2, 6) or viewport[0] <= 0 or viewport[1] <= 0:
        raise BadRenderParameter("viewport must be vw,vh or vw,vh,sx,sy,sw,sh with vw and vh positive")
    if any(abs(v) >= _MAX_PARAMETER for v in viewport):
        raise BadRenderParameter("viewport values are out of range")
    if len(viewport) == 6 and (viewport[2] < 0 or viewport[3] < 0):
        raise BadRenderParameter("the viewport's offset sx,sy must not be negative")
    return viewport


def negotiate_image(accept: str | None, default: str = JPEG) -> str | None:
    """The image type to answer; None when the client accepts none we can write."""
    from .multipart import parse_accept

    ranges = parse_accept(accept)
    if not ranges:
        return default
    for item in ranges:
        media = item.media
        if media in ("*/*", "image/*"):
            return default
        if media == "image/jpg":
            return JPEG
        if media in _FORMATS:
            return media
        if media == "multipart/related" and item.type_param in _FORMATS:
            return item.type_param
    return None


def _number(item: Any, name: str) -> float | None:
    """First value of a numeric attribute of a pydicom data set or item, None if absent or bad."""
    from pydicom.multival import MultiValue

    value = getattr(item, name, None) if item is not None else None
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _frame_group(ds: Any, index: int, sequence: str) -> Any:
    """The functional group item `sequence` of frame `index` (per-frame first, then shared)."""
    for name, position in (("PerFrameFunctionalGroupsSequence", index), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(name)
        if groups is not None and len(groups) > position:
            item = groups[position].get(sequence)
            if item is not None and len(item) > 0:
                return item[0]
    return None


def _rescale(ds: Any, index: int) -> tuple[float, float]:
    item = _frame_group(ds, index, "PixelValueTransformationSequence")
    slope = _number(item, "RescaleSlope") if item is not None else None
    intercept = _number(item, "RescaleIntercept") if item is not None else None
    if slope is None:
        slope = _number(ds, "RescaleSlope")
    if intercept is None:
        intercept = _number(ds, "RescaleIntercept")
    return (slope if slope else 1.0), (intercept or 0.0)


def _file_window(ds: Any, index: int) -> tuple[float, float, str] | None:
    item = _frame_group(ds, index, "FrameVOILUTSequence")
    for source in (item, ds):
        if source is None:
            continue
        center, width = _number(source, "WindowCenter"), _number(source, "WindowWidth")
        if center is not None and width is not None and width > 0:
            function = str(getattr(source, "VOILUTFunction", "LINEAR") or "LINEAR").strip().lower()
            function = {"linear_exact": "linear-exact"}.get(function, function)
            return center, width, function if function in ("linear", "linear-exact", "sigmoid") else "linear"
    return None


def apply_window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray:
    """PS3.3 C.11.2.1.2 to the 0..255 range."""
    if function == "linear-exact":
        out = (values - center) / width * 255.0 + 127.5
    elif function == "sigmoid":
        out = 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    else:
        if width <= 1:
            out = np.where(values <= center - 0.5, 0.0, 255.0)
        else:
            out = ((values - (center - 0.5)) / (width - 1.0) + 0.5) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def render_frame(data: bytes, syntax: str | None, index: int, options: RenderOptions) -> np.ndarray:
    """Frame `index` (0-based) as 8-bit L or RGB pixels."""
    from pydicom.pixels import pixel_array

    from .transcode import _read

    try:
        ds = _read(data, syntax)
        if "PixelData" not in ds:
            raise Unrenderable("no pixel data")
        count = max(int(ds.get("NumberOfFrames") or 1), 1)
        if not 0 <= index < count:
            raise IndexError(index)
        guard_pixels(ds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = pixel_array(ds, index=index if count > 1 else None)
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut
            arr = apply_color_lut(arr, ds)
    except (Unrenderable, IndexError, OrthancError):
        raise
    except Exception as e:
        raise Unrenderable(str(e)) from None
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        pixels = (arr >> 8 if arr.dtype.itemsize > 1 else arr).astype(np.uint8)[..., :3]
    elif arr.ndim == 2:
        slope, intercept = _rescale(ds, index)
        values = arr.astype(np.float64) * slope + intercept
        window = options.window or _file_window(ds, index)
        if window is None:
            low, high = float(values.min(initial=0)), float(values.max(initial=0))
            window = ((low + high) / 2.0, max(high - low, 1.0), "linear-exact") if high > low else (low, 1.0, "linear")
        pixels = apply_window(values, *window)
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
    else:
        raise Unrenderable(f"unsupported pixel layout {arr.shape}")
    return np.ascontiguousarray(pixels)


def encode(pixels: np.ndarray, mime: str, options: RenderOptions) -> bytes:
    from PIL import Image

    image = Image.fromarray(pixels)
    if options.viewport is not None:
        image = _viewport(image, options.viewport, mime)
    if options.max_size is not None:
        image.thumbnail(options.max_size)
    check_output(image.size, image.size, len(image.getbands()), mime)  # a frame too wide for JPEG
    out = io.BytesIO()
    if mime == JPEG:
        image.save(out, "JPEG", quality=options.quality)
    else:
        image.save(out, _FORMATS[mime])
    return out.getvalue()


def _region(image: Any, sx: int, sy: int, sw: int, sh: int) -> tuple[int, int, int, int]:
    """The crop box of a viewport region (0 size: up to the edge); it must lie inside the image."""
    if sw == 0:
        sw = image.width - sx
    if sh == 0:
        sh = image.height - sy
    box = (min(sx, sx + sw), min(sy, sy + sh), max(sx, sx + sw), max(sy, sy + sh))
    if not (0 <= box[0] < box[2] <= image.width and 0 <= box[1] < box[3] <= image.height):
        raise BadRenderParameter(f"the viewport's region {sx},{sy},{sw},{sh} is not inside the "
                                 f"{image.width}x{image.height} image")
    return box


def check_output(source: tuple[int, int], size: tuple[int, int], channels: int, mime: str) -> None:
    """Refuse an output image the format cannot hold (400) or over the rendering bound (413)."""
    if max(size) > _MAX_SIDE[mime]:
        raise BadRenderParameter(f"{mime} images are at most {_MAX_SIDE[mime]} pixels a side "
                                 f"(asked {size[0]}x{size[1]})")
    pixels = size[0] * size[1]
    budget = limits.current().decoded_frame
    if pixels > max(source[0] * source[1], MAX_UPSCALED_PIXELS) or pixels * channels > budget:
        raise RenderTooLarge(f"a rendered image of {size[0]}x{size[1]} pixels is over the bound "
                             f"(the frame's size, or {MAX_UPSCALED_PIXELS} pixels, and MaximumDecodedFrameSize)")


def _viewport(image: Any, viewport: tuple[int, ...], mime: str) -> Any:
    width, height = viewport[0], viewport[1]
    source = (image.width, image.height)
    box: tuple[int, int, int, int] | None = None
    crop, flip_x, flip_y = source, False, False
    if len(viewport) == 6:
        sx, sy, sw, sh = viewport[2:]
        box = _region(image, sx, sy, sw, sh)
        crop, flip_x, flip_y = (box[2] - box[0], box[3] - box[1]), sw < 0, sh < 0
    scale = min(width / crop[0], height / crop[1])
    size = (max(1, math.floor(crop[0] * scale + 0.5)), max(1, math.floor(crop[1] * scale + 0.5)))
    check_output(source, size, len(image.getbands()), mime)
    if box is not None:
        image = image.crop(box)
        if flip_x:
            image = image.transpose(0)  # FLIP_LEFT_RIGHT
        if flip_y:
            image = image.transpose(1)  # FLIP_TOP_BOTTOM
    return image.resize(size)


def render(data: bytes, syntax: str | None, index: int, mime: str, options: RenderOptions) -> bytes:
    return encode(render_frame(data, syntax, index, options), mime, options)
