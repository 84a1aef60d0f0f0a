"""`--openapi=FILE`: the routes Donjon serves, as an OpenAPI 3 description.

The routes come from the router itself (`donjon.api.build_router().patterns`), so the description always
matches what the server answers. Query arguments are those Orthanc documents for the same route, each
with a short description of our own.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from . import __version__

# name -> (OpenAPI type, description)
QUERY_ARGUMENTS: dict[str, tuple[str, str]] = {
    "expand": ("string", "Answer full JSON objects instead of a list of identifiers (or names)."),
    "full": ("boolean", "Key the DICOM tags by their numbers (gggg,eeee) with name, type and value."),
    "short": ("boolean", "Key the DICOM tags by their numbers (gggg,eeee) with the bare values."),
    "simplify": ("boolean", "Key the DICOM tags by their names, with the bare values."),
    "requested-tags": ("string", "Semicolon-separated tags to report in \"RequestedTags\"."),
    "response-content": ("string", "Semicolon-separated parts of each answer (MainDicomTags, Metadata, ...)."),
    "since": ("number", "Skip the items before this index (paging), or the changes up to this sequence number."),
    "limit": ("number", "Maximum number of items in the answer."),
    "last": ("number", "Answer only the last change."),
    "to": ("number", "Answer the changes up to this sequence number."),
    "type": ("string", "Answer only the changes of this type."),
    "filename": ("string", "File name proposed to the client (Content-Disposition)."),
    "transcode": ("string", "Transfer syntax UID to transcode to before sending."),
    "lossy-quality": ("number", "Quality (1..100) when transcoding to a lossy transfer syntax."),
    "quality": ("number", "JPEG quality (1..100) of the image."),
    "returnUnsupportedImage": ("boolean", "Answer a placeholder image when the image cannot be decoded."),
    "height": ("number", "Height of the rendered image, in pixels."),
    "width": ("number", "Width of the rendered image, in pixels."),
    "smooth": ("boolean", "Smooth interpolation when resizing."),
    "window-center": ("number", "Center of the window applied to the pixel values."),
    "window-width": ("number", "Width of the window applied to the pixel values."),
    "compress": ("boolean", "Compress the NumPy file (.npz)."),
    "rescale": ("boolean", "Apply the rescale slope and intercept to the pixel values."),
    "numeric": ("string", "Key the metadata by number instead of name."),
    "ignore-length": ("array", "Tags whose long values must be reported anyway."),
    "whole": ("boolean", "Also read the tags after the pixel data."),
    "extended": ("string", "Write the extended DICOMDIR format."),
    "resources": ("string", "Comma-separated identifiers of the resources to include."),
    "level": ("string", "Level of the generated UID: patient, study, series or instance."),
}

# "METHOD /path" (path parameters written {}) -> the query arguments Orthanc documents for the route
ROUTE_ARGUMENTS: dict[str, str] = {
    "GET /changes": "last limit since to type",
    "GET /exports": "limit since",
    "GET /instances": "expand full limit requested-tags response-content short since",
    "GET /instances/{}": "full requested-tags short",
    "GET /instances/{}/attachments": "full",
    "GET /instances/{}/attachments/{}/compressed-data": "filename",
    "GET /instances/{}/attachments/{}/data": "filename",
    "GET /instances/{}/file": "filename lossy-quality transcode",
    "GET /instances/{}/frames/{}/image-int16": "quality returnUnsupportedImage",
    "GET /instances/{}/frames/{}/image-uint16": "quality returnUnsupportedImage",
    "GET /instances/{}/frames/{}/image-uint8": "quality returnUnsupportedImage",
    "GET /instances/{}/frames/{}/numpy": "compress rescale",
    "GET /instances/{}/frames/{}/preview": "quality returnUnsupportedImage",
    "GET /instances/{}/frames/{}/rendered": "height quality returnUnsupportedImage smooth width window-center window-width",
    "GET /instances/{}/header": "short simplify",
    "GET /instances/{}/image-int16": "quality returnUnsupportedImage",
    "GET /instances/{}/image-uint16": "quality returnUnsupportedImage",
    "GET /instances/{}/image-uint8": "quality returnUnsupportedImage",
    "GET /instances/{}/metadata": "expand numeric",
    "GET /instances/{}/module": "ignore-length short simplify",
    "GET /instances/{}/numpy": "compress rescale",
    "GET /instances/{}/patient": "full requested-tags short",
    "GET /instances/{}/preview": "quality returnUnsupportedImage",
    "GET /instances/{}/rendered": "height quality returnUnsupportedImage smooth width window-center window-width",
    "GET /instances/{}/series": "full requested-tags short",
    "GET /instances/{}/simplified-tags": "ignore-length whole",
    "GET /instances/{}/study": "full requested-tags short",
    "GET /instances/{}/tags": "ignore-length short simplify whole",
    "GET /jobs": "expand",
    "GET /modalities": "expand",
    "GET /patients": "expand full limit requested-tags response-content short since",
    "GET /patients/{}": "full requested-tags short",
    "GET /patients/{}/archive": "filename lossy-quality transcode",
    "GET /patients/{}/attachments": "full",
    "GET /patients/{}/attachments/{}/compressed-data": "filename",
    "GET /patients/{}/attachments/{}/data": "filename",
    "GET /patients/{}/instances": "expand full requested-tags short",
    "GET /patients/{}/instances-tags": "ignore-length short simplify",
    "GET /patients/{}/media": "extended filename lossy-quality transcode",
    "GET /patients/{}/metadata": "expand numeric",
    "GET /patients/{}/module": "ignore-length short simplify",
    "GET /patients/{}/series": "expand full requested-tags short",
    "GET /patients/{}/shared-tags": "short simplify",
    "GET /patients/{}/studies": "expand full requested-tags short",
    "GET /peers": "expand",
    "GET /queries/{}/answers": "expand short simplify",
    "GET /queries/{}/answers/{}/content": "short simplify",
    "GET /queries/{}/query": "short simplify",
    "GET /series": "expand full limit requested-tags response-content short since",
    "GET /series/{}": "full requested-tags short",
    "GET /series/{}/archive": "filename lossy-quality transcode",
    "GET /series/{}/attachments": "full",
    "GET /series/{}/attachments/{}/compressed-data": "filename",
    "GET /series/{}/attachments/{}/data": "filename",
    "GET /series/{}/instances": "expand full requested-tags short",
    "GET /series/{}/instances-tags": "ignore-length short simplify",
    "GET /series/{}/media": "extended filename lossy-quality transcode",
    "GET /series/{}/metadata": "expand numeric",
    "GET /series/{}/module": "ignore-length short simplify",
    "GET /series/{}/numpy": "compress rescale",
    "GET /series/{}/patient": "full requested-tags short",
    "GET /series/{}/shared-tags": "short simplify",
    "GET /series/{}/study": "full requested-tags short",
    "GET /studies": "expand full limit requested-tags response-content short since",
    "GET /studies/{}": "full requested-tags short",
    "GET /studies/{}/archive": "filename lossy-quality transcode",
    "GET /studies/{}/attachments": "full",
    "GET /studies/{}/attachments/{}/compressed-data": "filename",
    "GET /studies/{}/attachments/{}/data": "filename",
    "GET /studies/{}/instances": "expand full requested-tags short",
    "GET /studies/{}/instances-tags": "ignore-length short simplify",
    "GET /studies/{}/media": "extended filename lossy-quality transcode",
    "GET /studies/{}/metadata": "expand numeric",
    "GET /studies/{}/module": "ignore-length short simplify",
    "GET /studies/{}/module-patient": "ignore-length short simplify",
    "GET /studies/{}/patient": "full requested-tags short",
    "GET /studies/{}/series": "expand full requested-tags short",
    "GET /studies/{}/shared-tags": "short simplify",
    "GET /tools/create-archive": "filename lossy-quality resources transcode",
    "GET /tools/create-media": "filename lossy-quality resources transcode",
    "GET /tools/create-media-extended": "filename lossy-quality resources transcode",
    "GET /tools/generate-uid": "level",
}

_PARAM = re.compile(r"\{([^}:]+)(:path)?\}")


def route_arguments(method: str, pattern: str) -> list[str]:
    """The query arguments of a route, by the same route of Orthanc."""
    key = f"{method.upper()} {_PARAM.sub('{}', pattern)}"
    return ROUTE_ARGUMENTS.get(key, "").split()


def _path_parameter(name: str, rest: bool) -> dict[str, Any]:
    if rest:
        description = "The rest of the path (may contain slashes)."
    elif name == "id":
        description = "Orthanc identifier of the resource."
    else:
        description = f"The {name}."
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


def _query_parameter(name: str) -> dict[str, Any]:
    kind, description = QUERY_ARGUMENTS.get(name, ("string", ""))
    schema: dict[str, Any] = {"type": kind}
    if kind == "array":
        schema["items"] = {"type": "string"}
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _operation_id(method: str, path: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "-", path).strip("-")
    return f"{method.lower()}-{words}" if words else f"{method.lower()}-root"


_ERROR_SCHEMA = {
    "type": "object",
    "description": "Description of an error (when HttpDescribeErrors is true).",
    "properties": {
        "Details": {"type": "string"},
        "HttpError": {"type": "string"},
        "HttpStatus": {"type": "integer"},
        "Message": {"type": "string"},
        "Method": {"type": "string"},
        "OrthancError": {"type": "string"},
        "OrthancStatus": {"type": "integer"},
        "Uri": {"type": "string"},
    },
}


def build_openapi(patterns: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The OpenAPI 3 document of `patterns` ((method, pattern) pairs; default: every route served)."""
    if patterns is None:
        from .api import build_router

        patterns = list(build_router().patterns)
    paths: dict[str, dict[str, Any]] = {}
    tags: set[str] = set()
    for method, pattern in sorted(set(patterns), key=lambda p: (p[1], p[0])):
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", pattern) or "/"
        tag = path.strip("/").split("/")[0] or "system"
        tags.add(tag)
        parameters = [_path_parameter(m.group(1), bool(m.group(2))) for m in _PARAM.finditer(pattern)]
        parameters += [_query_parameter(name) for name in route_arguments(method, pattern)]
        operation: dict[str, Any] = {
            "summary": f"{method.upper()} {path}",
            "operationId": _operation_id(method, path),
            "tags": [tag],
            "responses": {
                "200": {"description": "Success"},
                "default": {"description": "Error",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        if parameters:
            operation["parameters"] = parameters
        if method.upper() in ("POST", "PUT"):
            operation["requestBody"] = {
                "required": False,
                "content": {
                    "application/json": {"schema": {}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Donjon REST API",
            "version": __version__,
            "description": "The routes served by Donjon, a lightweight RESTful DICOM server speaking "
                           "Orthanc's REST API.",
        },
        "servers": [{"url": "http://localhost:8042"}],
        "tags": [{"name": t} for t in sorted(tags)],
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR_SCHEMA},
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{}, {"basic": []}],
    }


def write_openapi(path: str) -> None:
    """Write the OpenAPI document to `path` ("-" for the standard output)."""
    text = json.dumps(build_openapi(), indent=2) + "\n"
    if path == "-":
        sys.stdout.write(text)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
