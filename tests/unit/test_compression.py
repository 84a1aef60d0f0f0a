import hashlib

import pytest

from donjon.errors import OrthancError
from donjon.storage.compression import compress, decompress


def test_orthanc_vector(samples):
    data = (samples / "Knee/T1/IM-0001-0001.dcm").read_bytes()
    assert hashlib.md5(data).hexdigest() == "9ec2e9c80403e406d464422ba47afd37"
    stored = compress(data, 6)
    assert stored[:10] == bytes.fromhex("742b0100000000007 89c".replace(" ", ""))
    assert len(stored) == 75248
    assert hashlib.md5(stored).hexdigest() == "9e94a7a75e03b923ccfe8e4565daec61"
    assert decompress(stored) == data


def test_empty_and_corrupted():
    assert compress(b"") == b""
    assert decompress(b"") == b""
    with pytest.raises(OrthancError):
        decompress(b"1234")
    with pytest.raises(OrthancError):
        decompress(compress(b"hello")[:-3] + b"xyz")
    with pytest.raises(OrthancError):
        decompress(b"\x10\x00\x00\x00\x00\x00\x00\x00" + compress(b"hello")[8:])
