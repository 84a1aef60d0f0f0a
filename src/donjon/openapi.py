"""`--openapi=FILE`: the routes Donjon serves, as an OpenAPI 3 description."""

from __future__ import annotations

import json
import sys

from . import __version__


def build_openapi() -> dict:
    from .api import build_router

    router = build_router()
    paths: dict[str, dict] = {}
    for method, pattern in sorted(router.patterns, key=lambda p: (p[1], p[0])):
        path = pattern.replace(":path}", "}") or "/"
        entry = paths.setdefault(path, {})
        params = [p[1:-1].replace(":path", "") for p in pattern.split("/") if p.startswith("{")]
        entry[method.lower()] = {
            "summary": f"{method} {path}",
            "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                           for p in params],
            "responses": {"200": {"description": "Success"}},
        }
    return {"openapi": "3.0.3", "info": {"title": "Donjon REST API", "version": __version__},
            "paths": paths}


def write_openapi(path: str) -> None:
    text = json.dumps(build_openapi(), indent=2, sort_keys=True)
    if path == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
