"""Differential tests and Donjon's deliberate error improvements (docs/security.md, compatibility.md).

* Orthanc 1.10.1 answers some errors (unknown resources, 405...) with an empty body; Donjon gives every
  error Orthanc's JSON error body.
* Orthanc 1.10.1 answers some client mistakes (e.g. an unknown tag name, code 27) with a 500; Donjon
  answers a 4xx with the same Orthanc error code.
Comparisons undo exactly these two differences, after checking that Donjon's answer is well formed.
"""

from __future__ import annotations

import json

import httpx


def _error(r: httpx.Response) -> dict[str, object] | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and "OrthancStatus" in body else None


def as_orthanc_1_10(orthanc: httpx.Response, donjon: httpx.Response) -> httpx.Response:
    """`donjon` as Orthanc 1.10.1 would have sent it, where it differs only by the rules above."""
    if orthanc.status_code < 400 or donjon.status_code < 400 or not donjon.content:
        return donjon
    body = _error(donjon)
    if body is None:
        return donjon
    assert body["HttpStatus"] == donjon.status_code and isinstance(body["OrthancStatus"], int), body
    assert donjon.headers["content-type"].startswith("application/json")
    assert donjon.headers["x-content-type-options"] == "nosniff"
    headers = [(k, v) for k, v in donjon.headers.items() if k not in ("content-type", "content-length")]
    if not orthanc.content and donjon.status_code == orthanc.status_code:
        return httpx.Response(donjon.status_code, headers=headers, content=b"", request=donjon.request)
    theirs = _error(orthanc)
    if orthanc.status_code == 500 and donjon.status_code < 500 and theirs is not None \
            and theirs["OrthancStatus"] == body["OrthancStatus"]:
        as_500 = {**body, "HttpStatus": 500, "HttpError": theirs["HttpError"]}
        return httpx.Response(500, headers=[*headers, ("content-type", "application/json")],
                              content=json.dumps(as_500).encode(), request=donjon.request)
    return donjon
