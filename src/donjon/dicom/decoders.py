"""Donjon's setup of pydicom's pixel decoders: plugin order, and a repair plugin for bad JPEG scans.

pydicom finds the codecs by itself (numpy, its RLE decoder, Pillow, and pylibjpeg with libjpeg and
openjpeg, which are dependencies). Two adjustments make the pictures Orthanc's (DCMTK's):

* JPEG baseline: Pillow (libjpeg-turbo, an IJG decoder as DCMTK's) is tried before pylibjpeg, whose
  chroma upsampling of YBR_FULL_422 differs from DCMTK's by up to 9 levels;
* some writers put a spectral selection other than 0..63 (often Se = 0) in the SOS header of a
  sequential (baseline or extended, Huffman) JPEG frame. The scan is a plain sequential one all the
  same, and DCMTK, hence Orthanc, decodes it with a warning, whereas libjpeg and Pillow refuse it (the
  12-bit sample of 1.2.840.10008.1.2.4.51 is such a file). A last plugin, tried when the others have
  failed, rewrites the spectral selection and approximation fields of each scan to the only values a
  sequential scan can have, and gives the frame to pylibjpeg again.

`register()` does both, once; the pixel guard calls it before anything is decoded, so every decoding
path of Donjon has them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

_SYNTAXES = ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51")
_SEQUENTIAL_HUFFMAN = frozenset({0xC0, 0xC1})  # SOF0 baseline, SOF1 extended
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: markers without a length
_LABEL = "donjon-sequential-scan"
_PYDICOM_DECODERS = "pydicom.pixels.decoders.base"

# pydicom's plugin protocol: what to install when `is_available` is false (shown in its error)
DECODER_DEPENDENCIES = {uid: ("pylibjpeg>=2.0", "pylibjpeg-libjpeg>=2.1") for uid in _SYNTAXES}

_lock = threading.Lock()
_done = False


def is_available(uid: str) -> bool:
    """pydicom's plugin protocol: usable where pylibjpeg decodes the syntax."""
    from pydicom.pixels.decoders import pylibjpeg

    return uid in _SYNTAXES and pylibjpeg.is_available(uid)


def repaired(src: bytes) -> bytes | None:
    """The frame with every scan of a sequential Huffman frame made 0..63, 0/0; None if unchanged."""
    data = bytearray(src)
    if data[:2] != b"\xff\xd8":
        return None
    sequential = False
    changed = False
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            # entropy-coded data: a 0xFF in it is always followed by 0x00 or a marker
            i = data.find(b"\xff", i)
            if i < 0:
                break
            continue
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1  # fill byte
            continue
        if marker == 0x00 or marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xD9:
            break
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > len(data):
            return None
        if marker in _SEQUENTIAL_HUFFMAN:
            sequential = True
        elif marker == 0xDA and sequential:
            components = data[i + 4] if length > 2 else 0
            tail = i + 5 + 2 * components  # Ss, Se, Ah/Al follow the component list
            if tail + 3 <= i + 2 + length and bytes(data[tail:tail + 3]) != b"\x00\x3f\x00":
                data[tail:tail + 3] = b"\x00\x3f\x00"
                changed = True
        i += 2 + length
    return bytes(data) if changed else None


def _decode_frame(src: bytes, runner: Any) -> bytes | bytearray:
    """pydicom's plugin protocol: decode `src` once repaired, or fail as the other plugins did."""
    from pydicom.pixels.decoders import pylibjpeg

    fixed = repaired(src)
    if fixed is None:
        raise ValueError("the JPEG stream has no scan header to repair")
    return pylibjpeg._decode_frame(fixed, runner)


def register() -> None:
    """Pillow first for JPEG baseline; the repair plugin last for baseline and extended (once)."""
    global _done
    if _done:
        return
    with _lock:
        if _done:
            return
        from pydicom.pixels.decoders.base import get_decoder

        for uid in _SYNTAXES:
            decoder = get_decoder(uid)
            if _LABEL not in decoder._available and _LABEL not in decoder._unavailable:
                decoder.add_plugin(_LABEL, (__name__, "_decode_frame"))
        baseline = get_decoder(_SYNTAXES[0])._available
        if "pillow" in baseline:
            first = {"pillow": baseline.pop("pillow")}
            rest = dict(baseline)
            baseline.clear()
            baseline.update(first | rest)
        logging.getLogger(_PYDICOM_DECODERS).addFilter(_quiet_plugin_failures)
        _done = True


def _quiet_plugin_failures(record: logging.LogRecord) -> bool:
    """pydicom logs a traceback at ERROR for each plugin that fails before another one succeeds (here
    every 12-bit frame the repair plugin decodes); a frame no plugin decodes is an exception, answered
    415. So a plugin's failure is shown only with debugging on (`--trace`)."""
    if record.funcName != "_decode_frame":
        return True
    return logging.getLogger(_PYDICOM_DECODERS).isEnabledFor(logging.DEBUG)
