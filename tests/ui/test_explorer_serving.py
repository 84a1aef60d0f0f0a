"""How Donjon serves the Explorer: redirects, types, caching, security headers, route table, Basic auth."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from donjon.api.ui import CSP, files
from tests.support.servers import Server, start_donjon
from tests.ui.conftest import EXPLORER, open_page


@pytest.fixture(scope="module")
def explorer_server() -> Iterator[Server]:
    server = start_donjon()
    yield server
    server.stop()


def test_root_and_app_redirect_to_the_explorer(explorer_server: Server) -> None:
    r = explorer_server.get("/")
    assert r.status_code == 301 and r.headers["location"] == "app/explorer.html"
    for path, location in (("/app", "app/explorer.html"), ("/app/", "explorer.html")):
        r = explorer_server.get(path)
        assert r.status_code == 302 and r.headers["location"] == location
        assert str(r.url.join(location)).endswith(EXPLORER)
    r = explorer_server.client.get("/", follow_redirects=True)
    assert r.status_code == 200 and str(r.url).endswith(EXPLORER) and b'type="module"' in r.content


@pytest.mark.parametrize(("path", "content_type"), [
    ("explorer.html", "text/html; charset=utf-8"), ("explorer.css", "text/css; charset=utf-8"),
    ("js/app.js", "text/javascript; charset=utf-8"), ("favicon.svg", "image/svg+xml"),
])
def test_static_files_types_and_security_headers(explorer_server: Server, path: str, content_type: str) -> None:
    r = explorer_server.get(f"/app/{path}")
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-cache"
    etag = r.headers["etag"]
    again = explorer_server.get(f"/app/{path}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert explorer_server.get(f"/app/{path}", headers={"If-None-Match": 'W/"other"'}).status_code == 200
    head = explorer_server.client.head(f"/app/{path}")
    assert head.status_code == 200 and head.content == b""


def test_only_shipped_files_are_served(explorer_server: Server) -> None:
    for path in ("/app/nope.js", "/app/js", "/app/%2e%2e/system", "/app/..%2fsystem", "/app/.hidden",
                 "/app/js/../../../pyproject.toml"):
        r = httpx.get(explorer_server.url + path)
        assert r.status_code in (400, 404), path  # 400: an encoded slash is refused by the router
    assert explorer_server.post("/app/explorer.html").status_code == 405
    shipped = files()
    assert "explorer.html" in shipped and "js/app.js" in shipped
    assert all(not name.endswith(".py") for name in shipped)


def test_nothing_comes_from_the_internet() -> None:
    """Every asset reference is relative to this server (no CDN, no font service)."""
    for name, f in files().items():
        if name.endswith((".html", ".js", ".css")):
            text = f.body.decode("utf-8")
            assert not re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:)?//", text), name
            assert not re.search(r"(?:import|from)\s*[\"']https?://", text), name
            assert "@import url(http" not in text, name
            assert ".innerHTML" not in text and "insertAdjacentHTML" not in text and "document.write" not in text, name


def test_route_table_lists_the_routes(explorer_server: Server) -> None:
    r = explorer_server.get("/app/api-routes.json")
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    routes = r.json()["Routes"]
    assert routes["/patients/{id}/protected"] == ["GET", "PUT"]
    assert "POST" in routes["/tools/find"]


@pytest.fixture(scope="module")
def secured() -> Iterator[Server]:
    server = start_donjon({"RemoteAccessAllowed": True, "AuthenticationEnabled": True,
                           "RegisteredUsers": {"alice": "wonderland"}}, auth=("alice", "wonderland"))
    yield server
    server.stop()


def _refused(browser: Any, server: Server, **context_args: Any) -> None:
    """Headless Chromium cancels the login prompt: the navigation fails or shows the 401."""
    context, page, _ = open_page(browser, server.url, **context_args)
    try:
        try:
            response = page.goto(EXPLORER)
        except Exception as e:
            assert "ERR_INVALID_AUTH_CREDENTIALS" in str(e) or "ERR_HTTP_RESPONSE_CODE_FAILURE" in str(e)
        else:
            assert response is not None and response.status == 401
        assert page.locator("nav").count() == 0
    finally:
        context.close()


def test_basic_auth_login(browser: Any, secured: Server) -> None:
    r = httpx.get(secured.url + EXPLORER)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    _refused(browser, secured)
    _refused(browser, secured, http_credentials={"username": "alice", "password": "wrong"})
    context, page, watched = open_page(browser, secured.url, http_credentials={"username": "alice",
                                                                               "password": "wonderland"})
    try:
        response = page.goto("/")
        assert response is not None and response.status == 200 and page.url.endswith(EXPLORER)
        page.get_by_role("heading", name="Patients").wait_for()
        # the API calls of the page carry the same credentials
        page.get_by_text("0 patients, 0 studies, 0 series, 0 instances").wait_for()
        page.get_by_role("link", name="Server").click()
        page.get_by_role("region", name="System").get_by_text("0.1.0").wait_for()
        assert not watched.errors and not watched.dialogs and not watched.console
    finally:
        context.close()
