"""The command line, run as `python -m donjon ...` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from donjon import __version__
from donjon.api import build_router
from donjon.config import Configuration
from donjon.config_options import OPTIONS
from donjon.errors import all_errors
from tests.support.servers import free_port, start_donjon


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORTHANC_")}
    env.update(extra)
    return env


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "donjon", *args], cwd=cwd, env=env or _env(),
                          capture_output=True, text=True, timeout=timeout)


def test_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"Donjon {__version__}"


def test_help(tmp_path: Path) -> None:
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0
    for option in ("--config=", "--errors", "--openapi=", "--verbose", "--trace", "--logdir=", "--logfile=",
                   "--no-jobs", "--version"):
        assert option in result.stdout


def test_errors(tmp_path: Path) -> None:
    result = run("--errors", cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert "List of error codes that could be returned by Donjon:" in lines
    codes = [line for line in lines if re.fullmatch(r" *-?\d+   .+", line)]
    assert len(codes) == len(all_errors())
    assert "               0   Success" in lines
    assert "              -1   Internal error" in lines
    assert "            3000   Unsupported media type" in lines


@pytest.mark.skipif(shutil.which("Orthanc") is None, reason="Orthanc is not installed")
def test_errors_are_laid_out_as_orthanc(tmp_path: Path) -> None:
    ours = set(run("--errors", cwd=tmp_path).stdout.splitlines())
    orthanc = subprocess.run(["Orthanc", "--errors"], capture_output=True, text=True, timeout=30).stdout.splitlines()
    known = {code for code, *_ in all_errors()}
    for line in orthanc:
        m = re.fullmatch(r" *(-?\d+)   .+", line)
        if m and int(m.group(1)) in known:
            assert line in ours


def test_sample_configuration_round_trips(tmp_path: Path) -> None:
    result = run("--config=sample.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "sample.json").read_text()
    assert text.lstrip().startswith("{") and "//" in text
    config = Configuration.load([str(tmp_path / "sample.json")], env={})
    assert config.unknown == []
    for name, option in OPTIONS.items():
        assert config[name] == option.default, name


def test_sample_configuration_to_stdout(tmp_path: Path) -> None:
    result = run("--config=-", cwd=tmp_path)
    assert result.returncode == 0
    assert '"HttpPort" : 8042' in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_sample_configuration_to_a_bad_path(tmp_path: Path) -> None:
    result = run(f"--config={tmp_path}/missing/folder/sample.json", cwd=tmp_path)
    assert result.returncode != 0


def test_openapi(tmp_path: Path) -> None:
    result = run("--openapi=openapi.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "openapi.json").read_text())
    assert document["openapi"].startswith("3.")
    assert document["info"]["version"] == __version__
    paths = document["paths"]
    assert "get" in paths["/instances/{id}/file"]
    for method, pattern in build_router().patterns:
        path = re.sub(r"\{([^}:]+):path\}", r"{\1}", pattern)
        operation = paths[path][method.lower()]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), path
        assert "200" in operation["responses"]
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))
    patients = {p["name"]: p for p in paths["/patients"]["get"]["parameters"]}
    assert {"expand", "since", "limit"} <= set(patients)
    assert patients["expand"]["in"] == "query" and patients["expand"]["description"]


def test_openapi_to_stdout(tmp_path: Path) -> None:
    result = run("--openapi=-", cwd=tmp_path)
    assert result.returncode == 0
    assert "/instances/{id}/file" in json.loads(result.stdout)["paths"]


def test_bad_configuration_refuses_to_start(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    (tmp_path / "config.json").write_text(json.dumps({"StorageDirectory": str(storage), "HttpPort": "eighty"}))
    result = run("config.json", cwd=tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert len(errors) == 1 and '"HttpPort"' in errors[0]
    assert not storage.exists()  # nothing was started


def test_bad_environment_refuses_to_start(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    result = run(cwd=tmp_path, env=_env(ORTHANC__DICOM_AET="A" * 20, ORTHANC__STORAGE_DIRECTORY=str(storage)))
    assert result.returncode != 0
    assert '"DicomAet"' in result.stderr and "ORTHANC__DICOM_AET" in result.stderr
    assert not storage.exists()


def test_bad_json_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"Name": "x",,}')
    result = run("broken.json", cwd=tmp_path)
    assert result.returncode != 0 and "broken.json" in result.stderr
    result = run("missing.json", cwd=tmp_path)
    assert result.returncode != 0 and "missing.json" in result.stderr


def test_unknown_command_line_option_only_warns(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"MaximumStorageMode": "Whatever"}')
    result = run("--bogus-option", "config.json", cwd=tmp_path)
    assert "Option unsupported by Donjon: --bogus-option" in result.stderr
    assert '"MaximumStorageMode"' in result.stderr and result.returncode != 0


def test_missing_log_folder(tmp_path: Path) -> None:
    result = run(f"--logdir={tmp_path}/nope", cwd=tmp_path)
    assert result.returncode != 0


def test_upgrade_checks_the_configuration_and_exits(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"StorageDirectory": str(tmp_path / "storage")}))
    result = run("config.json", "--upgrade", cwd=tmp_path)
    assert result.returncode == 0
    assert not (tmp_path / "storage").exists()


def test_server_starts_with_environment_and_log_options(tmp_path: Path) -> None:
    logfile = tmp_path / "donjon.log"
    server = start_donjon({"Name": "${DJ_TEST_NAME:-from the default}"},
                          args=["--verbose", "--no-jobs", f"--logfile={logfile}"],
                          env={"ORTHANC__DICOM_AET": "FROMENV", "DJ_TEST_NAME": "from a variable"})
    try:
        system = server.get("/system").json()
        assert system["DicomAet"] == "FROMENV"
        assert system["Name"] == "from a variable"
    finally:
        server.stop()
    log = logfile.read_text()
    assert "Reading the configuration from" in log  # an INFO line: --verbose works


def test_log_folder_receives_a_log_file(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    server = start_donjon({"HttpPort": free_port()}, args=["--trace", f"--logdir={logs}"])
    server.stop()
    files = list(logs.iterdir())
    assert len(files) == 1 and files[0].read_text()
