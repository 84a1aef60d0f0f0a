"""Fuzzing target (atheris) of the DICOM parser: `dicom/header.py` and `dicom/parse.py`.

Any input must either parse or be refused with an OrthancError (400 Bad file format); any other
exception, a hang or a memory blow-up is a finding. Run by hand for longer (docs/security.md):

    .venv/bin/python tests/fuzz/fuzz_dicom.py -max_total_time=600 -rss_limit_mb=2048 CORPUS_DIR
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["donjon"]):
    from donjon import limits
    from donjon.dicom import header, parse
    from donjon.errors import OrthancError


def test_one_input(data: bytes) -> None:
    try:
        parsed = parse.parse_instance(data)
    except OrthancError:
        return
    h = parsed.header
    assert h.count <= limits.current().elements, h.count
    if parsed.pixel_data_offset is not None:
        assert 0 <= parsed.pixel_data_offset < len(data)
    try:
        header.scan(data)  # deterministic: the same input parses the same way twice
    except header.MalformedDicom as e:
        raise AssertionError(f"parsed once, refused the second time: {e}") from None


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
