"""A short run of each fuzzing target in CI (about 10 s each, a fixed number of iterations); the long
runs are done by hand (docs/security.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults import crafted
from tests.support.servers import SAMPLES

HERE = Path(__file__).parent
pytest.importorskip("atheris", reason="atheris (PyPI) is needed by the fuzzing targets")


def _run(target: str, corpus: Path, runs: int, tmp_path: Path) -> str:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    r = subprocess.run([sys.executable, str(HERE / target), f"-runs={runs}", "-timeout=10", "-rss_limit_mb=1536",
                        "-max_len=16384", "-seed=1", f"-artifact_prefix={artifacts}/", str(corpus)],
                       capture_output=True, text=True, timeout=120)
    found = sorted(p.name for p in artifacts.iterdir())
    assert r.returncode == 0 and not found, f"{target} found {found}:\n{r.stderr[-4000:]}"
    assert f"Done {runs} runs" in r.stderr, r.stderr[-2000:]
    return r.stderr


def test_fuzz_dicom_parser(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("DummyCT.dcm", "2017-06-27-XSSInjection.dcm", "ColorTestMalaterre.dcm"):
        if (SAMPLES / name).is_file():
            shutil.copy(SAMPLES / name, corpus / name)
    (corpus / "deep").write_bytes(crafted.deep_sequence(70))
    (corpus / "items").write_bytes(crafted.many_items(50))
    for i, data in enumerate(crafted.lying_lengths()):
        (corpus / f"lie{i}").write_bytes(data)
    _run("fuzz_dicom.py", corpus, 25_000, tmp_path)


def test_fuzz_find_queries(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "wildcards").write_bytes(b"\x02\x00\x03" + "A*A*A*?*B\\*\u00e9*".encode() * 4)
    _run("fuzz_find.py", corpus, 10_000, tmp_path)
