"""A real S3-compatible server for the tests: moto's standalone server, as a subprocess on a free port.

`DONJON_TEST_STORAGE=s3` makes `start_donjon` put every server it starts on its own bucket of one
shared moto server (started on first use, stopped when the test process exits).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from .servers import free_port

ENV_SWITCH = "DONJON_TEST_STORAGE"
ACCESS_KEY = "donjon-test"
SECRET_KEY = "donjon-test-secret-never-logged"
REGION = "us-east-1"


def s3_requested() -> bool:
    return os.environ.get(ENV_SWITCH, "").lower() == "s3"


def moto_command() -> list[str] | None:
    """How to start moto's server, None when `moto[server]` is not installed."""
    beside = Path(sys.executable).parent / "moto_server"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("moto_server")
    return [found] if found else None


class MotoServer:
    def __init__(self) -> None:
        command = moto_command()
        if command is None:
            raise RuntimeError("moto's S3 server is not installed (pip install 'moto[server]')")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(tempfile.mkdtemp(prefix="moto-")) / "moto.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process keeps it
        self.process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {self.log_path.read_text(errors='replace')}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("moto_server did not start in 30 s")
        self.client = self.make_client()

    def make_client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def new_bucket(self) -> str:
        name = f"donjon-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=name)
        return name

    def section(self, bucket: str | None = None, **extra: Any) -> dict[str, Any]:
        """An `AwsS3Storage` section for a (new) bucket of this server."""
        return {"BucketName": bucket or self.new_bucket(), "Region": REGION, "AccessKey": ACCESS_KEY,
                "SecretKey": SECRET_KEY, "Endpoint": self.endpoint, "VirtualAddressing": False, **extra}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


_shared: MotoServer | None = None


def shared_moto() -> MotoServer:
    """One moto server for the whole test process."""
    global _shared
    if _shared is None:
        _shared = MotoServer()
        atexit.register(_shared.stop)
    return _shared


def moto_or_skip() -> MotoServer:
    """The shared moto server; the test is skipped, naming the component, when moto is not installed."""
    import pytest

    if moto_command() is None:
        pytest.skip("moto's S3 server is not installed (pip install 'moto[server]')")
    return shared_moto()
