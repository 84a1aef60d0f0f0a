"""The DICOM server: accepting associations and authorising commands as Orthanc does.

Associations are checked in Orthanc's order (application context, called AET with
`DicomCheckCalledAet`, calling AET against the modalities unless a `DicomAlwaysAllow*` switch is on)
and refused with the matching A-ASSOCIATE-RJ reason. Presentation contexts are negotiated per
association: Verification and the Patient/Study Root FIND, MOVE and GET models with the three
uncompressed syntaxes; storage SOP classes (any, with `UnknownSopClassAccepted`) with the accepted
transfer syntaxes, in Orthanc's order of preference. Each command is then authorised (§9 of the
spec): a refused command aborts the association. `DicomThreadsCount` commands run at once.

The server always works on the current server context (`get_ctx`), so `/tools/reset` is honoured.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynetdicom import evt
from pynetdicom.ae import ApplicationEntity
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_GET, C_MOVE, C_STORE
from pynetdicom.presentation import PresentationContext

from ..errors import ErrorCode, OrthancError
from .fast import FastAssociation, FastRequestHandler, FastServer
from .modalities import RemoteModality, modalities_of, same_aet
from .syntaxes import GENERIC_SYNTAXES, SERVICE_CLASSES, VERIFICATION, accepted_syntaxes, is_storage_class

if TYPE_CHECKING:
    from ..core.context import ServerContext

log = logging.getLogger(__name__)

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
_REQUESTS = {C_ECHO: "echo", C_STORE: "store", C_FIND: "find", C_MOVE: "move", C_GET: "get"}


class _ScpAssociation(FastAssociation):
    """An acceptor whose DIMSE requests go to Donjon's handlers, not to pynetdicom's services."""

    donjon: DicomServer
    calling_aet = ""
    called_aet = ""
    remote_ip = ""
    counted = False  # holds one of the DicomMaximumAssociations slots

    def _serve_request(self, msg: Any, context_id: int) -> None:
        if self._sent_release or not msg.is_valid_request:
            return
        self._is_paused = True  # our own C-STOREs of a C-GET run in this thread
        try:
            self.donjon.serve(self, msg, context_id)
        except Exception:
            log.exception("DICOM request failed, aborting the association")
            self.abort()
        finally:
            self._is_paused = False
            self.dimse.cancel_req = {}


class _Handler(FastRequestHandler):
    association_class = _ScpAssociation

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        assoc.donjon = self.server.donjon
        return assoc


class _Server(FastServer):
    donjon: DicomServer


class DicomServer:
    """Created with the server, started after the context, stopped before it closes."""

    def __init__(self, get_ctx: Callable[[], ServerContext]):
        self.get_ctx = get_ctx
        config = get_ctx().config
        self.aet: str = config["DicomAet"]
        self.port: int = config["DicomPort"]
        self.check_called: bool = config["DicomCheckCalledAet"]
        self.strict: bool = config["StrictAetComparison"]
        self.check_host: bool = config["DicomCheckModalityHost"]
        self.always = {"echo": config["DicomAlwaysAllowEcho"], "store": config["DicomAlwaysAllowStore"],
                       "find": config["DicomAlwaysAllowFind"], "worklist": config["DicomAlwaysAllowFindWorklist"],
                       "get": config["DicomAlwaysAllowGet"], "move": config["DicomAlwaysAllowMove"]}
        self.unknown_sop_accepted: bool = config["UnknownSopClassAccepted"]
        self.transfer_syntaxes = accepted_syntaxes(config)
        self.slots = threading.BoundedSemaphore(max(1, int(config["DicomThreadsCount"])))
        self._cap_lock = threading.Lock()
        timeout = float(config["DicomScpTimeout"]) or None
        self.ae = ApplicationEntity(ae_title=self.aet)
        self.ae.maximum_pdu_size = int(config["MaximumPduLength"])
        self.ae.network_timeout = timeout
        self.ae.acse_timeout = timeout or 30
        self.ae.dimse_timeout = timeout
        # the cap counts associations whose request came in (see _on_requested): connections that stay
        # silent are no association yet, and DicomScpTimeout closes them
        self.max_associations = int(config["DicomMaximumAssociations"])
        self.ae.maximum_associations = 1 << 20
        self.ae.require_called_aet = False
        self.ae.require_calling_aet = []
        self.server: _Server | None = None
        self._thread: threading.Thread | None = None
        from . import scp
        self.services: dict[str, Callable[[DicomServer, Any, Any, PresentationContext], None]] = {
            "echo": scp.handle_echo, "store": scp.handle_store, "find": scp.handle_find,
            "move": scp.handle_move, "get": scp.handle_get}

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        verification = PresentationContext()
        verification.abstract_syntax = VERIFICATION
        verification.transfer_syntax = list(GENERIC_SYNTAXES)
        try:
            server = self.ae.make_server(("0.0.0.0", self.port), ae_title=self.aet, contexts=[verification],
                                         evt_handlers=[(evt.EVT_REQUESTED, self._on_requested)],
                                         server_class=_Server, request_handler=_Handler)
        except OSError as e:
            log.error("Cannot listen on the DICOM port %d: %s", self.port, e)
            raise OrthancError(ErrorCode.DICOM_PORT_IN_USE) from None
        server.donjon = self
        server.max_connections = 2 * self.max_associations + 16
        self.ae._servers.append(server)
        self.server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="donjon-dicom-server", daemon=True)
        self._thread.start()
        log.warning("DICOM server listening on port %d with AET %s", self.port, self.aet)

    def stop(self) -> None:
        server = self.server
        if server is None:
            return
        self.server = None
        try:
            server.shutdown()
        except Exception:
            log.exception("cannot stop the DICOM server")
        for assoc in server.active_associations:
            try:
                assoc.abort()
            except Exception:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- associations -----------------------------------------------------------------------------
    def _on_requested(self, event: Any) -> None:
        assoc: _ScpAssociation = event.assoc
        rq = assoc.requestor.primitive
        assoc.calling_aet = str(rq.calling_ae_title).strip()
        assoc.called_aet = str(rq.called_ae_title).strip()
        assoc.remote_ip = str(assoc.requestor.address)
        reason = self._refusal(str(rq.application_context_name), assoc.called_aet, assoc.calling_aet,
                               assoc.remote_ip)
        if not reason and self._over_cap(assoc):
            log.warning("DICOM association refused (more than %d at once): calling AET %s from %s",
                        self.max_associations, assoc.calling_aet, assoc.remote_ip)
            assoc.acse.send_reject(0x02, 0x03, 0x02)  # transient, presentation related, local limit exceeded
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
        if reason:
            log.warning("DICOM association refused (%s): calling AET %s from %s, called AET %s", reason[1],
                        assoc.calling_aet, assoc.remote_ip, assoc.called_aet)
            assoc.acse.send_reject(0x01, 0x01, reason[0])
            evt.trigger(assoc, evt.EVT_REJECTED, {})
            assoc.kill()
            return
        assoc.acceptor.supported_contexts = self._contexts_for(rq.presentation_context_definition_list)

    def _over_cap(self, assoc: _ScpAssociation) -> bool:
        server = self.server
        if server is None:
            return False
        with self._cap_lock:
            others = sum(1 for a in server.active_associations
                         if a is not assoc and getattr(a, "counted", False) and not a._kill)
            if others >= self.max_associations:
                return True
            assoc.counted = True
            return False

    def _refusal(self, app_context: str, called: str, calling: str, ip: str) -> tuple[int, str] | None:
        if app_context != APPLICATION_CONTEXT:
            return 0x02, "application context name not supported"
        if self.check_called and not same_aet(called, self.aet, self.strict):
            return 0x07, "called AE title not recognized"
        if any(self.always.values()):
            return None
        known = self.modalities_by_aet(calling)
        if not known or (self.check_host and not any(m.host == ip for m in known)):
            return 0x03, "calling AE title not recognized"
        return None

    def _contexts_for(self, requested: list[PresentationContext]) -> list[PresentationContext]:
        out: dict[str, PresentationContext] = {}
        for rq in requested:
            uid = str(rq.abstract_syntax)
            if uid in out:
                continue
            cx = PresentationContext()
            cx.abstract_syntax = uid
            if uid in SERVICE_CLASSES:
                cx.transfer_syntax = list(GENERIC_SYNTAXES)
            elif is_storage_class(uid, self.unknown_sop_accepted):
                cx.transfer_syntax = list(self.transfer_syntaxes)
                cx.scu_role = True  # accept whatever role is proposed (SCP role: C-GET sub-operations)
                cx.scp_role = True
            else:
                continue
            if cx.transfer_syntax:
                out[uid] = cx
        if not out:  # pynetdicom needs something to compare with; nothing proposed will match
            cx = PresentationContext()
            cx.abstract_syntax = VERIFICATION
            cx.transfer_syntax = list(GENERIC_SYNTAXES)
            out[VERIFICATION] = cx
        return list(out.values())

    # -- commands ---------------------------------------------------------------------------------
    def modalities_by_aet(self, aet: str) -> list[RemoteModality]:
        return [m for _, m in modalities_of(self.get_ctx()).by_aet(aet)]

    def is_allowed(self, request: str, calling: str, ip: str) -> bool:
        """Orthanc's IsAllowedRequest (spec §9)."""
        if self.always.get(request, False):
            return True
        known = self.modalities_by_aet(calling)
        if not known:
            return False
        if len(known) == 1:
            m = known[0]
            if self.check_host and m.host != ip:
                return False
            return m.allows(request)
        if self.check_host and any(m.host == ip and m.allows(request) for m in known):
            return True
        return all(m.allows(request) for m in known)

    def manufacturer_of(self, calling: str) -> str:
        known = self.modalities_by_aet(calling)
        return known[0].manufacturer if known else "Generic"

    def serve(self, assoc: _ScpAssociation, msg: Any, context_id: int) -> None:
        context = assoc._accepted_cx.get(context_id)
        request = _REQUESTS.get(type(msg))
        if context is None or request is None:
            log.warning("Unsupported DICOM request %s from %s, aborting the association",
                        type(msg).__name__, assoc.calling_aet)
            assoc.abort()
            return
        if not self.is_allowed(request, assoc.calling_aet, assoc.remote_ip):
            log.warning("DICOM %s refused for AET %s from %s, aborting the association", request.upper(),
                        assoc.calling_aet, assoc.remote_ip)
            assoc.abort()
            return
        with self.slots:
            self.services[request](self, assoc, msg, context)
