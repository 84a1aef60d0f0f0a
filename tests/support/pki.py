"""Throw-away certificates made with the `openssl` command, for HTTPS servers and clients in the tests."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

HAS_OPENSSL = shutil.which("openssl") is not None


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_pki(folder: Path, key_password: str) -> Path:
    """Fill `folder` with:

    * `ca.pem`/`ca.key` and `other-ca.pem`/`other-ca.key`: two CAs;
    * `server.pem`/`server.key`: a certificate for 127.0.0.1/localhost signed by `ca`, and
      `server-combined.pem` (key + certificate, the form of Orthanc's `SslCertificate`);
    * `client.pem`/`client.key`: a client certificate signed by `ca`, the key encrypted with `key_password`;
    * `self-signed.pem`/`self-signed-combined.pem`: a self-signed certificate for 127.0.0.1/localhost,
      its own CA file.
    """
    d = folder
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
                 "-days", "2", "-subj", f"/CN=Donjon test {ca}", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "2", "-extfile", "server.ext", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-keyout", "client.key", "-passout", f"pass:{key_password}",
             "-out", "client.csr", "-subj", "/CN=donjon-client", cwd=d)
    _openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "client.pem", "-days", "2", cwd=d)
    (d / "server-combined.pem").write_text((d / "server.key").read_text() + (d / "server.pem").read_text())
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "self-signed.key", "-out",
             "self-signed.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", cwd=d)
    (d / "self-signed-combined.pem").write_text(
        (d / "self-signed.key").read_text() + (d / "self-signed.pem").read_text())
    return d


def client_context(ca_file: Path, certificate: Path | None = None, key: Path | None = None,
                   key_password: str | None = None) -> ssl.SSLContext:
    """What a test client (e.g. `Server.client`) needs to talk to an HTTPS server of the tests: trust
    `ca_file`, and present a client certificate when the server requires one (`SslVerifyPeers`)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    if certificate is not None:
        context.load_cert_chain(certificate, key, key_password)
    return context
