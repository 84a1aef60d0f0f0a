from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import ORTHANC, SAMPLES, Server, start_donjon, start_orthanc


@pytest.fixture(scope="session")
def samples():
    if not SAMPLES.is_dir():
        pytest.skip(f"the sample DICOM files are missing ({SAMPLES})")
    return SAMPLES


@pytest.fixture(scope="module")
def donjon() -> Iterator[Server]:
    """A Donjon server shared by the tests of one module (tests wipe what they need)."""
    server = start_donjon()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def orthanc() -> Iterator[Server]:
    """The reference Orthanc 1.10.1, for differential tests."""
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed (apt-get install orthanc); differential tests need it")
    server = start_orthanc()
    yield server
    server.stop()
