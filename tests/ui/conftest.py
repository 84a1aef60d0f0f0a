"""Real headless Chromium (Debian's) driven by Playwright, against a real Donjon.

Playwright's own browser download does not work here, so the browser is `/usr/bin/chromium`
(`scripts/test.sh` installs it). A missing component skips the UI tests with its name.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
EXPLORER = "/app/explorer.html"


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and shutil.which(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright not installed (pip install playwright)")
    path = chromium_path()
    if path is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@dataclass
class Watched:
    """What a page did that a safe page must not: dialogs (alert...), uncaught errors, console errors."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)


def open_page(browser: Any, base_url: str, **context_args: Any) -> tuple[Any, Any, Watched]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True, **context_args)
    context.set_default_timeout(15_000)
    page = context.new_page()
    watched = Watched()

    def on_dialog(dialog: Any) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    page.on("console", lambda msg: watched.console.append(msg.text) if msg.type == "error" else None)
    return context, page, watched


def poll(page: Any, script: str, timeout: float = 15) -> Any:
    """Wait until a page expression is truthy. (`page.wait_for_function` evaluates a string, which the
    Explorer's Content-Security-Policy rightly forbids; `evaluate` does not need it.)"""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout}s: {script}")
        time.sleep(0.05)


@pytest.fixture
def ui(browser: Any, explorer_server: Any) -> Iterator[tuple[Any, Watched]]:
    """A fresh browser context on the module's server; fails the test on a script error."""
    context, page, watched = open_page(browser, explorer_server.url)
    yield page, watched
    context.close()
    assert not watched.errors, watched.errors
    assert not watched.dialogs, watched.dialogs
