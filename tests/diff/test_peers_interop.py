"""Peers with real servers: Donjon -> Orthanc 1.10.1 and Orthanc -> Donjon (with and without
authentication), the same REST answers and job contents as Orthanc, and HTTPS peers behind a TLS
terminator using a throw-away CA made with the `openssl` command (CA file, wrong CA, verification off,
client certificates), with Orthanc as HTTPS client and server (behind the terminator).

`DONJON_PEERS_BENCH=1` also measures a 500-instance CT study sent Orthanc -> Orthanc, Donjon -> Donjon,
Donjon -> Orthanc and Orthanc -> Donjon (figures printed as Markdown rows, see docs/peers.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_peers import Recorder, error, wait_job
from tests.support.pki import HAS_OPENSSL, make_pki
from tests.support.servers import ORTHANC, SAMPLES, Server, free_port, start_donjon, start_orthanc

needs_orthanc = pytest.mark.skipif(ORTHANC is None, reason="Orthanc 1.10.1 is not installed")
USER, PASSWORD = "alice", "interop-Pw1"
KEY_PASSWORD = "client-key-pw"


def files_of(folder: str) -> list[Path]:
    return sorted((SAMPLES / folder).rglob("*.dcm"))


def upload(server: Server, files: list[Path]) -> None:
    for path in files:
        assert server.upload(path).status_code == 200


def same_content(source: Server, target: Server) -> None:
    """Every instance of `source` is on `target`, with the same identifiers, tags and bytes."""
    ids = sorted(source.get("/instances").json())
    assert sorted(target.get("/instances").json()) == ids
    assert sorted(target.get("/series").json()) == sorted(source.get("/series").json())
    for study in source.get("/studies").json():
        assert target.get(f"/studies/{study}").json()["MainDicomTags"] == \
            source.get(f"/studies/{study}").json()["MainDicomTags"]
    for instance in ids:
        assert target.get(f"/instances/{instance}/file").content == source.get(f"/instances/{instance}/file").content


def with_auth(server: Server) -> Server:
    server.client.auth = httpx.BasicAuth(USER, PASSWORD)
    return server


# -- Orthanc <-> Donjon --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed() -> Iterator[tuple[Server, Server]]:
    """Donjon and Orthanc, each the other's peer, no authentication."""
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed")
    d, o = start_donjon(), start_orthanc()
    assert d.put("/peers/orthanc", json=[o.url]).status_code == 200
    assert o.put("/peers/donjon", json=[d.url]).status_code == 200
    yield d, o
    d.stop()
    o.stop()


@needs_orthanc
def test_donjon_to_orthanc(mixed: tuple[Server, Server]) -> None:
    d, o = mixed
    d.wipe(), o.wipe()
    upload(d, files_of("Knee"))
    (study,) = d.get("/studies").json()
    content = d.post("/peers/orthanc/store", json={"Resources": [study]}).json()
    assert (content["InstancesCount"], content["FailedInstancesCount"], content["Peer"]) == (50, 0, [o.url + "/"])
    same_content(d, o)


@needs_orthanc
def test_orthanc_to_donjon_compressed(mixed: tuple[Server, Server]) -> None:
    d, o = mixed
    d.wipe(), o.wipe()
    upload(o, files_of("Brainix"))
    (study,) = o.get("/studies").json()
    content = o.post("/peers/donjon/store", json={"Resources": [study], "Compress": True}).json()
    assert (content["InstancesCount"], content["Compress"]) == (44, True)
    same_content(o, d)


@needs_orthanc
def test_system_and_store_straight_both_ways(mixed: tuple[Server, Server]) -> None:
    d, o = mixed
    assert d.get("/peers/orthanc/system").json() == o.get("/system").json()
    assert o.get("/peers/donjon/system").json() == d.get("/system").json()
    d.wipe(), o.wipe()
    data = files_of("Knix")[0].read_bytes()
    to_orthanc = d.post("/peers/orthanc/store-straight", content=data).json()
    to_donjon = o.post("/peers/donjon/store-straight", content=data).json()
    assert to_orthanc == to_donjon
    assert to_orthanc["Status"] == "Success"


@needs_orthanc
def test_authentication_both_ways() -> None:
    secure = {"AuthenticationEnabled": True, "RegisteredUsers": {USER: PASSWORD}}
    d, o = start_donjon(secure, auth=(USER, PASSWORD)), with_auth(start_orthanc(secure))
    try:
        for server, other in ((d, o), (o, d)):
            assert server.put("/peers/other", json=[other.url, USER, PASSWORD]).status_code == 200
            assert server.put("/peers/wrong", json={"Url": other.url, "Username": USER, "Password": "nope"}
                              ).status_code == 200
        upload(d, files_of("Knee/T1"))
        upload(o, files_of("Knix"))
        (d_study,), (o_study,) = d.get("/studies").json(), o.get("/studies").json()
        # wrong password: the job fails with code 9 on both sides, and /system cannot pass the 401 on
        for server, study in ((d, d_study), (o, o_study)):
            assert error(server.post("/peers/wrong/store", content=study))[:2] == (500, 9)
            assert error(server.get("/peers/wrong/system"))[:2] == (500, 2005)
        assert d.post("/peers/other/store", content=d_study).json()["InstancesCount"] == len(files_of("Knee/T1"))
        assert o.post("/peers/other/store", content=o_study).json()["InstancesCount"] == len(files_of("Knix"))
        assert set(o.get("/studies").json()) == set(d.get("/studies").json()) == {d_study, o_study}
        for instance in d.get("/instances").json():
            assert o.get(f"/instances/{instance}/file").content == d.get(f"/instances/{instance}/file").content
        assert d.get("/peers/other/system").json()["Name"] == o.get("/system").json()["Name"]
        assert o.get("/peers/other/system").json()["ApiVersion"] == d.get("/system").json()["ApiVersion"]
    finally:
        d.stop()
        o.stop()


# -- the same answers as Orthanc ----------------------------------------------------------------------------

DEFINITIONS: dict[str, Any] = {
    "short": ["http://127.0.0.1:8043"],
    "creds": ["http://h:8042/base", "bob", "pw"],
    "full": {"URL": "http://h/", "Username": "bob", "Password": "pw", "HttpHeaders": {"X-A": "1", "B": "2"},
             "RemoteSelf": "me", "Flag": False, "Num": 12, "Timeout": 7},
    "userOnly": {"Url": "https://h", "Username": "carol"},
}
BAD_DEFINITIONS: list[Any] = [["ftp://h"], [""], {"Url": ""}, ["http://h", "u"], ["a", "b", "c", "d"],
                              {"Url": "http://h", "Password": "p"}, {"Url": "http://h", "HttpHeaders": {"a": 1}},
                              {"Url": "http://h", "X": [1]}, {"Url": "http://h", "X": 1.5},
                              {"Url": "http://h", "Timeout": -1}, {"Url": "http://h", "Pkcs11": "yes"},
                              {"Url": "http://h", "CertificateFile": "/nonexistent.pem"}, "http://h"]


def _same_error(x: httpx.Response, y: httpx.Response) -> None:
    assert x.status_code == y.status_code, (x.text, y.text)
    if x.status_code >= 400 and x.content:
        a, b = x.json(), y.json()
        assert a["OrthancStatus"] == b["OrthancStatus"]
        if "Details" in a:  # Donjon adds details where Orthanc has none, never the other way round
            assert a["Details"] == b.get("Details"), (a, b)


def _ours(value: Any) -> Any:
    """The part of a `/peers` answer about DEFINITIONS (each server also knows the other)."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in DEFINITIONS}
    return [k for k in value if k in DEFINITIONS]


@needs_orthanc
def test_same_rest_answers_as_orthanc(mixed: tuple[Server, Server]) -> None:
    d, o = mixed
    for name, body in DEFINITIONS.items():
        assert d.put(f"/peers/{name}", json=body).text == o.put(f"/peers/{name}", json=body).text == ""
    try:
        assert _ours(d.get("/peers").json()) == _ours(o.get("/peers").json()) == sorted(DEFINITIONS)
        assert _ours(d.get("/peers?expand").json()) == _ours(o.get("/peers?expand").json())
        for name in DEFINITIONS:
            for path in (f"/peers/{name}", f"/peers/{name}/configuration"):
                assert d.get(path).json() == o.get(path).json(), path
        for body in BAD_DEFINITIONS:
            _same_error(o.put("/peers/bad", json=body), d.put("/peers/bad", json=body))
        _same_error(o.put("/peers/bad name", json=["http://h"]), d.put("/peers/bad name", json=["http://h"]))
        for method, path in (("GET", "/peers/nope"), ("GET", "/peers/nope/configuration"), ("DELETE", "/peers/nope"),
                             ("GET", "/peers/nope/system"), ("POST", "/peers/nope/store")):
            _same_error(o.client.request(method, path, content=b"[]"), d.client.request(method, path, content=b"[]"))
        for body in (b"", b"{}", b'["zz"]', b'["0a9b3153-2512774b-2d9580de-1fc3dcf6-00000000"]',
                     b'{"Resources": [], "Compress": 1}', b'{"Resources": [], "Transcode": "1.2.3"}',
                     b'{"Resources": [], "Transcode": 5}', b'{"Resources": [], "Priority": "x"}'):
            _same_error(o.post("/peers/short/store", content=body), d.post("/peers/short/store", content=body))
        assert _ours(d.get("/peers").json()) == _ours(o.get("/peers").json())  # nothing half-created
    finally:
        for name in DEFINITIONS:
            d.delete(f"/peers/{name}"), o.delete(f"/peers/{name}")


@needs_orthanc
def test_same_wire_and_job_content_as_orthanc(mixed: tuple[Server, Server]) -> None:
    """Both send the same study to a recording peer: same requests, same bodies, same job Content."""
    d, o = mixed
    d.wipe(), o.wipe()
    knee = files_of("Knee/T2")
    upload(d, knee), upload(o, knee)
    (study,) = d.get("/studies").json()
    rec = Recorder()
    try:
        definition = {"Url": rec.url + "/x", "Username": "u", "Password": "p", "RemoteSelf": "r", "Timeout": 9}
        seen: dict[str, Any] = {}
        for server in (o, d):
            server.put("/peers/rec", json=definition)
            for compress in (False, True):
                rec.reset()
                content = server.post("/peers/rec/store", json={"Resources": [study], "Compress": compress}).json()
                uploads = rec.uploads()
                bodies = sorted(u.body if not compress else _gunzip(u.body) for u in uploads)
                headers = {(u.method, u.path, u.headers.get("authorization"), u.headers.get("content-encoding"))
                           for u in uploads}
                if compress:
                    content.pop("Size"), content.pop("SizeMB")  # gzip of two zlib builds may differ by a few bytes
                seen.setdefault(compress, []).append((content, bodies, headers))
        for (x, y) in seen.values():
            assert x == y
        # failures: same code and libcurl text
        for server in (o, d):
            server.put("/peers/dead", json=[f"http://127.0.0.1:{free_port()}"])
            server.put("/peers/slow", json={"Url": rec.url, "Timeout": 1})
        rec.reset(delay=2)
        for name in ("dead", "slow"):
            _same_error(o.post(f"/peers/{name}/store", content=study), d.post(f"/peers/{name}/store", content=study))
        rec.reset(status=401)
        x, y = (s.post("/peers/rec/store", json={"Resources": [study], "Asynchronous": True}).json() for s in (o, d))
        jx, jy = wait_job(o, x["ID"]), wait_job(d, y["ID"])
        assert (jx["State"], jx["ErrorCode"]) == (jy["State"], jy["ErrorCode"]) == ("Failure", 9)
        assert jx["ErrorDetails"] == "" and jy["ErrorDetails"].startswith("HTTP status 401")  # Donjon says more
    finally:
        for server in (o, d):
            for name in ("rec", "dead", "slow"):
                server.delete(f"/peers/{name}")
        rec.close()


def _gunzip(data: bytes) -> bytes:
    import gzip

    return gzip.decompress(data)


# -- HTTPS ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA, a server certificate for 127.0.0.1/localhost, another CA, a client certificate."""
    if not HAS_OPENSSL:
        pytest.skip("the openssl command is not installed")
    return make_pki(tmp_path_factory.mktemp("pki"), KEY_PASSWORD)


class TlsProxy:
    """A TLS terminator in front of a plain HTTP server (asyncio in a thread: one task pair per
    connection); optionally requires client certificates signed by `client_ca`."""

    def __init__(self, upstream_port: int, pki: Path, client_ca: Path | None = None):
        self.upstream = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(pki / "server.pem", pki / "server.key")
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(lambda loop, context: None)  # refused handshakes are expected
        ready = threading.Event()
        self.port = 0
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(256 * 1024):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def tls_target(pki: Path, samples: Any) -> Iterator[tuple[Server, TlsProxy, TlsProxy]]:
    """A Donjon behind two TLS terminators: one plain, one requiring a client certificate."""
    target = start_donjon()
    proxy, strict = TlsProxy(target.http_port, pki), TlsProxy(target.http_port, pki, client_ca=pki / "ca.pem")
    yield target, proxy, strict
    proxy.close()
    strict.close()
    target.stop()


def _source(pki: Path, tls: Any, options: dict[str, Any]) -> Server:
    _, proxy, strict = tls
    source = start_donjon({**options, "HttpTimeout": 10, "OrthancPeers": {
        "tls": [proxy.url],
        "cert": {"Url": strict.url, "CertificateFile": str(pki / "client.pem"),
                 "CertificateKeyFile": str(pki / "client.key"), "CertificateKeyPassword": KEY_PASSWORD},
        "badkey": {"Url": strict.url, "CertificateFile": str(pki / "client.pem"),
                   "CertificateKeyFile": str(pki / "client.key"), "CertificateKeyPassword": "wrong"},
        "nocert": [strict.url]}})
    upload(source, files_of("Knee/T1")[:5])
    return source


def test_https_with_the_right_ca(pki: Path, tls_target: Any) -> None:
    target = tls_target[0]
    source = _source(pki, tls_target, {"HttpsCACertificates": str(pki / "ca.pem")})
    try:
        target.wipe()
        assert source.get("/peers/tls/system").json()["ApiVersion"] == target.get("/system").json()["ApiVersion"]
        (study,) = source.get("/studies").json()
        assert source.post("/peers/tls/store", json={"Resources": [study], "Compress": True}).json()[
            "InstancesCount"] == 5
        same_content(source, target)
        # client certificates: with the (encrypted) key it works; a wrong key password or no certificate fails
        target.wipe()
        assert source.post("/peers/cert/store", content=study).json()["InstancesCount"] == 5
        same_content(source, target)
        assert error(source.get("/peers/badkey/system")) == \
            (500, 9, "libCURL error: Problem with the local SSL certificate")
        assert error(source.get("/peers/nocert/system"))[:2] == (500, 9)
        assert KEY_PASSWORD not in source.log()
    finally:
        source.stop()


@pytest.mark.parametrize(("options", "works"), [
    ({"HttpsCACertificates": "other-ca.pem"}, False),  # the wrong CA
    ({}, False),  # the system's CAs do not know our throw-away CA
    ({"HttpsVerifyPeers": False}, True),
])
def test_https_verification(pki: Path, tls_target: Any, options: dict[str, Any], works: bool) -> None:
    if "HttpsCACertificates" in options:
        options = {"HttpsCACertificates": str(pki / options["HttpsCACertificates"])}
    source = _source(pki, tls_target, options)
    try:
        (study,) = source.get("/studies").json()
        if works:
            assert source.get("/peers/tls/system").status_code == 200
            assert source.post("/peers/tls/store", content=study).json()["InstancesCount"] == 5
        else:
            refused = (500, 9, "libCURL error: SSL peer certificate or SSH remote key was not OK")
            assert error(source.get("/peers/tls/system")) == refused
            job = source.post("/peers/tls/store", json={"Resources": [study], "Asynchronous": True}).json()
            info = wait_job(source, job["ID"])
            assert (info["State"], info["ErrorCode"], info["ErrorDetails"]) == ("Failure", 9, refused[2])
    finally:
        source.stop()


@needs_orthanc
def test_https_with_orthanc(pki: Path, tls_target: Any) -> None:
    """Donjon -> Orthanc behind a TLS terminator, Orthanc (libcurl) -> Donjon over HTTPS, and the same
    refusal as Orthanc for the wrong CA. (Debian's Orthanc 1.10.1 crashes on TLS connections with
    `SslEnabled`, civetweb against OpenSSL 3, so Orthanc does not serve HTTPS itself here.)"""
    target, proxy, _ = tls_target
    o = start_orthanc({"HttpsCACertificates": str(pki / "ca.pem"), "OrthancPeers": {"donjon": [proxy.url]}})
    o_proxy = TlsProxy(o.http_port, pki)
    wrong = start_orthanc({"HttpsCACertificates": str(pki / "other-ca.pem"), "OrthancPeers": {"donjon": [proxy.url]}})
    d = start_donjon({"HttpsCACertificates": str(pki / "ca.pem"), "OrthancPeers": {"orthanc": [o_proxy.url]}})
    d_wrong = start_donjon({"HttpsCACertificates": str(pki / "other-ca.pem"), "OrthancPeers": {"donjon": [proxy.url]}})
    try:
        files = files_of("Knix")[:6]
        upload(d, files)
        (study,) = d.get("/studies").json()
        assert d.post("/peers/orthanc/store", json={"Resources": [study], "Compress": True}).json()[
            "InstancesCount"] == 6
        same_content(d, o)
        assert d.get("/peers/orthanc/system").json() == o.get("/system").json()
        target.wipe()
        assert o.post("/peers/donjon/store", content=study).json()["InstancesCount"] == 6
        same_content(o, target)
        assert o.get("/peers/donjon/system").json() == target.get("/system").json()
        _same_error(wrong.get("/peers/donjon/system"), d_wrong.get("/peers/donjon/system"))
        assert error(d_wrong.get("/peers/donjon/system"))[2] == \
            "libCURL error: SSL peer certificate or SSH remote key was not OK"
    finally:
        o_proxy.close()
        for s in (o, wrong, d, d_wrong):
            s.stop()


# -- performance ---------------------------------------------------------------------------------------------

def _ct_study(count: int) -> Iterator[bytes]:
    """A synthetic CT series: 512x512 16-bit frames, explicit little endian (~0.5 MB per file)."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    study, series = generate_uid(), generate_uid()
    base = np.random.default_rng(0).integers(0, 2000, (512, 512), dtype=np.uint16)
    for i in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH", "BENCH^CT", "CT"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.InstanceNumber = study, series, i + 1
        ds.Rows = ds.Columns = 512
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation, ds.SamplesPerPixel = 16, 12, 11, 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = np.roll(base, i).tobytes()
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        yield out.getvalue()


@needs_orthanc
@pytest.mark.skipif(not os.environ.get("DONJON_PEERS_BENCH"), reason="set DONJON_PEERS_BENCH=1 to run")
def test_benchmark_500_ct_instances() -> None:
    count = 500
    files = list(_ct_study(count))
    src_o, dst_o, src_d, dst_d = start_orthanc(), start_orthanc(), start_donjon(), start_donjon()
    try:
        for server in (src_o, src_d):
            for data in files:
                assert server.post("/instances", content=data).status_code == 200
        (study,) = src_o.get("/studies").json()
        runs = {"Orthanc -> Orthanc": (src_o, dst_o, "to-orthanc"), "Donjon -> Donjon": (src_d, dst_d, "to-donjon"),
                "Donjon -> Orthanc": (src_d, dst_o, "to-orthanc"), "Orthanc -> Donjon": (src_o, dst_d, "to-donjon")}
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for source, target, peer in runs.values():
            source.put(f"/peers/{peer}", json=[target.url])
        for _ in range(3):
            for name, (source, target, peer) in runs.items():
                target.wipe()
                t0 = time.monotonic()
                r = source.post(f"/peers/{peer}/store", json={"Resources": [study]}, timeout=600)
                rates[name].append(count / (time.monotonic() - t0))
                assert r.status_code == 200 and len(target.get("/instances").json()) == count
        best = {name: max(values) for name, values in rates.items()}
        for name, value in best.items():
            print(f"| {name} | {value:.0f} instances/s | {value / best['Orthanc -> Orthanc']:.2f}x |")
        assert best["Donjon -> Donjon"] >= best["Orthanc -> Orthanc"]
        assert best["Donjon -> Orthanc"] >= best["Orthanc -> Orthanc"]
    finally:
        for server in (src_o, dst_o, src_d, dst_d):
            server.stop()
