"""Real servers for the tests: Donjon and Orthanc 1.10.1 as subprocesses on free ports."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = (ROOT.parent / "shared" / "dicom").resolve()
if not SAMPLES.is_dir():
    SAMPLES = Path(os.environ.get("DONJON_SAMPLES", "/work/shared/dicom"))
ORTHANC = shutil.which("Orthanc")


_GIVEN_PORTS: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(v) for v in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL = _ephemeral_range()


def free_port() -> int:
    """A port nobody listens on now, below the kernel's ephemeral range and not one this process handed
    out before. A port from that range (`bind(0)`) can be taken meanwhile as the local port of an
    outgoing connection (the PostgreSQL pool, an HTTP client): a server then failed to start with
    "Address already in use"."""
    low = 20000 if _EPHEMERAL[0] > 21000 else 10000
    high = min(_EPHEMERAL[0], 65536) - 1
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    worker = int("0" + "".join(c for c in os.environ.get("PYTEST_XDIST_WORKER", "") if c.isdigit()))
    if workers > 1 and high - low > 100 * workers:  # a share of the range per test worker: no two pick alike
        share = (high - low) // workers
        low, high = low + share * (worker % workers), low + share * (worker % workers + 1) - 1
    for _ in range(200):
        port = random.randint(low, high) if high > low else 0
        if port in _GIVEN_PORTS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port
    raise RuntimeError("no free TCP port")
    return port


def sample_files() -> list[Path]:
    """Every file of the sample set that is meant to be uploaded (DICOM or not)."""
    out = []
    for p in sorted(SAMPLES.rglob("*")):
        if p.is_file() and p.suffix.lower() not in (".png", ".dump", ".pdf"):
            out.append(p)
    return out


@dataclass
class Server:
    """A running server process with an HTTP client bound to it."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    http_port: int
    dicom_port: int
    config: dict[str, Any] = field(default_factory=dict)
    auth: tuple[str, str] | None = None
    verify: ssl.SSLContext | bool = True  # for HTTPS servers: e.g. `support.pki.client_context(ca)`

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=60, auth=self.auth, verify=self.verify)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.put(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.delete(path, **kw)

    def upload(self, path: Path | str) -> httpx.Response:
        return self.client.post("/instances", content=Path(path).read_bytes())

    def wipe(self) -> None:
        for pid in self.get("/patients").json():
            self.delete(f"/patients/{pid}")

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        path = self.workdir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _wait_ready(server: Server, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start-up:\n{server.log()}")
        try:
            r = server.client.get("/system")
            if r.status_code in (200, 401):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"{server.name} did not start in {timeout}s:\n{server.log()}")


def start_donjon(config: dict[str, Any] | None = None, workdir: Path | None = None,
                 auth: tuple[str, str] | None = None, args: list[str] | None = None,
                 env: dict[str, str] | None = None, verify: ssl.SSLContext | bool = True) -> Server:
    """Start Donjon and wait until `/system` answers. With `"SslEnabled": true` in `config` the URL is
    `https://` and `verify` (trusting the test CA, with a client certificate for `SslVerifyPeers`) is used
    by the readiness check and by `server.client`."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="donjon-test-"))
    http_port, dicom_port = free_port(), free_port()
    cfg: dict[str, Any] = {"HttpPort": http_port, "DicomPort": dicom_port,
                           "StorageDirectory": str(workdir / "storage"), "StableAge": 2}
    cfg.update(config or {})
    if "AwsS3Storage" not in cfg:
        from .s3 import s3_requested, shared_moto

        if s3_requested():  # DONJON_TEST_STORAGE=s3: a bucket of a local moto server for this server
            cfg["AwsS3Storage"] = shared_moto().section()
    if "PostgreSQL" not in cfg:
        from .postgres import USE_POSTGRES, postgres_section_for

        if USE_POSTGRES:  # DONJON_TEST_INDEX=postgresql: a database of the test cluster for this server
            cfg["PostgreSQL"] = postgres_section_for(workdir)
    http_port = cfg["HttpPort"]
    (workdir / "config.json").write_text(json.dumps(cfg, indent=2))
    log = open(workdir / "server.log", "ab")  # noqa: SIM115 - the child process keeps it
    full_env = dict(os.environ)
    full_env.update(env or {})
    process = subprocess.Popen([sys.executable, "-m", "donjon", str(workdir / "config.json"), *(args or [])],
                               stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=full_env)
    scheme = "https" if cfg.get("SslEnabled") else "http"
    server = Server("donjon", f"{scheme}://127.0.0.1:{http_port}", process, workdir, http_port, dicom_port, cfg, auth,
                    verify)
    _wait_ready(server)
    return server


def start_orthanc(config: dict[str, Any] | None = None) -> Server:
    if ORTHANC is None:
        raise RuntimeError("Orthanc is not installed (apt-get install orthanc)")
    workdir = Path(tempfile.mkdtemp(prefix="orthanc-test-"))
    http_port, dicom_port = free_port(), free_port()
    cfg: dict[str, Any] = {"HttpPort": http_port, "DicomPort": dicom_port,
                           "StorageDirectory": str(workdir / "storage"), "Plugins": [], "StableAge": 2,
                           "RemoteAccessAllowed": False, "HttpCompressionEnabled": False}
    cfg.update(config or {})
    (workdir / "config.json").write_text(json.dumps(cfg, indent=2))
    log = open(workdir / "server.log", "ab")  # noqa: SIM115 - the child process keeps it
    process = subprocess.Popen([ORTHANC, str(workdir / "config.json")], stdout=log, stderr=subprocess.STDOUT,
                               cwd=workdir, env={**os.environ, "TCP_NODELAY": "1"})
    server = Server("orthanc", f"http://127.0.0.1:{http_port}", process, workdir, http_port, dicom_port, cfg)
    _wait_ready(server)
    return server


def loaded_pair(files: list[str], payloads: tuple[bytes, ...] | list[bytes] = ()) -> Iterator[list[Server]]:
    """Orthanc 1.10.1 and Donjon, each given the same sample `files` and `payloads`, for a module fixture
    of a differential test (skipped without Orthanc); both stopped afterwards."""
    if ORTHANC is None:
        pytest.skip("Orthanc 1.10.1 is not installed (apt-get install orthanc)")
    pair = [start_orthanc(), start_donjon()]
    try:
        for server in pair:
            for name in files:
                assert server.upload(SAMPLES / name).status_code == 200
            for data in payloads:
                assert server.post("/instances", content=data).status_code == 200
        yield pair
    finally:
        for server in pair:
            server.stop()
