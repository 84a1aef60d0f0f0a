"""`numpy_export.decoded`: a malformed Modality LUT value falls back to the identity, never a 500."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from donjon.api.numpy_export import numpy_file
from tests.support.servers import SAMPLES


@pytest.mark.parametrize("value", [b"ab", b"na", b"  "])
def test_malformed_rescale_slope_is_ignored(value: bytes) -> None:
    if not (SAMPLES / "SignedCT.dcm").exists():
        pytest.skip(f"the sample DICOM files are missing ({SAMPLES})")
    data = (SAMPLES / "SignedCT.dcm").read_bytes()
    tag = b"\x28\x00\x53\x10DS"  # (0028,1053) RescaleSlope, explicit VR little endian
    pos = data.find(tag)
    length = struct.unpack_from("<H", data, pos + 6)[0]
    crafted = data[:pos + 8] + value.ljust(length)[:length] + data[pos + 8 + length:]
    good = np.load(io.BytesIO(numpy_file(data, None, True, False)))
    bad = np.load(io.BytesIO(numpy_file(crafted, None, True, False)))
    assert bad.dtype == np.float32 and np.array_equal(bad, good)  # the file's slope is 1
