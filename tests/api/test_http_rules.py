"""Cross-cutting HTTP rules: security defaults, authentication, errors, method override, paths."""

from __future__ import annotations

import pytest

from tests.support.servers import Server, start_donjon


def test_root_redirects_to_the_explorer(donjon: Server) -> None:
    r = donjon.get("/", follow_redirects=False)
    assert r.status_code in (301, 302, 307)
    assert r.headers["location"].endswith("app/explorer.html")


def test_unknown_route_is_a_json_404(donjon: Server) -> None:
    r = donjon.get("/nothing/here")
    assert r.status_code == 404
    body = r.json()
    assert body == {"HttpError": "Not Found", "HttpStatus": 404, "Message": "Unknown resource", "Method": "GET",
                    "OrthancError": "Unknown resource", "OrthancStatus": 17, "Uri": "/nothing/here"}
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-content-type-options"] == "nosniff"


def test_nul_byte_in_the_path_never_reaches_a_handler(donjon: Server, samples) -> None:
    iid = donjon.upload(samples / "DummyCT.dcm").json()["ID"]
    r = donjon.delete(f"/instances/{iid}%00.dcm")
    assert r.status_code == 400
    assert donjon.get(f"/instances/{iid}").status_code == 200


def test_method_override(donjon: Server, samples) -> None:
    iid = donjon.upload(samples / "DummyCT.dcm").json()["ID"]
    r = donjon.post(f"/instances/{iid}", headers={"X-HTTP-Method-Override": "DELETE"})
    assert r.status_code == 200
    assert donjon.get(f"/instances/{iid}").status_code == 404
    iid = donjon.upload(samples / "DummyCT.dcm").json()["ID"]
    assert donjon.get(f"/instances/{iid}?_method=delete").status_code == 200
    assert donjon.get(f"/instances/{iid}").status_code == 404


def test_empty_path_components_are_ignored(donjon: Server) -> None:
    assert donjon.get("/statistics//").status_code == 200
    assert donjon.get("/tools//now/").status_code == 200


def test_describe_errors_off() -> None:
    server = start_donjon({"HttpDescribeErrors": False})
    try:
        r = server.get("/nothing")
        assert r.status_code == 404 and r.content == b""
    finally:
        server.stop()


@pytest.fixture(scope="module")
def secured() -> Server:
    server = start_donjon({"AuthenticationEnabled": True, "RegisteredUsers": {"alice": "s3cret"}},
                          auth=("alice", "s3cret"))
    yield server
    server.stop()


def test_authentication_required(secured: Server, samples) -> None:
    import httpx

    anonymous = httpx.get(secured.url + "/system")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="Orthanc Secure Area"'
    assert anonymous.json()["HttpStatus"] == 401  # every error has a JSON body
    wrong = httpx.get(secured.url + "/system", auth=("alice", "nope"))
    assert wrong.status_code == 401
    assert secured.get("/system").status_code == 200
    iid = secured.upload(samples / "DummyCT.dcm").json()["ID"]
    md = secured.get(f"/instances/{iid}/metadata/HttpUsername")
    if md.status_code != 404:
        assert md.text == "alice"
    # the password never shows up in answers or logs
    assert "s3cret" not in secured.get("/system").text
    assert "s3cret" not in secured.log()


def test_remote_access_default_is_loopback_only() -> None:
    """With RemoteAccessAllowed false, a non-loopback client gets 401 even without authentication."""
    import socket

    import httpx

    server = start_donjon()
    try:
        # find a non-loopback address of this host to connect from
        addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        addrs -= {"127.0.0.1"}
        if not addrs:
            pytest.skip("this host has no non-loopback IPv4 address to test remote access from")
        addr = sorted(addrs)[0]
        r = httpx.get(f"http://{addr}:{server.http_port}/system")
        assert r.status_code == 401
        assert httpx.get(server.url + "/system").status_code == 200
    finally:
        server.stop()


def test_remote_access_turns_authentication_on() -> None:
    import httpx

    server = start_donjon({"RemoteAccessAllowed": True, "RegisteredUsers": {"bob": "pw"}}, auth=("bob", "pw"))
    try:
        assert httpx.get(server.url + "/system").status_code == 401
        assert server.get("/system").json()["IsHttpServerSecure"] is True
    finally:
        server.stop()


def test_system_fields(donjon: Server) -> None:
    s = donjon.get("/system").json()
    for key in ("ApiVersion", "DatabaseVersion", "DicomAet", "DicomPort", "HttpPort", "IsHttpServerSecure",
                "Name", "PluginsEnabled", "Version", "StorageCompression", "OverwriteInstances",
                "MaximumStorageSize", "MaximumStorageMode", "MaximumPatientCount", "UserMetadata", "HasLabels",
                "CheckRevisions", "MainDicomTags"):
        assert key in s
    assert s["DicomAet"] == "ORTHANC"


def test_tools(donjon: Server) -> None:
    now = donjon.get("/tools/now")
    assert now.headers["content-type"].startswith("text/plain")
    assert len(now.text) == 15 and now.text[8] == "T"
    uid = donjon.get("/tools/generate-uid?level=series").text
    assert uid.startswith("1.2.276.0.7230010.3.1.3.")
    assert len(donjon.get("/tools/generate-uid?level=patient").text) == 36


def test_reset_and_shutdown(samples) -> None:
    server = start_donjon()
    try:
        iid = server.upload(samples / "DummyCT.dcm").json()["ID"]
        assert server.post("/tools/reset").json() == {}
        assert server.get(f"/instances/{iid}").status_code == 200  # same index after the reset
        assert server.post("/tools/shutdown").json() == {}
        assert server.process.wait(timeout=15) == 0
    finally:
        server.stop()


def test_http_compression(samples) -> None:
    import gzip as gz

    import httpx

    server = start_donjon({"HttpCompressionEnabled": True})
    try:
        for path in sorted((samples / "Knee/T1").iterdir())[:8]:
            server.upload(path)
        raw = httpx.get(server.url + "/instances?expand", headers={"Accept-Encoding": "gzip"})
        assert raw.headers["content-encoding"] == "gzip"
        assert len(raw.json()) == 8
        plain = httpx.get(server.url + "/instances?expand", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        small = httpx.get(server.url + "/statistics", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers  # under 2048 bytes
        iid = server.get("/instances").json()[0]
        dicom = httpx.get(server.url + f"/instances/{iid}/file", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in dicom.headers  # DICOM files are never compressed
        assert gz.compress(b"x")  # the module is importable in the test environment
    finally:
        server.stop()
