"""`/peers` and the OrthancPeerStore job: configuration forms, CRUD, what travels on the wire (seen by a
recording fake peer in this process), Donjon -> Donjon with authentication, faults and secrets.

Behaviours of Orthanc 1.10.1 these tests pin (checked live): the public view, `Peer` in the job
Content, no `Authorization` unless both username and password are set, libcurl's texts in
`ErrorDetails`, 500 + code 2005 from `/system` when the peer answers 401.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from donjon.jobs.peer_store import PARALLEL_SENDS
from tests.support.index import global_property
from tests.support.servers import SAMPLES, Server, free_port, start_donjon

KNEE = "Knee"  # one study, two series (T1, T2), 50 files
PASSWORD = "s3cret-Pa55"
HEADER_VALUE = "token-4f8a1c"
KEY_PASSWORD = "key-pw-77"


# -- a fake peer that records what it receives ---------------------------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Recorder:
    """An HTTP/1.1 server (keep-alive) answering `status`, optionally late or failing after N uploads."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.status = 200
        self.delay = 0.0
        self.fail_after: int | None = None
        self.answer = b'{"Status": "Success"}'
        self.lock = threading.Lock()
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with recorder.lock:
                    recorder.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                              body, self.client_address[1]))
                    uploads = sum(1 for s in recorder.seen if s.method == "POST")
                    status = recorder.status
                    if recorder.fail_after is not None and uploads > recorder.fail_after:
                        status = 500
                if recorder.delay:
                    time.sleep(recorder.delay)
                data = recorder.answer if status == 200 else b"{}"
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self, status: int = 200, delay: float = 0.0, fail_after: int | None = None) -> None:
        with self.lock:
            self.seen.clear()
            self.status, self.delay, self.fail_after = status, delay, fail_after

    def uploads(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def error(r: Any) -> tuple[int, int, str | None]:
    body = r.json()
    return r.status_code, body["OrthancStatus"], body.get("Details")


def wait_job(server: Server, job_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = server.get(f"/jobs/{job_id}").json()
        if info["State"] in ("Success", "Failure"):
            return info
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end")


def knee_files() -> list[Path]:
    return sorted(p for p in (SAMPLES / KNEE).rglob("*.dcm"))


@pytest.fixture(scope="module")
def rec() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.close()


@pytest.fixture(scope="module")
def a(rec: Recorder, samples: Any) -> Iterator[Server]:
    """Donjon with the Knee study and peers in both configuration forms (two pointing to `rec`)."""
    server = start_donjon({
        "HttpTimeout": 5,
        "OrthancPeers": {
            "short": [rec.url],
            "creds": [rec.url + "/base", "alice", PASSWORD],
            "full": {"Url": rec.url, "Username": "bob", "Password": PASSWORD,
                     "HttpHeaders": {"X-Token": HEADER_VALUE}, "RemoteSelf": "me", "Flag": True, "Num": 3,
                     "Timeout": 3},
            "userOnly": {"URL": rec.url, "Username": "carol"},
            "down": [f"http://127.0.0.1:{free_port()}"],
        }})
    for path in knee_files():
        assert server.upload(path).status_code == 200
    yield server
    server.stop()


def knee_study(server: Server) -> str:
    import pydicom

    uid = pydicom.dcmread(knee_files()[0], stop_before_pixels=True).StudyInstanceUID
    (found,) = server.post("/tools/lookup", content=str(uid)).json()
    return str(found["ID"])


# -- configuration and CRUD --------------------------------------------------------------------------------

def test_list_expand_and_configuration(a: Server, rec: Recorder) -> None:
    assert a.get("/peers").json() == ["creds", "down", "full", "short", "userOnly"]
    expanded = a.get("/peers?expand").json()
    assert expanded["short"] == {"HttpHeaders": [], "Pkcs11": False, "Timeout": 0, "Url": rec.url + "/"}
    assert expanded["creds"] == {"HttpHeaders": [], "Password": None, "Pkcs11": False, "Timeout": 0,
                                 "Url": rec.url + "/base/", "Username": "alice"}
    assert expanded["full"] == {"Flag": "1", "HttpHeaders": ["X-Token"], "Num": "3", "Password": None,
                                "Pkcs11": False, "RemoteSelf": "me", "Timeout": 3, "Url": rec.url + "/",
                                "Username": "bob"}
    assert a.get("/peers?expand=false").json() == a.get("/peers").json()
    assert a.get("/peers/full/configuration").json() == expanded["full"]
    assert a.get("/peers/full").json() == ["configuration", "store", "store-straight", "system"]
    r = a.get("/peers/nope")
    assert (r.status_code, r.json()["HttpStatus"]) == (404, 404)
    assert error(a.get("/peers/nope/configuration")) == (404, 17, "No peer with symbolic name: nope")


@pytest.mark.parametrize(("body", "expected"), [
    (["ftp://host/"], (400, 15, "Bad URL: ftp://host/")),
    ([""], (400, 15, "Empty URL")),
    ({"Url": ""}, (400, 15, "Empty URL")),
    (["http://h", "user"], (400, 15)),
    (["http://h", "a", "b", "c"], (400, 15)),
    ({"Url": "http://h", "Password": "p"}, (400, 15)),
    ({"Url": "http://h", "HttpHeaders": {"a": 1}}, (400, 15)),
    ({"Url": "http://h", "Pkcs11": "yes"}, (400, 15, "Boolean value expected in field: Pkcs11")),
    ({"Url": "http://h", "Timeout": -1}, (400, 15, "Unsigned integer value expected in field: Timeout")),
    ({"Url": "http://h", "X": [1]}, (400, 15, "User-defined properties associated with a Web service must be "
                                               "strings: X")),
    ({"Url": "http://h", "CertificateFile": "/nonexistent.pem"},
     (404, 13, "Cannot open certificate file: /nonexistent.pem")),
    ("http://h", (400, 15)),
])
def test_bad_definitions(a: Server, body: Any, expected: tuple[Any, ...]) -> None:
    r = a.put("/peers/tmp", json=body)
    assert error(r)[:len(expected)] == expected
    assert "tmp" not in a.get("/peers").json()


def test_put_replace_delete_and_names(a: Server, rec: Recorder) -> None:
    r = a.put("/peers/tmp", json={"URL": "http://h:8043", "Username": "u", "Password": "p", "Timeout": 2})
    assert (r.status_code, r.text) == (200, "")
    conf = a.get("/peers/tmp/configuration").json()
    assert (conf["Url"], conf["Username"], conf["Timeout"]) == ("http://h:8043/", "u", 2)
    assert a.put("/peers/tmp", json=["http://other"]).status_code == 200
    assert a.get("/peers/tmp/configuration").json()["Url"] == "http://other/"
    assert a.delete("/peers/tmp").status_code == 200
    assert error(a.delete("/peers/tmp")) == (404, 7, "Unknown Orthanc peer: tmp")
    for bad in ("bad name", "bad.name", "été"):
        assert error(a.put(f"/peers/{bad}", json=["http://h"]))[:2] == (400, 15)
    assert a.put("/peers/a/b", json=["http://h"]).status_code in (404, 405)
    r = a.put("/peers/tmp", content=b"not json")
    assert error(r)[:2] == (400, 15)
    assert "tmp" not in a.get("/peers").json()
    bare = rec.url.removeprefix("http://")  # no scheme: kept as given, reached over HTTP (as libcurl does)
    assert a.put("/peers/bare", json=[bare]).status_code == 200
    assert a.get("/peers/bare/configuration").json()["Url"] == bare + "/"
    assert a.get("/peers/bare/system").status_code == 200
    a.delete("/peers/bare")


def test_peers_in_database(tmp_path: Path, rec: Recorder) -> None:
    config = {"OrthancPeersInDatabase": True, "OrthancPeers": {"ignored": ["http://ignored"]}}
    s = start_donjon(config, workdir=tmp_path)
    try:
        assert s.get("/peers").json() == []
        assert s.put("/peers/kept", json={"Url": rec.url, "Username": "u", "Password": PASSWORD,
                                         "HttpHeaders": {"X-Token": HEADER_VALUE}}).status_code == 200
        assert s.put("/peers/gone", json=[rec.url]).status_code == 200
        assert s.put("/peers/short", json=[rec.url, "u", "p"]).status_code == 200
        assert s.delete("/peers/gone").status_code == 200
    finally:
        s.stop()
    text = global_property(s, 21)  # Orthanc's format of property 21
    assert text is not None
    assert json.loads(text) == {
        "kept": {"HttpHeaders": {"X-Token": HEADER_VALUE}, "Password": PASSWORD, "Pkcs11": False, "Timeout": 0,
                 "Url": rec.url + "/", "Username": "u"},
        "short": [rec.url + "/", "u", "p"]}
    s = start_donjon(config, workdir=tmp_path)
    try:
        assert s.get("/peers").json() == ["kept", "short"]
        rec.reset()
        assert s.get("/peers/kept/system").status_code == 200
        (seen,) = rec.seen
        assert seen.headers["x-token"] == HEADER_VALUE and seen.headers["authorization"].startswith("Basic ")
    finally:
        s.stop()


# -- what travels -----------------------------------------------------------------------------------------

def test_wire_of_a_store(a: Server, rec: Recorder) -> None:
    """One POST /instances per instance over one kept-alive connection, credentials and headers of the peer."""
    rec.reset()
    study = knee_study(a)
    content = a.post("/peers/full/store", content=study).json()
    files = {p.read_bytes() for p in knee_files()}
    uploads = rec.uploads()
    assert len(uploads) == 50 and {u.body for u in uploads} == files
    assert {u.path for u in uploads} == {"/instances"}
    assert len({u.client_port for u in uploads}) <= PARALLEL_SENDS  # kept-alive connections, one per sender
    for u in uploads:
        assert u.headers["authorization"] == "Basic Ym9iOnMzY3JldC1QYTU1"  # bob:s3cret-Pa55
        assert u.headers["x-token"] == HEADER_VALUE
        assert "content-encoding" not in u.headers and "expect" not in u.headers
    assert content == {"Compress": False, "Description": "REST API", "FailedInstancesCount": 0,
                       "InstancesCount": 50, "ParentResources": [study],
                       "Peer": {"Flag": "1", "HttpHeaders": {"X-Token": None}, "Num": "3", "Pkcs11": False,
                                "RemoteSelf": "me", "Timeout": 3, "Url": rec.url + "/", "Username": "bob"},
                       "Size": str(sum(len(f) for f in files)), "SizeMB": sum(len(f) for f in files) // 2**20}


def test_compress_and_url_path(a: Server, rec: Recorder) -> None:
    rec.reset()
    first = knee_files()[0]
    instance = a.post("/tools/lookup", content=_sop(first)).json()[0]["ID"]
    content = a.post("/peers/creds/store", json={"Resources": [instance], "Compress": True}).json()
    (u,) = rec.uploads()
    assert u.path == "/base/instances" and u.headers["content-encoding"] == "gzip"
    assert gzip.decompress(u.body) == first.read_bytes()
    assert content["Compress"] is True and content["Size"] == str(len(u.body))
    assert content["Peer"] == [rec.url + "/base/", "alice", ""]


def test_no_authorization_without_password(a: Server, rec: Recorder) -> None:
    rec.reset()
    assert a.get("/peers/userOnly/system").json() == {"Status": "Success"}
    (seen,) = rec.seen
    assert seen.path == "/system" and "authorization" not in seen.headers


def test_transcode(a: Server, rec: Recorder) -> None:
    rec.reset()
    jpeg = SAMPLES / "TransferSyntaxes" / "1.2.840.10008.1.2.4.50.dcm"
    instance = a.upload(jpeg).json()["ID"]
    content = a.post("/peers/short/store", json={"Resources": [instance],
                                                 "Transcode": "1.2.840.10008.1.2.1"}).json()
    assert content["Transcode"] == "1.2.840.10008.1.2.1"
    (u,) = rec.uploads()
    assert b"1.2.840.10008.1.2.1\x00" in u.body[:400] and u.body != jpeg.read_bytes()
    assert error(a.post("/peers/short/store", json={"Resources": [instance], "Transcode": "1.2.3"})) == \
        (400, 15, "Unknown transfer syntax UID: 1.2.3")
    a.delete(f"/instances/{instance}")


@pytest.mark.parametrize(("body", "expected"), [
    (b"", (400, 15, "Must provide a JSON value")),
    (b"{}", (400, 15, 'Missing field in JSON: "Resources"')),
    (b'["zz"]', (400, 15, "This string is not a valid Orthanc identifier: zz")),
    (b'["0a9b3153-2512774b-2d9580de-1fc3dcf6-00000000"]', (404, 17, None)),
    (b'{"Resources": [], "Compress": 1}', (400, 15, "Boolean value expected in field: Compress")),
    (b'{"Resources": [], "Transcode": 5}', (400, 15, "String value expected in field: Transcode")),
    (b'{"Resources": [], "Priority": "x"}', (400, 15, "Integer value expected in field: Priority")),
])
def test_bad_store_bodies(a: Server, body: bytes, expected: tuple[Any, ...]) -> None:
    assert error(a.post("/peers/short/store", content=body)) == expected


def test_store_body_forms_and_unknown_peer(a: Server, rec: Recorder) -> None:
    study = knee_study(a)
    for body in (f"  {study}\n".encode(), json.dumps(study).encode(), json.dumps([study]).encode()):
        rec.reset()
        assert a.post("/peers/short/store", content=body).json()["InstancesCount"] == 50
        assert len(rec.uploads()) == 50
    empty = a.post("/peers/short/store", content=b"[]").json()
    assert (empty["InstancesCount"], empty["Size"], "ParentResources" in empty) == (0, "0", False)
    assert error(a.post("/peers/nope/store", content=study)) == (404, 17, "No peer with symbolic name: nope")


# -- faults -----------------------------------------------------------------------------------------------

def test_unreachable_peer(a: Server) -> None:
    study = knee_study(a)
    assert error(a.post("/peers/down/store", content=study)) == (500, 9, "libCURL error: Couldn't connect to server")
    assert error(a.get("/peers/down/system")) == (500, 9, "libCURL error: Couldn't connect to server")
    assert error(a.get("/peers/nope/system")) == (404, 17, "No peer with symbolic name: nope")
    permissive = a.post("/peers/down/store", json={"Resources": [study], "Permissive": True}).json()
    assert (permissive["InstancesCount"], permissive["FailedInstancesCount"]) == (50, 0)  # Orthanc's quirk
    a.put("/peers/nohost", json=["http://nonexistent.invalid:8042/"])
    assert error(a.get("/peers/nohost/system")) == (500, 9, "libCURL error: Couldn't resolve host name")
    a.delete("/peers/nohost")


def test_peer_refusing_credentials(a: Server, rec: Recorder) -> None:
    rec.reset(status=401)
    job = a.post("/peers/creds/store", json={"Resources": [knee_study(a)], "Asynchronous": True}).json()
    info = wait_job(a, job["ID"])
    assert (info["State"], info["ErrorCode"], info["ErrorDescription"]) == \
        ("Failure", 9, "Error in the network protocol")
    assert info["ErrorDetails"] == f"HTTP status 401 (Unauthorized) after POST request on: {rec.url}/base/instances"
    assert info["Content"]["Size"] != "0" and len(rec.uploads()) == PARALLEL_SENDS  # the first batch
    r = a.get("/peers/creds/system")  # Orthanc cannot pass a 401 on: 500, code 2005
    assert error(r)[:2] == (500, 2005)
    rec.reset(status=500)
    r = a.get("/peers/creds/system")
    assert (r.status_code, r.json()["HttpStatus"]) == (500, 500)


def test_peer_failing_midway(a: Server, rec: Recorder) -> None:
    rec.reset(fail_after=5)
    job = a.post("/peers/short/store", json={"Resources": [knee_study(a)], "Asynchronous": True}).json()
    info = wait_job(a, job["ID"])
    assert (info["State"], info["ErrorCode"]) == ("Failure", 9)
    assert info["Progress"] in (8, 10)  # 4 or 5 of 50 (4 are sent at a time; the 6th upload failed)
    assert len(rec.uploads()) == 8
    rec.reset()
    assert a.post(f"/jobs/{job['ID']}/resubmit").json() == {}
    again = wait_job(a, job["ID"])
    assert (again["State"], again["Progress"], len(rec.uploads())) == ("Success", 100, 50)


def test_peer_timeout(a: Server, rec: Recorder) -> None:
    rec.reset(delay=2.5)
    a.put("/peers/slow", json={"Url": rec.url, "Timeout": 1})
    try:
        t0 = time.monotonic()
        assert error(a.get("/peers/slow/system")) == (500, 9, "libCURL error: Timeout was reached")
        study = knee_study(a)
        assert error(a.post("/peers/slow/store", content=study)) == (500, 9, "libCURL error: Timeout was reached")
        assert time.monotonic() - t0 < 5
    finally:
        rec.reset()
        a.delete("/peers/slow")


def test_http_proxy(rec: Recorder, samples: Any) -> None:
    """`HttpProxy`: requests to the peer go through the proxy (here the recorder, seeing absolute URIs)."""
    dead = free_port()
    s = start_donjon({"HttpProxy": rec.url.removeprefix("http://"), "OrthancPeers": {"p": [f"http://127.0.0.1:{dead}"]}})
    try:
        rec.reset()
        assert s.get("/peers/p/system").status_code == 200
        (seen,) = rec.seen
        assert seen.path == f"http://127.0.0.1:{dead}/system"
    finally:
        s.stop()


def test_store_straight(a: Server, rec: Recorder) -> None:
    rec.reset()
    data = knee_files()[0].read_bytes()
    r = a.post("/peers/short/store-straight", content=data)
    assert (r.status_code, r.json()) == (200, {"Status": "Success"})
    (u,) = rec.uploads()
    assert u.body == data and u.path == "/instances"
    rec.reset(status=500)
    assert error(a.post("/peers/short/store-straight", content=data)) == \
        (500, 9, "Cannot send DICOM to remote peer: short")
    rec.reset()
    assert error(a.post("/peers/down/store-straight", content=data)) == \
        (500, 9, "libCURL error: Couldn't connect to server")


def test_log_exported_resources(rec: Recorder) -> None:
    s = start_donjon({"LogExportedResources": True, "OrthancPeers": {"p": [rec.url]}})
    try:
        instance = s.upload(knee_files()[0]).json()["ID"]
        s.post("/peers/p/store", content=instance)
        (export,) = s.get("/exports").json()["Exports"]
        assert (export["RemoteModality"], export["ID"], export["ResourceType"]) == ("p", instance, "Instance")
    finally:
        s.stop()


# -- Donjon -> Donjon, secrets, saved jobs ----------------------------------------------------------------

def test_donjon_to_donjon_with_authentication(a: Server) -> None:
    b = start_donjon({"AuthenticationEnabled": True, "RegisteredUsers": {"alice": PASSWORD}}, auth=("alice", PASSWORD))
    try:
        assert a.put("/peers/b", json=[b.url, "alice", PASSWORD]).status_code == 200
        assert a.put("/peers/b-wrong", json=[b.url, "alice", "nope"]).status_code == 200
        assert a.get("/peers/b/system").json()["ApiVersion"] == b.get("/system").json()["ApiVersion"]
        study = knee_study(a)
        assert error(a.post("/peers/b-wrong/store", content=study))[:2] == (500, 9)
        assert b.get("/instances").json() == []
        content = a.post("/peers/b/store", json={"Resources": [study], "Compress": True}).json()
        assert (content["InstancesCount"], content["FailedInstancesCount"]) == (50, 0)
        assert sorted(b.get("/instances").json()) == sorted(a.get("/instances").json())
        assert b.get(f"/studies/{study}").json()["MainDicomTags"] == a.get(f"/studies/{study}").json()["MainDicomTags"]
        for instance in a.get("/instances").json()[:10]:
            assert b.get(f"/instances/{instance}/file").content == a.get(f"/instances/{instance}/file").content
        straight = a.post("/peers/b/store-straight", content=knee_files()[0].read_bytes()).json()
        assert straight["Status"] == "AlreadyStored"
    finally:
        a.delete("/peers/b")
        a.delete("/peers/b-wrong")
        b.stop()


def test_secrets_never_leak(a: Server) -> None:
    """Answers, job contents and the log never show a password, a key password or a header value."""
    a.put("/peers/cert", json={"Url": "https://127.0.0.1:1/", "CertificateFile": __file__,
                               "CertificateKeyFile": __file__, "CertificateKeyPassword": KEY_PASSWORD})
    try:
        texts = [a.get("/peers?expand").text, a.get("/jobs?expand").text, a.get("/peers/cert/configuration").text,
                 a.get("/peers/cert/system").text, a.get("/peers/full/configuration").text]
        assert "libCURL error: Problem with the local SSL certificate" in texts[3]
        texts.append(a.log())
        for text in texts:
            for secret in (PASSWORD, KEY_PASSWORD, HEADER_VALUE):
                assert secret not in text
    finally:
        a.delete("/peers/cert")


def test_saved_job_comes_back_without_secrets_on_disk(tmp_path: Path, rec: Recorder) -> None:
    """A paused peer job survives a restart; the saved registry holds no password, which is taken again
    from the peer of the same name."""
    config = {"OrthancPeers": {"p": [rec.url, "alice", PASSWORD]}, "ConcurrentJobs": 1}
    s = start_donjon(config, workdir=tmp_path)
    try:
        for path in knee_files()[:6]:
            s.upload(path)
        rec.reset(delay=0.3)
        job = s.post("/peers/p/store", json={"Resources": s.get("/instances").json(), "Asynchronous": True,
                                             "Priority": 4}).json()
        deadline = time.monotonic() + 10
        while not rec.uploads() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert s.post(f"/jobs/{job['ID']}/pause").json() == {}
        deadline = time.monotonic() + 10
        while s.get(f"/jobs/{job['ID']}").json()["State"] != "Paused" and time.monotonic() < deadline:
            time.sleep(0.05)
        before = s.get(f"/jobs/{job['ID']}").json()
        assert before["State"] == "Paused" and 0 < before["Progress"] < 100
    finally:
        s.stop()
    for path in (tmp_path / "storage").glob("index*"):
        assert PASSWORD.encode() not in path.read_bytes()
    rec.reset()
    s = start_donjon(config, workdir=tmp_path)
    try:
        again = s.get(f"/jobs/{job['ID']}").json()
        assert (again["State"], again["Priority"], again["Content"]) == ("Paused", 4, before["Content"])
        assert s.post(f"/jobs/{job['ID']}/resume").json() == {}
        done = wait_job(s, job["ID"])
        assert done["State"] == "Success" and done["Content"]["InstancesCount"] == 6
        sent_before = round(before["Progress"] * 6 / 100)
        assert len(rec.uploads()) == 6 - sent_before  # went on from the saved position
        assert all(u.headers.get("authorization") for u in rec.uploads())
    finally:
        s.stop()


def _sop(path: Path) -> bytes:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID).encode()


def test_running_job_goes_on_after_a_restart(tmp_path: Path, rec: Recorder) -> None:
    """At shutdown the sends in flight end normally: the job is saved as running, not failed, and goes on."""
    config = {"OrthancPeers": {"p": [rec.url]}, "ConcurrentJobs": 1}
    s = start_donjon(config, workdir=tmp_path)
    try:
        for path in knee_files()[:12]:
            s.upload(path)
        rec.reset(delay=0.4)
        job = s.post("/peers/p/store", json={"Resources": s.get("/instances").json(), "Asynchronous": True}).json()
        deadline = time.monotonic() + 10
        while not rec.uploads() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        s.stop()
    assert len(rec.uploads()) < 12
    rec.reset()
    s = start_donjon(config, workdir=tmp_path)
    try:
        done = wait_job(s, job["ID"])
        assert (done["State"], done["Content"]["InstancesCount"]) == ("Success", 12)
        assert 0 < len(rec.uploads()) < 12  # only what was left
    finally:
        s.stop()
