"""Secure by default: who may start the server open to the network, and which origins may change data.

Orthanc 1.10.1 starts with remote access and no user by creating orthanc/orthanc, and a web page from
any site can make a logged-in browser send POST/PUT/DELETE with its cached Basic credentials. Donjon
refuses the first at start-up and the second per request (an Origin/Referer check, the usual defence
when cookies or Basic credentials ride along automatically).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from ..registry import ConfigurationError
from .http import Request

STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})


def check_remote_access(config: Any) -> None:
    """Refuse to serve the network without authentication or without any user (no built-in user)."""
    if not config["RemoteAccessAllowed"]:
        return
    auth = config.get("AuthenticationEnabled")
    authentication = bool(auth) if isinstance(auth, bool) else True
    users = config["RegisteredUsers"]
    if not authentication:
        raise ConfigurationError(
            "RemoteAccessAllowed is true but AuthenticationEnabled is false: anyone on the network could "
            "read, change and delete every instance. Set AuthenticationEnabled to true and define users in "
            'RegisteredUsers ({"user": "password"}), or set RemoteAccessAllowed to false (localhost only).')
    if not users:
        raise ConfigurationError(
            "RemoteAccessAllowed is true but RegisteredUsers defines no user: Donjon has no built-in "
            'credentials. Define at least one user in RegisteredUsers ({"user": "password"}), or set '
            "RemoteAccessAllowed to false (localhost only).")


def _netloc(url: str) -> str | None:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.rpartition("@")[2].lower()


def cross_origin_refusal(request: Request, method: str) -> str | None:
    """Why a state-changing request comes from another origin; None when it may proceed.

    Requests without Origin and Referer (curl, scripts, other servers) are not from a browser page and
    pass; a browser always sends Origin on cross-origin POST/PUT/DELETE made by scripts or forms.
    """
    if method not in STATE_CHANGING:
        return None
    fetch_site = request.headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return f"cross-origin request refused (Sec-Fetch-Site: {fetch_site[:20]})"
    host = request.headers.get("host", "").strip().lower()
    origin = request.headers.get("origin")
    if origin is not None:
        source = _netloc(origin.strip())
        if source is None or source != host:
            return f"cross-origin request refused (Origin: {origin[:100]})"
        return None
    referer = request.headers.get("referer")
    if referer is not None:
        source = _netloc(referer.strip())
        if source is None or source != host:
            return "cross-origin request refused (Referer of another site)"
    return None
