"""`/system`, `/statistics`, `/changes`, `/exports` and the root redirect."""

from __future__ import annotations

import functools
from typing import Any

from .. import __version__
from ..dicom.main_tags import MAIN_TAGS, format_tag
from ..registry import CHANGE_NAMES, Level
from .app import Api
from .common import parse_uint
from .http import Request, Response, Router, empty_response, json_response

API_VERSION = 24
DATABASE_VERSION = 6


def register(router: Router) -> None:
    router.add("GET", "/", root)
    router.add("GET", "/system", system)
    router.add("GET", "/statistics", statistics)
    router.add("GET", "/changes", changes)
    router.add("DELETE", "/changes", clear_changes)
    router.add("GET", "/exports", exports)
    router.add("DELETE", "/exports", clear_exports)


async def root(api: Api, request: Request) -> Response:
    return Response(301, b"", None, [(b"location", b"app/explorer.html")])


@functools.cache
def _main_tags_description() -> dict[str, str]:
    return {level.type_name: ";".join(format_tag(t) for t, _ in MAIN_TAGS[level]) for level in Level}


async def system(api: Api, request: Request) -> Response:
    config = api.ctx.config
    secure = api.app.is_secure if api.app is not None else True
    return json_response({
        "ApiVersion": API_VERSION,
        "CheckRevisions": config["CheckRevisions"],
        "DatabaseBackendPlugin": None,
        "DatabaseServerIdentifier": config["DatabaseServerIdentifier"] or "donjon",
        "DatabaseVersion": DATABASE_VERSION,
        "DicomAet": config["DicomAet"],
        "DicomPort": config["DicomPort"],
        "HasLabels": True,
        "HttpPort": config["HttpPort"],
        "IngestTranscoding": config["IngestTranscoding"] or "",
        "IsHttpServerSecure": secure,
        "MainDicomTags": dict(_main_tags_description()),
        "MaximumPatientCount": config["MaximumPatientCount"],
        "MaximumStorageMode": "Reject" if config["MaximumStorageMode"] == "Reject" else "Recycle",
        "MaximumStorageSize": config["MaximumStorageSize"],
        "Name": config["Name"],
        "OverwriteInstances": config["OverwriteInstances"],
        "PluginsEnabled": True,  # as an Orthanc built with plugin support, with or without a plugin loaded
        "StorageAreaPlugin": api.ctx.plugins.settings.script
        if api.ctx.plugins is not None and api.ctx.plugins.storage is not None else None,
        "StorageCompression": config["StorageCompression"],
        "UserMetadata": api.ctx.metadata_names.user_names(),
        "Version": __version__,
    })


def _mb(value: int) -> int:
    return value // (1024 * 1024)


async def statistics(api: Api, request: Request) -> Response:
    c = api.ctx.index.reader().counters()
    return json_response({
        "CountInstances": c["level4"], "CountPatients": c["level1"], "CountSeries": c["level3"],
        "CountStudies": c["level2"],
        "TotalDiskSize": str(c["disk"]), "TotalDiskSizeMB": _mb(c["disk"]),
        "TotalUncompressedSize": str(c["uncompressed"]), "TotalUncompressedSizeMB": _mb(c["uncompressed"]),
    })


def _since_limit_lenient(request: Request) -> tuple[int, int]:
    """`since` (default 0) and `limit` (default 100) of /changes and /exports. Orthanc 1.10.1 silently
    falls back to 0 and 100 when either does not parse; Donjon answers 400 (docs/compatibility.md)."""
    q = request.query
    since = parse_uint(q["since"], "since", 0x7FFFFFFFFFFFFFFF) if "since" in q else 0
    limit = parse_uint(q["limit"], "limit") if "limit" in q else 100
    return since, limit


def _change_json(row: Any) -> dict[str, Any]:
    level = Level(row.level)
    return {"ChangeType": CHANGE_NAMES.get(row.change_type, str(row.change_type)), "Date": row.date,
            "ID": row.public_id, "Path": f"/{level.collection}/{row.public_id}",
            "ResourceType": level.type_name, "Seq": row.seq}


async def changes(api: Api, request: Request) -> Response:
    def run(tx: Any) -> dict[str, Any]:
        if "last" in request.query:
            last = tx.last_change()
            rows = [last] if last is not None else []
            return {"Changes": [_change_json(r) for r in rows], "Done": True,
                    "Last": rows[-1].seq if rows else tx.last_change_seq()}
        since, limit = _since_limit_lenient(request)
        rows = tx.changes(since, limit) if limit > 0 else []
        if rows:
            last = rows[-1].seq
            done = not tx.has_changes_after(last)
        else:
            last = tx.last_change_seq()
            done = not tx.has_changes_after(since)
        return {"Changes": [_change_json(r) for r in rows], "Done": done, "Last": last}
    return json_response(await api.run(api.ctx.index.read, run))


async def clear_changes(api: Api, request: Request) -> Response:
    await api.run(api.ctx.index.write, lambda tx: tx.clear_changes())
    return empty_response()


def _export_json(row: dict[str, Any]) -> dict[str, Any]:
    level = Level(row["level"])
    out: dict[str, Any] = {"Seq": row["seq"], "ResourceType": level.type_name, "ID": row["public_id"],
                           "Path": f"/{level.collection}/{row['public_id']}",
                           "RemoteModality": row["remote_modality"], "Date": row["date"],
                           "PatientID": row["patient_id"]}
    if level >= Level.STUDY:
        out["StudyInstanceUID"] = row["study_uid"]
    if level >= Level.SERIES:
        out["SeriesInstanceUID"] = row["series_uid"]
    if level >= Level.INSTANCE:
        out["SOPInstanceUID"] = row["sop_uid"]
    return out


async def exports(api: Api, request: Request) -> Response:
    def run(tx: Any) -> dict[str, Any]:
        since, limit = _since_limit_lenient(request)
        if "last" in request.query:
            seq = tx.last_export_seq()
            rows = tx.exports(seq - 1, 1) if seq else []
            return {"Exports": [_export_json(r) for r in rows], "Done": True,
                    "Last": rows[-1]["seq"] if rows else 0}
        rows = tx.exports(since, limit) if limit > 0 else []
        if rows:
            last = rows[-1]["seq"]
            done = not tx.has_exports_after(last)
        else:
            last = since
            done = not tx.has_exports_after(since)
        return {"Exports": [_export_json(r) for r in rows], "Done": done, "Last": last}
    return json_response(await api.run(api.ctx.index.read, run))


async def clear_exports(api: Api, request: Request) -> Response:
    await api.run(api.ctx.index.write, lambda tx: tx.clear_exports())
    return empty_response()
