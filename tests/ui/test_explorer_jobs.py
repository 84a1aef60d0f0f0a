"""The Explorer's uploads, jobs (archive, anonymize, send) with their live progress and actions, server page."""

from __future__ import annotations

import base64
import io
import re
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import SAMPLES, Server, start_donjon
from tests.ui.conftest import EXPLORER, Watched

expect = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)").expect
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"the sample DICOM files are missing ({SAMPLES})")


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a DICOM store to it hangs until its timeout."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()


@pytest.fixture(scope="module")
def explorer_server(blackhole: int) -> Iterator[Server]:
    # one job at a time, so that a job queued behind a hanging store stays Pending while we act on it
    server = start_donjon({"ConcurrentJobs": 1, "DicomScuTimeout": 8, "MaximumStorageSize": 200,
                           "MaximumPatientCount": 10,
                           "DicomModalities": {"blackhole": ["NOWHERE", "127.0.0.1", blackhole]}})
    yield server
    server.stop()


@pytest.fixture
def knee(explorer_server: Server) -> dict[str, str]:
    explorer_server.wipe()
    first: dict[str, str] = {}
    for path in sorted((SAMPLES / "Knee" / "T1").glob("*.dcm")):
        answer = explorer_server.upload(path).json()
        first = first or answer
    return {"patient": first["ParentPatient"], "study": first["ParentStudy"]}


def job_row(page: Any, job_id: str) -> Any:
    return page.locator(f"tr[data-job='{job_id}']")


def current_job(page: Any) -> str:
    page.wait_for_url(re.compile(r"#/jobs\?job="))
    return page.url.rsplit("job=", 1)[1]


def wait_state(server: Server, job_id: str, states: tuple[str, ...], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = server.get(f"/jobs/{job_id}").json()
        if info["State"] in states:
            return dict(info)
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} not in {states}: {info}")


def test_upload_a_folder(ui: tuple[Any, Watched], explorer_server: Server) -> None:
    page, _ = ui
    explorer_server.wipe()
    folder = SAMPLES / "Knee" / "T2"
    count = len(list(folder.glob("*.dcm")))
    page.goto(f"{EXPLORER}#/upload")
    page.get_by_role("button", name="Choose a folder…").wait_for()
    page.locator("#upload-folder").set_input_files(str(folder))
    summary = page.locator("#upload-summary")
    summary.get_by_role("heading", name="Upload finished").wait_for(timeout=60_000)
    assert f"{count} stored" in summary.inner_text() and "0 failed" in summary.inner_text()
    rows = page.locator("#upload-list li")
    assert rows.count() == count
    assert set(rows.locator("progress").evaluate_all("bars => bars.map(b => b.value)")) == {100}
    assert set(rows.locator(".upload-status").all_inner_texts()) == {"Stored"}
    assert rows.first.locator(".upload-name").inner_text().startswith("T2/")
    assert explorer_server.get("/statistics").json()["CountInstances"] == count
    summary.get_by_role("link", name="KNEE").wait_for()
    # the same folder again: everything is already there; a file that is not DICOM fails alone
    page.locator("#upload-files").set_input_files([str(SAMPLES / "HelloWorld.pdf"),
                                                   str(next(folder.glob("*.dcm")))])
    summary.get_by_role("heading", name="Upload finished").wait_for(timeout=60_000)
    text = summary.inner_text()
    assert "2 of 2 files processed" in text and "1 already stored" in text and "1 failed" in text
    assert "Failed" in page.locator("#upload-list li").first.inner_text()


def test_drop_files(ui: tuple[Any, Watched], explorer_server: Server) -> None:
    page, _ = ui
    explorer_server.wipe()
    files = [(p.name, base64.b64encode(p.read_bytes()).decode()) for p in sorted((SAMPLES / "Brainix" / "Epi")
                                                                                 .glob("*.dcm"))[:3]]
    page.goto(f"{EXPLORER}#/upload")
    page.locator("#dropzone").wait_for()
    page.evaluate("""files => {
        const dt = new DataTransfer();
        for (const [name, b64] of files) {
          const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
          dt.items.add(new File([bytes], name, {type: "application/dicom"}));
        }
        const zone = document.getElementById("dropzone");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""", files)
    summary = page.locator("#upload-summary")
    summary.get_by_role("heading", name="Upload finished").wait_for()
    assert "3 stored" in summary.inner_text()
    assert explorer_server.get("/statistics").json()["CountInstances"] == 3


def test_archive_job_progress_and_download(ui: tuple[Any, Watched], knee: dict[str, str]) -> None:
    page, _ = ui
    page.goto(f"{EXPLORER}#/patients/{knee['patient']}")
    page.get_by_role("button", name="Download ZIP").click()
    job = current_job(page)
    row = job_row(page, job)
    expect(row).to_have_class(re.compile("highlight"))
    expect(row.locator(".badge")).to_have_text("Success", timeout=30_000)
    expect(row.locator(".pct")).to_have_text("100%")
    assert row.locator("progress").evaluate("p => p.value") == 100
    assert "24 instances" in row.inner_text()
    with page.expect_download() as download:
        row.get_by_role("link", name="Download ZIP").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert len([n for n in archive.namelist() if not n.endswith("/")]) == 24


def test_anonymize_as_a_job(ui: tuple[Any, Watched], knee: dict[str, str], explorer_server: Server) -> None:
    page, _ = ui
    page.goto(f"{EXPLORER}#/studies/{knee['study']}")
    page.get_by_role("button", name="Anonymize…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Replace (one Tag=Value per line)").fill("PatientName=ANON^EXPLORER")
    dialog.get_by_role("button", name="Anonymize").click()
    row = job_row(page, current_job(page))
    expect(row.locator(".badge")).to_have_text("Success", timeout=30_000)
    row.get_by_role("link", name="Open the new study").click()
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="ANON EXPLORER").wait_for()
    assert len(explorer_server.get("/studies").json()) == 2  # the original is kept


def test_send_then_pause_resume_cancel_resubmit(ui: tuple[Any, Watched], knee: dict[str, str],
                                                explorer_server: Server) -> None:
    page, _ = ui
    page.goto(f"{EXPLORER}#/patients/{knee['patient']}")
    page.get_by_role("button", name="Send…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Destination").select_option(label="blackhole")
    dialog.get_by_role("button", name="Send").click()
    store = current_job(page)
    expect(job_row(page, store).locator(".badge")).to_have_text("Running")
    # an archive queued behind the hanging store stays Pending: pause, resume, cancel it
    page.goto(f"{EXPLORER}#/studies/{knee['study']}")
    page.get_by_role("button", name="Download DICOMDIR").click()
    archive = current_job(page)
    row = job_row(page, archive)
    expect(row.locator(".badge")).to_have_text("Pending")
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".badge")).to_have_text("Paused")
    assert explorer_server.get(f"/jobs/{archive}").json()["State"] == "Paused"
    row.get_by_role("button", name="Resume").click()
    expect(row.locator(".badge")).to_have_text("Pending")
    row.get_by_role("button", name="Cancel").click()
    expect(row.locator(".badge")).to_have_text("Failure")
    assert explorer_server.get(f"/jobs/{archive}").json()["ErrorCode"] == 37
    # the store fails when the association times out; it can be resubmitted from the page
    store_row = job_row(page, store)
    expect(store_row.locator(".badge")).to_have_text("Failure", timeout=30_000)
    store_row.get_by_role("button", name="Resubmit").click()
    info = wait_state(explorer_server, store, ("Pending", "Running"))
    assert info["State"] in ("Pending", "Running")
    explorer_server.post(f"/jobs/{store}/cancel")


def test_server_page(ui: tuple[Any, Watched], knee: dict[str, str]) -> None:
    page, _ = ui
    page.goto(f"{EXPLORER}#/server")
    storage = page.get_by_role("region", name="Storage")
    meter = storage.get_by_label("Disk use against the limit")
    meter.wait_for()
    assert meter.get_attribute("max") == "200"
    assert "of 200.0 MB" in storage.inner_text()
    assert "Patients: 1 of 10" in storage.inner_text()
    assert "oldest unprotected patients are deleted" in storage.inner_text()
    assert "24" in page.get_by_role("region", name="Content").inner_text()
    page.get_by_role("region", name="DICOM modalities").get_by_role("cell", name="NOWHERE").wait_for()
