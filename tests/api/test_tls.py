"""HTTPS (`SslEnabled`): a real TLS handshake with a self-signed certificate made by openssl, and
Donjon -> Donjon peers where the target serves HTTPS itself (CA file, self-signed certificate, wrong CA,
verification off, authentication, client certificates required by `SslVerifyPeers`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.pki import client_context, make_pki
from tests.support.servers import SAMPLES, Server, free_port, start_donjon

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is not installed")


def _certificate(folder: Path) -> Path:
    key, crt = folder / "key.pem", folder / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    pem = folder / "certificate.pem"  # Orthanc's SslCertificate holds the certificate and its key
    pem.write_bytes(crt.read_bytes() + key.read_bytes())
    return pem


def _start(folder: Path, config: dict[str, object]) -> subprocess.Popen[bytes]:
    (folder / "config.json").write_text(json.dumps(config))
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - the child process keeps it
    return subprocess.Popen([sys.executable, "-m", "donjon", str(folder / "config.json")], cwd=folder,
                            stdout=log, stderr=subprocess.STDOUT)


def test_https_serves_the_api_and_refuses_plain_http() -> None:
    folder = Path(tempfile.mkdtemp(prefix="donjon-tls-"))
    port = free_port()
    process = _start(folder, {"HttpPort": port, "DicomServerEnabled": False, "SslEnabled": True,
                              "SslCertificate": str(_certificate(folder)),
                              "StorageDirectory": str(folder / "storage")})
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(verify=False, timeout=5) as client:
            while True:
                try:
                    r = client.get(f"https://127.0.0.1:{port}/system")
                    break
                except httpx.TransportError:
                    assert process.poll() is None and time.monotonic() < deadline, (folder / "server.log").read_text()
                    time.sleep(0.1)
            assert r.status_code == 200 and r.json()["DicomAet"] == "ORTHANC"
        with pytest.raises(httpx.TransportError):  # the TLS port does not speak plain HTTP
            httpx.get(f"http://127.0.0.1:{port}/system", timeout=5)
        with pytest.raises(httpx.ConnectError):  # and the certificate is not trusted by default
            httpx.get(f"https://127.0.0.1:{port}/system", timeout=5)
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_a_missing_certificate_stops_the_start_with_a_clear_message() -> None:
    folder = Path(tempfile.mkdtemp(prefix="donjon-tls-"))
    process = _start(folder, {"HttpPort": free_port(), "DicomServerEnabled": False, "SslEnabled": True,
                              "SslCertificate": str(folder / "missing.pem"),
                              "StorageDirectory": str(folder / "storage")})
    assert process.wait(timeout=30) != 0
    assert "missing.pem" in (folder / "server.log").read_text()


# -- Donjon -> Donjon, the target serving HTTPS itself ---------------------------------------------------------

USER, PASSWORD, KEY_PASSWORD = "alice", "tls-Pw-31", "client-key-pw"
REFUSED = (500, 9, "libCURL error: SSL peer certificate or SSH remote key was not OK")
FILES = ("Knee/T1/IM-0001-0001.dcm", "Knee/T1/IM-0001-0002.dcm", "Knee/T2/IM-0001-0001.dcm")  # two series


def _error(r: httpx.Response) -> tuple[int, int, str | None]:
    body = r.json()
    return r.status_code, body["OrthancStatus"], body.get("Details")


def _wait_job(server: Server, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while (info := server.get(f"/jobs/{job_id}").json())["State"] not in ("Success", "Failure"):
        assert time.monotonic() < deadline, info
        time.sleep(0.02)
    return dict(info)


def _same_instances(source: Server, target: Server) -> None:
    """Every instance of `source` is on `target` with the same identifier and the same bytes."""
    ids = sorted(source.get("/instances").json())
    assert sorted(target.get("/instances").json()) == ids and len(ids) == len(FILES)
    for instance in ids:
        assert target.get(f"/instances/{instance}/file").content == source.get(f"/instances/{instance}/file").content



@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"), KEY_PASSWORD)


@pytest.fixture(scope="module")
def targets(pki: Path, samples: Path) -> Iterator[dict[str, Server]]:
    """Donjons serving HTTPS themselves (`SslEnabled`): a CA-signed certificate with authentication, a
    self-signed certificate, and a CA-signed one requiring client certificates (`SslVerifyPeers`)."""
    tls = {"DicomServerEnabled": False, "SslEnabled": True, "SslCertificate": str(pki / "server-combined.pem")}
    servers: dict[str, Server] = {}
    try:
        servers["signed"] = start_donjon(
            {**tls, "AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD}},
            auth=(USER, PASSWORD), verify=client_context(pki / "ca.pem"))
        servers["self-signed"] = start_donjon({**tls, "SslCertificate": str(pki / "self-signed-combined.pem")},
                                              verify=client_context(pki / "self-signed.pem"))
        servers["mutual"] = start_donjon(
            {**tls, "SslVerifyPeers": True, "SslTrustedClientCertificates": str(pki / "ca.pem")},
            verify=client_context(pki / "ca.pem", pki / "client.pem", pki / "client.key", KEY_PASSWORD))
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def _source(pki: Path, targets: dict[str, Server], options: dict[str, Any]) -> tuple[Server, str]:
    """A plain-HTTP Donjon holding FILES (one study), with every target as a peer; returns it and the study."""
    client = {"CertificateFile": str(pki / "client.pem"), "CertificateKeyFile": str(pki / "client.key"),
              "CertificateKeyPassword": KEY_PASSWORD}
    source = start_donjon({**options, "DicomServerEnabled": False, "HttpTimeout": 10, "OrthancPeers": {
        "signed": [targets["signed"].url, USER, PASSWORD],
        "wrong-password": [targets["signed"].url, USER, "not-it"],
        "self-signed": [targets["self-signed"].url],
        "mutual": {"Url": targets["mutual"].url, **client},
        "mutual-without-certificate": [targets["mutual"].url]}})
    for name in FILES:
        assert source.upload(SAMPLES / name).status_code == 200
    (study,) = source.get("/studies").json()
    return source, study


def _store_works(source: Server, target: Server, peer: str, study: str) -> None:
    """Synchronous store, then (target emptied) the same as a job with gzip: everything arrives."""
    assert source.get(f"/peers/{peer}/system").json() == target.get("/system").json()
    target.wipe()
    content = source.post(f"/peers/{peer}/store", json={"Resources": [study], "Synchronous": True}).json()
    assert (content["InstancesCount"], content["FailedInstancesCount"]) == (len(FILES), 0)
    _same_instances(source, target)
    target.wipe()
    job = source.post(f"/peers/{peer}/store", json={"Resources": [study], "Asynchronous": True,
                                                    "Compress": True}).json()
    info = _wait_job(source, job["ID"])
    assert (info["State"], info["Type"], info["Content"]["InstancesCount"]) == \
        ("Success", "OrthancPeerStore", len(FILES))
    _same_instances(source, target)


def _store_refused(source: Server, target: Server, peer: str, study: str, details: str | None = REFUSED[2]) -> None:
    """`/system` and a store job fail with libcurl's text, and nothing arrives."""
    target.wipe()
    r = source.get(f"/peers/{peer}/system")
    assert _error(r)[:2] == REFUSED[:2] and (details is None or _error(r)[2] == details)
    job = source.post(f"/peers/{peer}/store", json={"Resources": [study], "Asynchronous": True}).json()
    info = _wait_job(source, job["ID"])
    assert (info["State"], info["ErrorCode"]) == ("Failure", 9)
    assert details is None or info["ErrorDetails"] == details
    assert target.get("/instances").json() == []


def test_peer_serving_https_itself_with_authentication_and_client_certificates(
        pki: Path, targets: dict[str, Server]) -> None:
    source, study = _source(pki, targets, {"HttpsCACertificates": str(pki / "ca.pem")})
    try:
        _store_works(source, targets["signed"], "signed", study)
        # the TLS session is fine, the password is not: Orthanc's answers for a 401 of the peer
        assert _error(source.get("/peers/wrong-password/system"))[:2] == (500, 2005)
        assert _error(source.post("/peers/wrong-password/store", content=study))[:2] == (500, 9)
        # mutual TLS: the target's SslVerifyPeers accepts our client certificate (encrypted key) ...
        _store_works(source, targets["mutual"], "mutual", study)
        # ... and the handshake fails without one
        _store_refused(source, targets["mutual"], "mutual-without-certificate", study, details=None)
        # a self-signed certificate is not trusted through ca.pem
        _store_refused(source, targets["self-signed"], "self-signed", study)
        for secret in (PASSWORD, KEY_PASSWORD):
            assert secret not in source.log() and secret not in source.get("/jobs?expand").text
    finally:
        source.stop()


@pytest.mark.parametrize(("options", "trusted"), [
    ({"HttpsCACertificates": "self-signed.pem"}, {"self-signed"}),  # the self-signed certificate as CA file
    ({"HttpsCACertificates": "other-ca.pem"}, set()),  # the wrong CA
    ({}, set()),  # the system's CAs know neither
    ({"HttpsVerifyPeers": False}, {"signed", "self-signed"}),
])
def test_peer_certificate_verification(pki: Path, targets: dict[str, Server], options: dict[str, Any],
                                       trusted: set[str]) -> None:
    if "HttpsCACertificates" in options:
        options = {"HttpsCACertificates": str(pki / options["HttpsCACertificates"])}
    source, study = _source(pki, targets, options)
    try:
        for peer in ("signed", "self-signed"):
            if peer in trusted:
                _store_works(source, targets[peer], peer, study)
            else:
                _store_refused(source, targets[peer], peer, study)
    finally:
        source.stop()
