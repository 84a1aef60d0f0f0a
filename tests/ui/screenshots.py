"""Screenshots of the Explorer for the documentation: `python -m tests.ui.screenshots OUTPUT_FOLDER`.

Starts a Donjon with a few samples, then saves one PNG per page (Chromium headless, as the UI tests),
reduced to 256 colors so that each stays small in the repository (`docs/screenshots/`, in the README).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.support.servers import SAMPLES, start_donjon
from tests.ui.conftest import CHROMIUM_ARGS, EXPLORER, chromium_path


def shrink(png: bytes, path: Path) -> None:
    """A screenshot with a 256-color palette, undithered: a third of the size, no visible change."""
    import io

    from PIL import Image

    picture = Image.open(io.BytesIO(png)).convert("RGB")
    picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, "PNG", optimize=True)


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    server = start_donjon({"UserMetadata": {"Comment": 1024}, "MaximumStorageSize": 100})
    try:
        answers = [server.upload(p).json() for p in sorted((SAMPLES / "Knee" / "T1").glob("*.dcm"))]
        for name in ("Brainix/Epi/IM-0001-0001.dcm", "2017-06-27-XSSInjection.dcm"):
            server.upload(SAMPLES / name)
        knee = answers[0]
        job = server.post(f"/studies/{knee['ParentStudy']}/archive", json={"Asynchronous": True}).json()["ID"]
        time.sleep(1)
        path = chromium_path()
        if path is None:
            raise SystemExit("chromium not installed (apt-get install chromium)")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=server.url)
            shots = {
                "patients": "#/patients", "study": f"#/studies/{knee['ParentStudy']}",
                "series": f"#/series/{knee['ParentSeries']}", "instance": f"#/instances/{knee['ID']}",
                "search": "#/search?level=Study&run=1&PatientName=kn", "jobs": f"#/jobs?job={job}",
                "server": "#/server",
            }
            for name, fragment in shots.items():
                page.goto(EXPLORER + fragment)
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(800)
                shrink(page.screenshot(), out / f"explorer-{name}.png")
            page.goto(EXPLORER + "#/upload")
            page.locator("#upload-folder").set_input_files(str(SAMPLES / "Knee" / "T2"))
            page.get_by_role("heading", name="Upload finished").wait_for(timeout=60_000)
            shrink(page.screenshot(), out / "explorer-upload.png")
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
