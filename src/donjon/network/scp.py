"""The DIMSE services of the DICOM server: C-ECHO, C-STORE, C-FIND, C-MOVE and C-GET.

Each handler receives the decoded request primitive and its accepted presentation context, runs the
core (the same store, find and lookup as the REST API) and sends the responses itself, with
Orthanc's statuses (spec §10).
"""

from __future__ import annotations

import io
import logging
import struct
import zlib
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE
from pynetdicom.dsutils import decode, encode
from pynetdicom.presentation import PresentationContext

from ..core.attachments import read_attachment
from ..core.dicom_query import (
    QUERY_RETRIEVE_LEVEL,
    identifier_values,
    read_identifier,
    retrieve_lookup,
    run_find,
)
from ..core.store import StoreOrigin
from ..errors import ErrorCode, OrthancError
from ..registry import ContentType, Level, Origin, parse_level
from .answers import AnswerEncoder
from .command_sets import find_response, store_response
from .fast import DimseBatch, send_dimse
from .meta import file_meta
from .modalities import RemoteModality
from .scu import Prepared, StoreConnection, prepare, send_raw_store, store_ok, target_for, transcode_payload
from .syntaxes import BEE, DEFLATED, LEI

if TYPE_CHECKING:
    from ..core.context import ServerContext
    from .dicom_server import DicomServer

log = logging.getLogger(__name__)

SUCCESS, PENDING, CANCEL = 0x0000, 0xFF00, 0xFE00
UNABLE_TO_PROCESS = 0xC000
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
SUBOPS_WARNING = 0xB000
GET_ALL_FAILED = 0xA702
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})


def _syntax(context: Any) -> str:
    """The transfer syntax of a context (a PresentationContext or pynetdicom's context tuple)."""
    ts = context.transfer_syntax
    return str(ts if isinstance(ts, str) else ts[0])


def _decode(data: Any, context: Any) -> Dataset:
    ts = UID(_syntax(context))
    return decode(data, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)


def _send(assoc: Any, rsp: Any, context: PresentationContext) -> None:
    assoc.dimse.send_msg(rsp, int(context.context_id or 0))


def _cancelled(assoc: Any, msg_id: int) -> bool:
    return assoc.dimse.cancel_req.pop(msg_id, None) is not None


# -- C-ECHO ---------------------------------------------------------------------------------------------

def handle_echo(server: DicomServer, assoc: Any, req: C_ECHO, context: PresentationContext) -> None:
    rsp = C_ECHO()
    rsp.MessageIDBeingRespondedTo = req.MessageID
    rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
    rsp.Status = SUCCESS
    _send(assoc, rsp, context)


# -- C-STORE --------------------------------------------------------------------------------------------

def dataset_uids(payload: bytes, ts: str) -> tuple[str | None, str | None] | None:
    """SOP class and instance UIDs read from the start of a data set; None if it cannot be walked
    quickly (then pydicom decides)."""
    if ts == DEFLATED:
        try:
            payload = zlib.decompressobj(-zlib.MAX_WBITS).decompress(payload, 1 << 20)
        except zlib.error:
            return None
    implicit, little = ts == LEI, ts != BEE
    e = "<" if little else ">"
    pos, n = 0, len(payload)
    found: dict[int, str] = {}
    while pos + 8 <= n:
        group, element = struct.unpack_from(e + "HH", payload, pos)
        tag = (group << 16) | element
        if tag > 0x00080018:
            break
        vr = payload[pos + 4:pos + 6]
        if implicit:
            length, pos = struct.unpack_from(e + "L", payload, pos + 4)[0], pos + 8
        elif vr in _LONG_VRS:
            length, pos = struct.unpack_from(e + "L", payload, pos + 8)[0], pos + 12
        else:
            length, pos = struct.unpack_from(e + "H", payload, pos + 6)[0], pos + 8
        if length == 0xFFFFFFFF or pos + length > n:
            return None
        if tag in (0x00080016, 0x00080018):
            found[tag] = "".join(payload[pos:pos + length].decode("latin_1").split()).rstrip("\x00")
        pos += length
    return found.get(0x00080016), found.get(0x00080018)


def _uids_slow(payload: bytes, context: PresentationContext) -> tuple[str | None, str | None]:
    try:
        ds = _decode(io.BytesIO(payload), context)
        return str(ds.get("SOPClassUID", "")) or None, str(ds.get("SOPInstanceUID", "")) or None
    except Exception:
        return None, None


def handle_store(server: DicomServer, assoc: Any, req: C_STORE, context: PresentationContext) -> None:
    status = store_status(server.get_ctx(), assoc, req, context)
    command = store_response(int(req.MessageID), str(req.AffectedSOPClassUID), str(req.AffectedSOPInstanceUID),
                             status)
    send_dimse(assoc, int(context.context_id or 0), command)


def store_status(ctx: ServerContext, assoc: Any, req: C_STORE, context: PresentationContext) -> int:
    payload = req.DataSet.getvalue() if req.DataSet is not None else b""
    return store_received(ctx, payload, context, req, StoreOrigin(
        origin=Origin.DICOM_PROTOCOL, remote_ip=assoc.remote_ip, remote_aet=assoc.calling_aet,
        called_aet=assoc.called_aet))


def store_received(ctx: ServerContext, payload: bytes, context: Any, req: Any, origin: StoreOrigin) -> int:
    """Store a data set received by C-STORE (SCP, or C-GET SCU); the DIMSE status to answer."""
    ts = _syntax(context)
    uids = dataset_uids(payload, ts) or _uids_slow(payload, context)
    sop_class, sop_instance = uids
    if not sop_class or not sop_instance:
        log.warning("C-STORE: no SOP class or instance UID in the data set from %s", origin.remote_aet)
        return UNABLE_TO_PROCESS
    if sop_class != str(req.AffectedSOPClassUID).strip() or sop_instance != str(req.AffectedSOPInstanceUID).strip():
        return DOES_NOT_MATCH
    data = file_meta(sop_class, sop_instance, ts) + payload
    try:
        result = ctx.store(data, origin)
    except OrthancError as e:
        log.warning("C-STORE of %s from %s failed: %s", sop_instance, origin.remote_aet, e.details or e.description)
        return UNABLE_TO_PROCESS if e.code == ErrorCode.BAD_FILE_FORMAT else OUT_OF_RESOURCES
    except Exception:
        log.exception("C-STORE of %s failed", sop_instance)
        return OUT_OF_RESOURCES
    return result.dimse_status  # SUCCESS, or the status of a plugin's C-STORE filter


# -- C-FIND ---------------------------------------------------------------------------------------------

def handle_find(server: DicomServer, assoc: Any, req: C_FIND, context: PresentationContext) -> None:
    rsp = C_FIND()
    rsp.MessageIDBeingRespondedTo = req.MessageID
    rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
    ctx = server.get_ctx()
    config = ctx.config
    if ctx.plugins is not None and ctx.plugins.find_callback is not None:
        _plugin_find(ctx, assoc, req, context)
        return
    try:
        q = read_identifier(_decode(req.Identifier, context), ctx.default_encoding)
        limit = config["LimitFindInstances"] if q.level == Level.INSTANCE else config["LimitFindResults"]
        answers, complete = run_find(ctx, q, server.aet, config["CaseSensitivePN"], int(limit or 0),
                                     server.manufacturer_of(assoc.calling_aet))
    except Exception as e:
        log.warning("C-FIND from %s failed: %s", assoc.calling_aet, getattr(e, "details", None) or e)
        rsp.Status = UNABLE_TO_PROCESS
        _send(assoc, rsp, context)
        return
    ts = context.transfer_syntax[0]
    encoder = AnswerEncoder(config["DefaultEncoding"], ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated)
    msg_id, sop_class, cx_id = int(req.MessageID), str(req.AffectedSOPClassUID), int(context.context_id or 0)
    pending = find_response(msg_id, sop_class, PENDING, True)
    batch = DimseBatch(assoc, cx_id)
    for answer in answers:
        if _cancelled(assoc, req.MessageID):
            batch.send(find_response(msg_id, sop_class, CANCEL, False))
            batch.flush()
            return
        batch.send(pending, encoder.encode(answer, q))
    if not complete:
        log.warning("Too many results for an incoming C-FIND query")
    batch.send(find_response(msg_id, sop_class, SUCCESS if complete else CANCEL, False))
    batch.flush()


def _plugin_find(ctx: ServerContext, assoc: Any, req: C_FIND, context: PresentationContext) -> None:
    """A C-FIND answered by the Python plugin's callback (`RegisterFindCallback`), as in Orthanc."""
    assert ctx.plugins is not None
    msg_id, sop_class, cx_id = int(req.MessageID), str(req.AffectedSOPClassUID), int(context.context_id or 0)
    try:
        found = ctx.plugins.find(_decode(req.Identifier, context), _syntax(context), assoc.calling_aet,
                                 assoc.called_aet)
    except Exception:
        log.exception("C-FIND from %s failed in the plugin", assoc.calling_aet)
        found = None
    if found is None:
        send_dimse(assoc, cx_id, find_response(msg_id, sop_class, UNABLE_TO_PROCESS, False))
        return
    answers, complete = found
    pending = find_response(msg_id, sop_class, PENDING, True)
    for answer in answers:
        if _cancelled(assoc, req.MessageID):
            send_dimse(assoc, cx_id, find_response(msg_id, sop_class, CANCEL, False))
            return
        send_dimse(assoc, cx_id, pending, answer)
    send_dimse(assoc, cx_id, find_response(msg_id, sop_class, SUCCESS if complete else CANCEL, False))


# -- C-MOVE and C-GET -------------------------------------------------------------------------------------

def _lookup(ctx: ServerContext, req: Any, context: PresentationContext, level_required: bool) -> list[str]:
    values = identifier_values(_decode(req.Identifier, context), ctx.default_encoding)
    level_text = values.get(QUERY_RETRIEVE_LEVEL, "").strip()
    if level_required and not level_text:
        raise OrthancError(ErrorCode.BAD_REQUEST, "C-GET request without QueryRetrieveLevel")
    level = parse_level(level_text) if level_text else None
    instances = retrieve_lookup(ctx, values, level)
    if not instances:
        raise OrthancError(ErrorCode.UNKNOWN_RESOURCE, "No resource matches the retrieve request")
    return instances


def read_instance(ctx: ServerContext, instance_id: str) -> bytes | None:
    """The stored DICOM file of an instance, None if it was deleted meanwhile."""
    def run(tx: Any) -> Any:
        found = tx.lookup(instance_id)
        return tx.attachment(found[0], ContentType.DICOM) if found is not None else None
    info = ctx.index.read(run)
    return read_attachment(ctx.storage, info) if info is not None else None


def _counters(rsp: Any, remaining: int, completed: int, failed: int, warning: int) -> None:
    rsp.NumberOfRemainingSuboperations = remaining
    rsp.NumberOfCompletedSuboperations = completed
    rsp.NumberOfFailedSuboperations = failed
    rsp.NumberOfWarningSuboperations = warning


def _failed_list(uids: list[str], context: PresentationContext) -> io.BytesIO:
    ds = Dataset()
    ds.FailedSOPInstanceUIDList = uids if len(uids) != 1 else uids[0]
    ts = context.transfer_syntax[0]
    return io.BytesIO(encode(ds, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated) or b"")


def destination_of(server: DicomServer, aet: str) -> RemoteModality:
    """The modality a C-MOVE sends to: looked up by AET among the known modalities."""
    found = server.modalities_by_aet(aet)
    if not found:
        raise OrthancError(ErrorCode.UNKNOWN_MODALITY, f"Unknown move destination AET: {aet}")
    return found[0]


def handle_move(server: DicomServer, assoc: Any, req: C_MOVE, context: PresentationContext) -> None:
    rsp = C_MOVE()
    rsp.MessageIDBeingRespondedTo = req.MessageID
    rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
    ctx = server.get_ctx()
    if ctx.plugins is not None and ctx.plugins.move_callback is not None:
        # the plugin's callback replaces the C-MOVE SCP: one sub-operation, failed if it raised
        ok = ctx.plugins.move(_decode(req.Identifier, context), assoc.calling_aet, assoc.called_aet,
                              str(req.MoveDestination).strip(), int(req.MessageID))
        _counters(rsp, 0, 1 if ok else 0, 0 if ok else 1, 0)
        rsp.Status = SUCCESS if ok else SUBOPS_WARNING
        _send(assoc, rsp, context)
        return
    try:
        destination = destination_of(server, str(req.MoveDestination).strip())
        instances = _lookup(ctx, req, context, level_required=False)
    except Exception as e:
        log.warning("C-MOVE from %s refused: %s", assoc.calling_aet, getattr(e, "details", None) or e)
        rsp.Status = UNABLE_TO_PROCESS
        _send(assoc, rsp, context)
        return
    if not ctx.config["SynchronousCMove"]:
        from .jobs import DicomModalityStoreJob
        job = DicomModalityStoreJob(ctx, instances, destination, description="C-MOVE",
                                    local_aet=server.aet, move_originator=(assoc.calling_aet, int(req.MessageID)))
        ctx.jobs.submit(job, 0)
        _counters(rsp, 0, 1, 0, 0)
        rsp.Status = SUCCESS
        _send(assoc, rsp, context)
        return
    conn = StoreConnection(target_for(ctx, destination, local_aet=server.aet))
    total, completed, failed_uids = len(instances), 0, []
    try:
        for i, instance_id in enumerate(instances):
            if _cancelled(assoc, req.MessageID):
                _counters(rsp, total - i, completed, len(failed_uids), 0)
                rsp.Status = CANCEL
                rsp.Identifier = _failed_list(failed_uids, context) if failed_uids else None
                _send(assoc, rsp, context)
                return
            data = read_instance(ctx, instance_id)
            try:
                if data is None:
                    raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
                conn.store(data, assoc.calling_aet, int(req.MessageID))
                completed += 1
            except OrthancError as e:
                if conn.assoc is None and completed == 0 and not failed_uids and e.code == ErrorCode.NETWORK_PROTOCOL:
                    raise  # the destination cannot be reached at all
                log.warning("C-MOVE sub-operation failed for %s: %s", instance_id, e.details or e.description)
                failed_uids.append(_sop_instance_of(data) or "")
            if i + 1 < total:
                _counters(rsp, total - i - 1, completed, len(failed_uids), 0)
                rsp.Status = PENDING
                _send(assoc, rsp, context)
    except Exception as e:
        log.warning("C-MOVE to %s failed: %s", destination.aet, getattr(e, "details", None) or e)
        rsp.Status = UNABLE_TO_PROCESS
        _counters(rsp, 0, completed, total - completed, 0)
        _send(assoc, rsp, context)
        return
    finally:
        conn.close()
    _counters(rsp, 0, completed, len(failed_uids), 0)
    rsp.Status = SUBOPS_WARNING if failed_uids else SUCCESS
    rsp.Identifier = _failed_list(failed_uids, context) if failed_uids else None
    _send(assoc, rsp, context)


def _sop_instance_of(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return prepare(data).sop_instance
    except OrthancError:
        return None


def _get_context(assoc: Any, p: Prepared, transcoding: bool) -> tuple[PresentationContext | None, bool]:
    """An accepted context of this association where we can play the storage SCU role."""
    fallback = None
    for cx in assoc.accepted_contexts:
        if cx.abstract_syntax != p.sop_class or not cx.as_scu:
            continue
        if cx.transfer_syntax[0] == p.transfer_syntax:
            return cx, True
        if fallback is None and transcoding:
            fallback = cx
    return fallback, False


def handle_get(server: DicomServer, assoc: Any, req: C_GET, context: PresentationContext) -> None:
    rsp = C_GET()
    rsp.MessageIDBeingRespondedTo = req.MessageID
    rsp.AffectedSOPClassUID = req.AffectedSOPClassUID
    ctx = server.get_ctx()
    try:
        instances = _lookup(ctx, req, context, level_required=True)
    except Exception as e:
        log.warning("C-GET from %s refused: %s", assoc.calling_aet, getattr(e, "details", None) or e)
        rsp.Status = UNABLE_TO_PROCESS
        _send(assoc, rsp, context)
        return
    known = server.modalities_by_aet(assoc.calling_aet)
    transcoding = bool(ctx.config["TranscodeDicomProtocol"]) and (not known or known[0].allow_transcoding)
    total, completed, warnings, failed_uids = len(instances), 0, 0, []
    msg_id = int(req.MessageID)
    for i, instance_id in enumerate(instances):
        if _cancelled(assoc, req.MessageID):
            _counters(rsp, total - i, completed, len(failed_uids), warnings)
            rsp.Status = CANCEL
            rsp.Identifier = _failed_list(failed_uids, context) if failed_uids else None
            _send(assoc, rsp, context)
            return
        data = read_instance(ctx, instance_id)
        uid = ""
        try:
            if data is None:
                raise OrthancError(ErrorCode.UNKNOWN_RESOURCE)
            p = prepare(data)
            uid = p.sop_instance
            cx, exact = _get_context(assoc, p, transcoding)
            if cx is None:
                raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"No presentation context for {p.sop_class}")
            payload = memoryview(data)[p.dataset_start:] if exact else transcode_payload(p, str(cx.transfer_syntax[0]))
            msg_id = msg_id % 65535 + 1
            status = send_raw_store(assoc, cx, p.sop_class, p.sop_instance, payload, msg_id)
            if status is None:
                return  # the association is gone
            if not store_ok(status):
                raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"C-STORE status 0x{status:04X}")
            if status != SUCCESS:
                warnings += 1
            else:
                completed += 1
        except OrthancError as e:
            log.warning("C-GET sub-operation failed for %s: %s", instance_id, e.details or e.description)
            failed_uids.append(uid)
        if i + 1 < total:
            _counters(rsp, total - i - 1, completed, len(failed_uids), warnings)
            rsp.Status = PENDING
            rsp.Identifier = None
            _send(assoc, rsp, context)
    _counters(rsp, 0, completed, len(failed_uids), warnings)
    if failed_uids and len(failed_uids) == total:
        rsp.Status = GET_ALL_FAILED
    elif failed_uids or warnings:
        rsp.Status = SUBOPS_WARNING
    else:
        rsp.Status = SUCCESS
    rsp.Identifier = _failed_list(failed_uids, context) if failed_uids else None
    _send(assoc, rsp, context)
