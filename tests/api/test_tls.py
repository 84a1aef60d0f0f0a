"""HTTPS (`SslEnabled`): a real TLS handshake with a self-signed certificate made by openssl."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

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
