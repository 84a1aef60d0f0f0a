"""Secure by default: no network access without users, no built-in credentials, state changes refused
from other origins, and the secrets of peers never in answers, logs or jobs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.faults.support import assert_error
from tests.support.servers import SAMPLES, Server, free_port, start_donjon

PASSWORD = "S3cret-Peer-Passw0rd"
TOKEN = "Bearer T0p-Secret-Header-Value"


def _start_fails(config: dict) -> str:
    with pytest.raises(RuntimeError) as info:
        start_donjon(config)
    return str(info.value)


def test_refuses_to_start_open_to_the_network() -> None:
    message = _start_fails({"RemoteAccessAllowed": True})
    assert "RegisteredUsers" in message and "RemoteAccessAllowed to false" in message, message[-500:]
    message = _start_fails({"RemoteAccessAllowed": True, "AuthenticationEnabled": False,
                            "RegisteredUsers": {"alice": "pw"}})
    assert "AuthenticationEnabled is false" in message, message[-500:]
    message = _start_fails({"RemoteAccessAllowed": True, "AuthenticationEnabled": True})
    assert "no built-in" in message, message[-500:]


def test_no_built_in_credentials() -> None:
    server = start_donjon({"RemoteAccessAllowed": True, "RegisteredUsers": {"alice": "wonderland"}},
                          auth=("alice", "wonderland"))
    try:
        assert server.get("/system").status_code == 200
        for user, password in (("orthanc", "orthanc"), ("alice", "orthanc"), ("admin", "admin")):
            r = httpx.get(f"{server.url}/system", auth=(user, password))
            assert_error(r, 401)
            assert r.headers["www-authenticate"].startswith("Basic")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"StableAge": 1000, "OrthancPeers": {
        "secret": {"Url": f"http://127.0.0.1:{free_port()}/", "Username": "bob", "Password": PASSWORD,
                   "HttpHeaders": {"Authorization": TOKEN}}}})
    s.upload(SAMPLES / "DummyCT.dcm")
    yield s
    s.stop()


def test_cross_origin_state_changes_are_refused(server: Server) -> None:
    instance = server.get("/instances").json()[0]
    own = f"http://127.0.0.1:{server.http_port}"
    hostile = [{"origin": "http://evil.example"}, {"origin": "null"}, {"origin": f"{own}.evil.example"},
               {"referer": "http://evil.example/page.html"}, {"sec-fetch-site": "cross-site"},
               {"sec-fetch-site": "same-site", "origin": own}]
    for headers in hostile:
        assert_error(server.delete(f"/instances/{instance}", headers=headers), 403)
        assert_error(server.post("/tools/find", json={"Level": "Study", "Query": {}}, headers=headers), 403)
        assert_error(server.put(f"/instances/{instance}/metadata/1024", content=b"x", headers=headers), 403)
        # a GET that a cross-site <img> could send, turned into a DELETE by the method override
        assert_error(server.get(f"/instances/{instance}?_method=DELETE", headers=headers), 403)
    assert server.get(f"/instances/{instance}").status_code == 200
    # reads from anywhere, and writes from this origin (the Explorer) or from no browser at all
    assert server.get("/statistics", headers={"origin": "http://evil.example"}).status_code == 200
    for headers in ({}, {"origin": own}, {"referer": f"{own}/app/explorer.html"},
                    {"sec-fetch-site": "same-origin", "origin": own}, {"sec-fetch-site": "none"}):
        r = server.post("/tools/find", json={"Level": "Study", "Query": {}}, headers=headers)
        assert r.status_code == 200, (headers, r.text)


def test_cross_origin_check_can_be_turned_off() -> None:
    server = start_donjon({"CrossOriginCheck": False})
    try:
        r = server.post("/tools/find", json={"Level": "Study", "Query": {}}, headers={"origin": "http://a.example"})
        assert r.status_code == 200
    finally:
        server.stop()


def test_secrets_never_in_answers_logs_or_jobs(server: Server) -> None:
    answers = [server.get(p) for p in ("/peers", "/peers?expand", "/peers/secret", "/peers/secret/configuration",
                                       "/system", "/tools/now", "/jobs?expand")]
    job = server.post("/peers/secret/store", json={"Resources": server.get("/instances").json(),
                                                    "Asynchronous": True})
    assert job.status_code == 200, job.text
    job_id = job.json()["ID"]
    for _ in range(100):
        state = server.get(f"/jobs/{job_id}").json()["State"]
        if state in ("Failure", "Success"):
            break
        time.sleep(0.1)
    answers += [server.get(f"/jobs/{job_id}"), server.get("/jobs?expand"),
                server.post("/peers/secret/system", content=b""), server.get("/peers/secret/system")]
    for r in answers:
        assert PASSWORD not in r.text and "T0p-Secret" not in r.text, (r.request.url, r.text[:500])
    time.sleep(0.5)
    log = server.log()
    assert PASSWORD not in log and "T0p-Secret" not in log
    assert "secret" in server.get("/peers").text  # the peer itself is listed
    for path in (server.workdir / "storage").glob("index*"):  # saved jobs: the index and its WAL
        data = path.read_bytes()
        assert PASSWORD.encode() not in data and b"T0p-Secret" not in data, path


def test_no_route_runs_code_or_writes_outside_the_storage(server: Server, tmp_path) -> None:
    target = tmp_path / "written-by-the-server"
    instance = server.get("/instances").json()[0]
    for method, path, body in (("POST", "/tools/execute-script", f'os.execute("touch {target}")'),
                               ("POST", f"/instances/{instance}/export", str(target)),
                               ("POST", "/lua", "print(1)")):
        r = server.client.request(method, path, content=body.encode())
        assert 400 <= r.status_code < 500, (path, r.status_code)
        assert_error(r, r.status_code)
    assert not target.exists()


def test_dicomweb_jobs_save_no_secret() -> None:
    """The saved DICOMweb client jobs (`SaveJobs`) keep no password, key password nor header value; the
    server's secrets come back from the configuration, the job's own header values are asked again."""
    secrets = ("PW-Secret-111", "Bearer HDR-Secret-222", "KEY-Secret-333", "JOB-Secret-444")
    config = {"StableAge": 1000, "SaveJobs": True, "DicomWeb": {"Servers": {"remote": {
        "Url": f"http://127.0.0.1:{free_port()}/dicom-web/", "Username": "u", "Password": secrets[0],
        "HttpHeaders": {"Authorization": secrets[1]}, "CertificateKeyPassword": secrets[2]}}}}
    server = start_donjon(config)
    try:
        study = server.upload(SAMPLES / "DummyCT.dcm").json()["ParentStudy"]
        jobs = [server.post("/dicom-web/servers/remote/stow",
                            json={"Resources": [study], "HttpHeaders": {"X-Token": secrets[3]},
                                  "Synchronous": False}).json()["ID"],
                server.post("/dicom-web/servers/remote/retrieve",
                            json={"Resources": [{"Study": "1.2.3"}], "HttpHeaders": {"X-Token": secrets[3]},
                                  "Synchronous": False}
                            ).json()["ID"]]
        for job in jobs:
            for _ in range(100):
                if server.get(f"/jobs/{job}").json()["State"] in ("Failure", "Success"):
                    break
                time.sleep(0.1)
        time.sleep(0.5)  # the registry is saved ~100 ms after a change
        answers = [server.get(f"/jobs/{job}").text for job in jobs] + [
            server.get(p).text for p in ("/jobs?expand", "/dicom-web/servers?expand", "/dicom-web/servers/remote")]
        saved = b"".join(p.read_bytes() for p in (server.workdir / "storage").glob("index*"))
    finally:
        server.stop()
    saved += b"".join(p.read_bytes() for p in (server.workdir / "storage").glob("index*"))
    assert b"DicomWebStowClient" in saved and b"X-Token" in saved  # the jobs are saved, header names kept
    for secret in secrets:
        assert all(secret not in text for text in answers), secret
        assert secret.encode() not in saved, secret
        assert secret not in server.log(), secret
    again = start_donjon(config, workdir=server.workdir)  # the jobs come back from the index
    try:
        assert again.get(f"/jobs/{jobs[0]}").json()["Type"] == "DicomWebStowClient"
        assert again.post(f"/jobs/{jobs[0]}/resubmit", content=b"").status_code == 200
        for _ in range(100):
            info = again.get(f"/jobs/{jobs[0]}").json()
            if info["State"] == "Failure":
                break
            time.sleep(0.1)
        assert "X-Token" in info["ErrorDetails"] and "submit the job again" in info["ErrorDetails"], info
    finally:
        again.stop()
