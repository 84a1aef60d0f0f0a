"""Donjon as SCU: C-ECHO, C-FIND, C-MOVE and C-STORE towards a modality, with Orthanc's errors.

Every failure is an `OrthancError` with code 9 (NetworkProtocol) and details saying what happened
on the wire, which the REST face turns into a 500 and jobs into their ErrorDetails. C-STORE sends
the stored bytes as they are when the modality accepts their transfer syntax; otherwise, if allowed,
it converts between the uncompressed syntaxes (Donjon has no image codecs yet).
"""

from __future__ import annotations

import io
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.filereader import dcmread
from pynetdicom import build_role, evt
from pynetdicom.ae import ApplicationEntity
from pynetdicom.dsutils import encode
from pynetdicom.presentation import PresentationContext, StoragePresentationContexts

from ..errors import ErrorCode, OrthancError
from ..registry import Level
from .command_sets import store_request
from .fast import FastAssociation, FastSocket, associate, send_dimse
from .meta import split_file
from .modalities import RemoteModality
from .syntaxes import (
    DEFLATED,
    FIND_CLASSES,
    GENERIC_SYNTAXES,
    GET_CLASSES,
    LEE,
    LEI,
    MOVE_CLASSES,
    VERIFICATION,
)

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)
UNCOMPRESSED = frozenset((*GENERIC_SYNTAXES, DEFLATED))
_MAX_CONTEXTS = 128


@dataclass(frozen=True)
class ScuTarget:
    """Where and how to associate: the remote AE, our calling AET, the timeout in seconds."""

    aet: str
    host: str
    port: int
    local_aet: str
    timeout: float
    max_pdu: int = 16384
    allow_transcoding: bool = True


def target_for(ctx: ServerContext, modality: RemoteModality, local_aet: str | None = None,
               timeout: int | None = None) -> ScuTarget:
    """Orthanc's precedence: the modality's LocalAet wins over the request's; the request's Timeout
    over the modality's, then `DicomScuTimeout`."""
    config = ctx.config
    local = modality.local_aet or local_aet or config["DicomAet"]
    seconds = timeout or modality.timeout or config["DicomScuTimeout"] or 10
    allow = bool(config["TranscodeDicomProtocol"]) and modality.allow_transcoding
    return ScuTarget(modality.aet, modality.host, modality.port, local, float(seconds),
                     int(config["MaximumPduLength"]), allow)


def _context(abstract: str, syntaxes: tuple[str, ...] | list[str]) -> PresentationContext:
    cx = PresentationContext()
    cx.abstract_syntax = abstract
    cx.transfer_syntax = list(syntaxes)
    return cx


def _prefix(target: ScuTarget) -> str:
    return f'DicomAssociation - connecting to AET "{target.aet}"'


def open_association(target: ScuTarget, contexts: list[PresentationContext],
                     ext_neg: list[Any] | None = None) -> FastAssociation:
    """An established association, else NetworkProtocol with the reason."""
    try:
        ae = ApplicationEntity(ae_title=target.local_aet)
    except ValueError as e:
        raise OrthancError(ErrorCode.BAD_REQUEST, f"Bad local AET: {e}") from None
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = target.timeout
    try:
        assoc = associate(ae, target.host, target.port, target.aet, contexts, target.max_pdu, ext_neg)
    except socket.gaierror:
        raise OrthancError(ErrorCode.NETWORK_PROTOCOL,
                           f"{_prefix(target)}: Attempt to connect to unknown host: {target.host}") from None
    except (OSError, ValueError) as e:
        raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"{_prefix(target)}: {e}") from None
    if assoc.is_established:
        return assoc
    sock = assoc.dul.socket
    error = sock.connect_error if isinstance(sock, FastSocket) else ""
    if error == "Name or service not known":
        reason = f"Attempt to connect to unknown host: {target.host}"
    elif error:
        reason = f"TCP Initialization Error: {error}"
    elif assoc.is_rejected:
        reason = "Association Rejected"
    elif assoc.is_aborted:
        reason = "Association Aborted"
    else:
        reason = "Association Request Failed (no answer)"
    raise OrthancError(ErrorCode.NETWORK_PROTOCOL, f"{_prefix(target)}: {reason}")


def release(assoc: FastAssociation) -> None:
    try:
        if assoc.is_established:
            assoc.release()
    except Exception:
        log.debug("cannot release an association", exc_info=True)
        assoc.abort()


_UNABLE_TO_PROCESS = {"C-FIND SCU": " (unable to process - invalid query ?)",
                      "C-MOVE SCU": " (unable to process - resource not found ?)"}


def _failure(target: ScuTarget, what: str, status: int | None) -> OrthancError:
    """Orthanc's messages; "unable to process" (0xC000) of a C-FIND or C-MOVE is an HTTP 422."""
    if status is None:
        return OrthancError(ErrorCode.NETWORK_PROTOCOL,
                            f'{what} to AET "{target.aet}" has failed: no answer (timeout or connection lost)')
    text = f'{what} to AET "{target.aet}" has failed with DIMSE status 0x{status:04X}'
    if status == 0xC000 and what in _UNABLE_TO_PROCESS:
        return OrthancError(ErrorCode.NETWORK_PROTOCOL, text + _UNABLE_TO_PROCESS[what], http_status=422)
    return OrthancError(ErrorCode.NETWORK_PROTOCOL, text)


def echo(target: ScuTarget, check_find: bool = False) -> None:
    contexts = [_context(VERIFICATION, GENERIC_SYNTAXES)]
    if check_find:
        contexts.append(_context(FIND_CLASSES[1], GENERIC_SYNTAXES))
    assoc = open_association(target, contexts)
    try:
        status = assoc.send_c_echo()
        code = int(status.Status) if "Status" in status else None
        if code != 0:
            raise _failure(target, "C-ECHO SCU", code)
        if check_find:
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = "1.2.826.0.1.3680043.10.1234.9999." + str(int(time.time()))
            _collect(target, assoc, query, FIND_CLASSES[1])
    finally:
        release(assoc)


def find(target: ScuTarget, level: Level, query: Dataset) -> list[Dataset]:
    """The identifiers answered by the remote modality (Patient Root at patient level, else Study Root)."""
    model = FIND_CLASSES[0] if level == Level.PATIENT else FIND_CLASSES[1]
    assoc = open_association(target, [_context(model, GENERIC_SYNTAXES)])
    try:
        return _collect(target, assoc, query, model)
    finally:
        release(assoc)


def _collect(target: ScuTarget, assoc: FastAssociation, query: Dataset, model: str) -> list[Dataset]:
    answers: list[Dataset] = []
    for status, identifier in assoc.send_c_find(query, model):
        code = int(status.Status) if status is not None and "Status" in status else None
        if code in (0xFF00, 0xFF01):
            if identifier is not None:
                answers.append(identifier)
        elif code in (0x0000, 0xFE00):
            break
        else:
            raise _failure(target, "C-FIND SCU", code)
    return answers


def move(target: ScuTarget, identifier: Dataset, destination: str, assoc: FastAssociation | None = None) -> None:
    """One C-MOVE (Study Root, at every level, as Orthanc); raises unless the final status is success."""
    own = assoc is None
    if assoc is None:
        assoc = move_association(target)
    try:
        final: int | None = None
        for status, _ in assoc.send_c_move(identifier, destination, MOVE_CLASSES[1]):
            final = int(status.Status) if status is not None and "Status" in status else None
            if final != 0xFF00:
                break
        if final != 0x0000:
            raise _failure(target, "C-MOVE SCU", final)
    finally:
        if own:
            release(assoc)


def move_association(target: ScuTarget) -> FastAssociation:
    return open_association(target, [_context(MOVE_CLASSES[1], GENERIC_SYNTAXES)])


# -- C-GET ----------------------------------------------------------------------------------------------

# what we take in the C-STORE sub-operations of our C-GET: uncompressed, and the usual compressed ones
GET_STORAGE_SYNTAXES = (LEE, LEI, GENERIC_SYNTAXES[1], DEFLATED, *(f"1.2.840.10008.1.2.4.{n}" for n in
                        (50, 51, 57, 70, 80, 81, 90, 91)), "1.2.840.10008.1.2.5")


def get_association(target: ScuTarget, on_store: Callable[[Any], int]) -> FastAssociation:
    """Study Root GET plus pynetdicom's 120 common storage classes with the SCP role (as getscu)."""
    contexts = [_context(GET_CLASSES[1], GENERIC_SYNTAXES)]
    roles = []
    for cx in StoragePresentationContexts[:_MAX_CONTEXTS - 1]:
        contexts.append(_context(str(cx.abstract_syntax), GET_STORAGE_SYNTAXES))
        roles.append(build_role(cx.abstract_syntax, scp_role=True))
    assoc = open_association(target, contexts, roles)
    assoc.bind(evt.EVT_C_STORE, on_store)
    return assoc


def get(target: ScuTarget, identifier: Dataset, assoc: FastAssociation) -> None:
    """One C-GET; the instances arrive through the association's C-STORE handler."""
    final: int | None = None
    for status, _ in assoc.send_c_get(identifier, GET_CLASSES[1]):
        final = int(status.Status) if status is not None and "Status" in status else None
        if final != 0xFF00:
            break
    if final != 0x0000:
        raise _failure(target, "C-GET SCU", final)


# -- C-STORE ------------------------------------------------------------------------------------------

def send_raw_store(assoc: FastAssociation, context: PresentationContext, sop_class: str, sop_instance: str,
                   payload: bytes | memoryview, msg_id: int, originator_aet: str = "",
                   originator_id: int = 0) -> int | None:
    """One C-STORE of already-encoded data set bytes; the response status (None: no answer)."""
    command = store_request(msg_id, sop_class, sop_instance, originator_aet, originator_id)
    in_reactor = threading.current_thread() is assoc
    if not in_reactor:
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.0001)
    try:
        send_dimse(assoc, int(context.context_id or 0), command, payload)
        _, rsp = assoc.dimse.get_msg(block=True)
    finally:
        if not in_reactor:
            assoc._reactor_checkpoint.set()
    if rsp is None:
        assoc._handle_no_response()
        return None
    return int(rsp.Status) if getattr(rsp, "Status", None) is not None else None


def store_ok(status: int | None) -> bool:
    """Success or a warning (0xB000, 0xB006, 0xB007: coercion, elements discarded...)."""
    return status is not None and (status == 0 or status >> 12 == 0xB)


@dataclass
class Prepared:
    sop_class: str
    sop_instance: str
    transfer_syntax: str
    data: bytes
    dataset_start: int


def prepare(data: bytes) -> Prepared:
    """SOP class/instance and transfer syntax of a stored file, from its meta header (else its data set)."""
    split = split_file(data)
    sop_class, sop_instance, ts = split.sop_class, split.sop_instance, split.transfer_syntax
    if not sop_class or not sop_instance or not ts:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        sop_class = sop_class or str(ds.get("SOPClassUID", ""))
        sop_instance = sop_instance or str(ds.get("SOPInstanceUID", ""))
        implicit, little = ds.original_encoding
        ts = ts or (LEI if implicit else (LEE if little else GENERIC_SYNTAXES[1]))
    if not sop_class or not sop_instance:
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Missing SOP class or instance UID in a stored file")
    return Prepared(sop_class, sop_instance, ts, data, split.dataset_start)


def transcode_payload(p: Prepared, target_ts: str) -> bytes:
    """The data set re-encoded in another uncompressed transfer syntax."""
    if p.transfer_syntax not in UNCOMPRESSED or target_ts not in UNCOMPRESSED:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED,
                           f"Donjon cannot transcode from {p.transfer_syntax} to {target_ts}")
    ds = dcmread(io.BytesIO(p.data), force=True)
    out = encode(ds, target_ts == LEI, target_ts != GENERIC_SYNTAXES[1], target_ts == DEFLATED)
    if out is None:
        raise OrthancError(ErrorCode.NOT_IMPLEMENTED, f"Cannot encode the data set in {target_ts}")
    return out


class StoreConnection:
    """One association reused for several C-STOREs, renegotiated when a new SOP class or transfer
    syntax shows up (Orthanc's DicomStoreUserConnection)."""

    def __init__(self, target: ScuTarget):
        self.target = target
        self.assoc: FastAssociation | None = None
        self.proposed: list[tuple[str, str]] = []
        self.msg_id = 0

    def close(self) -> None:
        if self.assoc is not None:
            release(self.assoc)
            self.assoc = None

    def _contexts(self) -> list[PresentationContext]:
        out: list[PresentationContext] = []
        for sop_class, ts in self.proposed:
            out.append(_context(sop_class, [ts]))
            if ts not in (LEE, LEI) and self.target.allow_transcoding and ts in UNCOMPRESSED:
                out.append(_context(sop_class, [LEE, LEI]))
        return out[:_MAX_CONTEXTS]

    def _find_context(self, sop_class: str, ts: str) -> tuple[PresentationContext | None, bool]:
        """(context, exact): the context with the file's syntax, else one we could transcode to."""
        assert self.assoc is not None
        fallback = None
        for cx in self.assoc.accepted_contexts:
            if cx.abstract_syntax != sop_class:
                continue
            if cx.transfer_syntax[0] == ts:
                return cx, True
            if fallback is None and cx.transfer_syntax[0] in UNCOMPRESSED:
                fallback = cx
        return fallback, False

    def _context_for(self, sop_class: str, ts: str) -> tuple[PresentationContext, bool]:
        if self.assoc is not None and not self.assoc.is_established:
            self.assoc = None
        if self.assoc is not None:
            cx, exact = self._find_context(sop_class, ts)
            if cx is not None and (exact or self.target.allow_transcoding):
                return cx, exact
        if (sop_class, ts) not in self.proposed:
            self.proposed.append((sop_class, ts))
        self.close()
        self.assoc = open_association(self.target, self._contexts())
        cx, exact = self._find_context(sop_class, ts)
        if cx is None or not (exact or self.target.allow_transcoding):
            raise OrthancError(ErrorCode.NETWORK_PROTOCOL,
                               f'The remote modality "{self.target.aet}" has not accepted SOP class {sop_class} '
                               f"with transfer syntax {ts}")
        return cx, exact

    def store(self, data: bytes, originator_aet: str = "", originator_id: int = 0) -> Prepared:
        p = prepare(data)
        cx, exact = self._context_for(p.sop_class, p.transfer_syntax)
        if exact:
            payload: bytes | memoryview = memoryview(data)[p.dataset_start:]
        else:
            payload = transcode_payload(p, str(cx.transfer_syntax[0]))
        self.msg_id = self.msg_id % 65535 + 1
        assert self.assoc is not None
        status = send_raw_store(self.assoc, cx, p.sop_class, p.sop_instance, payload, self.msg_id,
                                originator_aet, originator_id)
        if not store_ok(status):
            if status is None:
                self.close()
            raise _failure(self.target, "C-STORE SCU", status)
        return p
