"""Never a 5xx for a bad query string: every GET route with hostile values of the arguments it takes
(non-numeric, negative, overflowing, NaN, infinity, Unicode digits, empty, NUL, repeated, unknown), the
DICOMweb and WADO-URI rendering parameters included; errors carry Orthanc's JSON body, the server stays
healthy and the peak memory of the whole walk stays small."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pydicom
import pytest

from donjon.api import build_router
from donjon.openapi import route_arguments
from tests.faults.support import MB, alive, assert_error, peak_rss, reset_peak_rss
from tests.support.servers import SAMPLES, Server, start_donjon

FLAIR = "Brainix/Flair/IM-0001-0001.dcm"
_VALUES = ["-1", "abc", "9" * 40, "1e400", "nan", "inf", "\u00b2", "", "\x00", "0"]
_LISTS = {"/patients", "/studies", "/series", "/instances", "/changes", "/exports", "/jobs"}
_QIDO = ["limit", "offset", "includefield", "fuzzymatching", "PatientName", "StudyDate", "00100020"]
_RENDER = ["viewport", "window", "quality"]
_VIEWPORTS = ["100,100,0,0,-20000,-20000", "66000,660,0,0,100,1", "20000,20000", "65000,65000", "0,0", "1,1,0",
              "1,1,-5,-5,1,1", "1,1,0,0,0,99999", "1,1,288,288,0,0", "1e400,1", "99999999999999999999,1", "1,nan"]
_WINDOWS = ["1,2", "1,0,linear", "1,-5,sigmoid", "nan,1,linear", "1,inf,linear", "1e400,1,linear", "1,1,cubic"]
_WADO = ["rows", "columns", "frameNumber", "imageQuality", "windowCenter", "windowWidth", "contentType",
         "transferSyntax", "seriesUID", "studyUID"]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"StableAge": 1000})
    for name in ("DummyCT.dcm", FLAIR):
        assert s.upload(SAMPLES / name).status_code == 200
    yield s
    s.stop()


def _targets(server: Server) -> dict[str, str]:
    """What each path parameter becomes: the IDs and UIDs of the FLAIR image, else a harmless name."""
    ds = pydicom.dcmread(SAMPLES / FLAIR, stop_before_pixels=True)
    instance = next(i for i in server.get("/instances").json()
                    if server.get(f"/instances/{i}/simplified-tags").json().get("SOPInstanceUID") == ds.SOPInstanceUID)
    info = server.get(f"/instances/{instance}").json()
    series = server.get(f"/series/{info['ParentSeries']}").json()
    study = server.get(f"/studies/{series['ParentStudy']}").json()
    return {"instances": instance, "series": info["ParentSeries"], "studies": series["ParentStudy"],
            "patients": study["ParentPatient"], "attachments": "dicom", "metadata": "1024", "labels": "x",
            "{study}": str(ds.StudyInstanceUID), "{series}": str(ds.SeriesInstanceUID),
            "{instance}": str(ds.SOPInstanceUID), "{frames}": "1", "{frame}": "0", "{path:path}": "00100010",
            "uid": str(ds.SOPInstanceUID), "wado": "wado?requestType=WADO&objectUID=" + str(ds.SOPInstanceUID)}


def _concrete(pattern: str, targets: dict[str, str]) -> str:
    parts = [p for p in pattern.split("/") if p]
    out: list[str] = []
    for i, part in enumerate(parts):
        if part in targets:
            out.append(targets[part])
        elif part.startswith("{"):
            out.append(targets.get(parts[i - 1] if i else "", "nope"))
        else:
            out.append(part)
    return "/" + "/".join(out)


def _routes() -> list[str]:
    skipped = ("/app", "/{dwroot}", "/plugins/", "/tools/create-")  # static files; synchronous archive jobs
    return sorted({p for m, p in build_router().patterns if m == "GET" and not p.startswith(skipped)})


def _arguments(pattern: str) -> list[str]:
    names = list(route_arguments("GET", pattern))
    if pattern in _LISTS:
        names += ["limit", "since", "expand"]
    if pattern.startswith("/dicom-web/") and not pattern.endswith(("/rendered", "/thumbnail")):
        names += _QIDO
    if pattern.endswith(("/rendered", "/thumbnail")):
        names += _RENDER
    if pattern == "/wado":
        names += _WADO
    return sorted(set(names))


def _check(r: Any, failures: list[tuple[Any, ...]]) -> None:
    if r.status_code >= 500:
        failures.append((r.status_code, str(r.request.url)[:200], r.text[:200]))
    elif r.status_code >= 400 and r.status_code != 406:  # 406: an image the client does not accept
        assert_error(r, r.status_code)


def test_every_get_route_with_hostile_query_strings(server: Server) -> None:
    targets = _targets(server)
    routes = _routes()
    assert len(routes) > 100
    failures: list[tuple[Any, ...]] = []
    before = reset_peak_rss(server)
    start = time.monotonic()
    for pattern in routes:
        url = _concrete(pattern, targets)
        glue = "&" if "?" in url else "?"
        for name in _arguments(pattern):
            for value in _VALUES:
                _check(server.get(f"{url}{glue}{urlencode({name: value})}", timeout=30), failures)
            _check(server.get(f"{url}{glue}{name}=1&{name}=-1&{name}=x", timeout=30), failures)  # repeated
        _check(server.get(f"{url}{glue}no-such-argument=1&%00=%00&=x&&", timeout=30), failures)  # unknown
    assert not failures, failures
    assert time.monotonic() - start < 120
    assert peak_rss(server) - before < 64 * MB, (peak_rss(server) - before) // MB
    assert alive(server)


def test_rendering_parameters(server: Server) -> None:
    """The classes that gave 500s (a crop far outside the image, a JPEG wider than 65500 pixels, WADO-URI
    sizes <= 0) and the unbounded upscale: 400 or 413 with Orthanc's body, in bounded memory."""
    t = _targets(server)
    rendered = f"/dicom-web/studies/{t['{study}']}/series/{t['{series}']}/instances/{t['{instance}']}"
    before = reset_peak_rss(server)
    for route in ("rendered", "thumbnail", "frames/1/rendered", "frames/1/thumbnail"):
        for viewport in _VIEWPORTS:
            for accept in ("image/jpeg", "image/png", "image/gif"):
                r = server.get(f"{rendered}/{route}", params={"viewport": viewport}, headers={"accept": accept})
                assert_error(r, 400, 413)
        for window in _WINDOWS:
            assert_error(server.get(f"{rendered}/{route}", params={"window": window}), 400)
    for route in (f"/dicom-web/studies/{t['{study}']}/rendered", f"/dicom-web/studies/{t['{study}']}/thumbnail"):
        assert_error(server.get(route, params={"viewport": _VIEWPORTS[0]}), 400)
    wado = f"/wado?requestType=WADO&objectUID={t['uid']}"
    for query in ("rows=-1", "columns=0", "rows=0&columns=0", "rows=abc", "columns=1e400", "rows=\u00b2",
                  "rows=" + "9" * 40, "frameNumber=0", "frameNumber=-1", "frameNumber=99", "frameNumber=" + "9" * 40,
                  "imageQuality=0", "imageQuality=101", "imageQuality=abc", "windowCenter=1&windowWidth=0",
                  "windowCenter=nan&windowWidth=1", "windowCenter=1&windowWidth=inf", "windowCenter=x&windowWidth=1"):
        for content in ("image/jpeg", "image/png", "image/gif"):
            assert_error(server.get(f"{wado}&{query}&contentType={content}"), 400)
    assert peak_rss(server) - before < 32 * MB, (peak_rss(server) - before) // MB
    assert server.get(f"{wado}&rows=64&columns=32").status_code == 200
    assert alive(server)
