"""Crafted DICOM files: refused with 400 (never a crash), bounded memory, ingest time linear in the
number of elements, and huge claimed images that no rendering route decodes blindly."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pydicom
import pytest

from tests.faults import crafted
from tests.faults.support import MB, alive, assert_error, peak_rss, reset_peak_rss
from tests.support.servers import Server, start_donjon


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"StableAge": 1000, "MaximumDicomElements": 200_000})
    yield s
    s.stop()


def _bounded(server: Server, before: int, budget: int, what: str) -> None:
    grown = peak_rss(server) - before
    assert grown < budget, f"{what}: peak RSS grew by {grown // MB} MB (budget {budget // MB} MB)"


def test_deep_sequences(server: Server) -> None:
    ok = server.post("/instances", content=crafted.deep_sequence(30))
    assert ok.status_code == 200, ok.text
    for depth in (65, 1000, 20_000):
        before = reset_peak_rss(server)
        assert_error(server.post("/instances", content=crafted.deep_sequence(depth)), 400)
        _bounded(server, before, 50 * MB, f"depth {depth}")
    assert alive(server)


def test_huge_element_counts(server: Server) -> None:
    before = reset_peak_rss(server)
    # 2 million empty items: 16 MB on the wire, refused at MaximumDicomElements (200,000 here)
    assert_error(server.post("/instances", content=crafted.many_items(2_000_000)), 400)
    # 64 MB of zeros: every 8 bytes parse as an empty element (0000,0000)
    assert_error(server.post("/instances", content=b"\x00" * (64 * MB)), 400)
    _bounded(server, before, 200 * MB, "huge element counts")
    assert server.post("/instances", content=crafted.many_items(1000)).status_code == 200
    assert alive(server)


def test_lying_lengths(server: Server) -> None:
    before = reset_peak_rss(server)
    for i, data in enumerate(crafted.lying_lengths()):
        r = server.post("/instances", content=data)
        assert_error(r, 400)
        assert r.json()["OrthancStatus"] == 15, (i, r.text)  # BadFileFormat
    _bounded(server, before, 50 * MB, "lying lengths")
    assert alive(server)


def test_ingest_time_is_linear_in_the_number_of_elements(server: Server) -> None:
    """Orthanc 1.10.1 is quadratic here; 10x the elements must cost about 10x, not 100x."""
    def cost(count: int) -> float:
        data = crafted.many_elements(count)
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            r = server.post("/instances", content=data)
            best = min(best, time.perf_counter() - start)
            assert r.status_code == 200, r.text
            server.delete(f"/instances/{r.json()['ID']}")
        return best
    small, large = cost(15_000), cost(150_000)
    assert large < 30 * small + 0.5, (small, large)


def _uids(data: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


@pytest.mark.parametrize("kind", ["native", "native-lie", "rle", "ul-65536"])
def test_huge_claimed_images(server: Server, kind: str) -> None:
    data = {"native": lambda: crafted.huge_image(),
            "native-lie": lambda: crafted.huge_image(4096, 4096),  # under the size limit: length check
            "rle": lambda: crafted.huge_image(rle=True, frames=2),
            "ul-65536": lambda: crafted.huge_image(65536, 65536, rows_vr_ul=True)}[kind]()
    r = server.post("/instances", content=data)
    assert r.status_code == 200, r.text
    instance = r.json()["ID"]
    study, series, sop = _uids(data)
    wado = f"/dicom-web/studies/{study}/series/{series}/instances/{sop}"
    routes = [f"/instances/{instance}/{k}" for k in ("preview", "image-uint8", "image-uint16", "image-int16",
                                                    "matlab", "numpy", "rendered")]
    routes += [f"/instances/{instance}/frames/0/{k}" for k in ("preview", "raw", "image-uint16", "rendered")]
    routes += [f"/instances/{instance}/frames", f"{wado}/rendered", f"{wado}/frames/1", f"{wado}/frames/1/rendered",
               f"{wado}/thumbnail", f"/dicom-web/studies/{study}/rendered"]
    for route in routes:
        before = reset_peak_rss(server)
        for accept in ("", "image/jpeg", "application/octet-stream", "multipart/related; type=application/octet-stream"):
            r = server.get(route, headers={"accept": accept} if accept else {})
            assert r.status_code < 500, (route, accept, r.status_code, r.text[:200])
            if r.status_code >= 400:
                assert_error(r, 400, 404, 406, 413, 415)
        _bounded(server, before, 100 * MB, route)
    assert alive(server)
