"""pynetdicom without its polling loops: blocking waits, TCP_NODELAY, fewer copies.

Out of the box, pynetdicom (3.0) runs two threads per association that poll: the DUL reactor sleeps
1 ms whenever it finds nothing to do, and so does the association reactor. A C-STORE round trip then
pays two or three of these sleeps (plus Linux's timer slack), which caps a storescu session at
~350 instances/s whatever the server does. Here the DUL waits in `select()` on its socket and on a
wake-up socket written to whenever a primitive is queued for it, and the association reactor waits
on an event set whenever a DIMSE message or an ACSE primitive is queued for it. Nagle's algorithm is
turned off on every socket (a C-STORE-RSP must not wait for a delayed ACK), a PDU received in part
is acknowledged at once (the peer's own Nagle must not hold its rest: `quick_ack`), PDUs are read
with `recv_into` instead of 4 KiB slices, and written with `sendall`.

The classes subclass pynetdicom's and override only the loops; the state machine, the PDU codecs
and the DIMSE provider are pynetdicom's own. Written against pynetdicom 3.0.x.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime
from io import BytesIO
from typing import Any, cast

from pynetdicom import _config as pynetdicom_config
from pynetdicom import evt
from pynetdicom._globals import MODE_ACCEPTOR, MODE_REQUESTOR
from pynetdicom.ae import ApplicationEntity
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import (
    AddressInformation,
    AssociationSocket,
    RequestHandler,
    ThreadedAssociationServer,
)

from . import fast_commands

log = logging.getLogger(__name__)

TICK = 0.1  # the longest a reactor sleeps before looking at its timers again
# pynetdicom's default handlers format every DIMSE message for a debug log nobody reads
pynetdicom_config.LOG_HANDLER_LEVEL = "none"
fast_commands.install()  # C-STORE command sets decoded by hand


class _WakeQueue(queue.Queue):  # type: ignore[type-arg]
    """A queue that calls `on_put` after every put (under the queue's lock, so it must not block)."""

    def __init__(self, on_put: Callable[[], Any]):
        super().__init__()
        self._on_put = on_put

    def _put(self, item: Any) -> None:
        super()._put(item)
        self._on_put()


class _RecordingSocket(socket.socket):
    """A socket that remembers why `connect()` failed (pynetdicom only logs it)."""

    error = ""

    def connect(self, address: Any) -> None:
        try:
            super().connect(address)
        except OSError as e:
            self.error = e.strerror or str(e) or type(e).__name__
            raise


class FastSocket(AssociationSocket):
    """AssociationSocket with TCP_NODELAY, quick acknowledgements, `recv_into` and `sendall`."""

    raw_socket: _RecordingSocket | None = None

    def _create_socket(self, address: AddressInformation) -> socket.socket:
        sock = _RecordingSocket(socket.AF_INET if address.is_ipv4 else socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        set_nodelay(sock)
        if self.assoc.network_timeout is not None:
            sock.settimeout(self.assoc.network_timeout)
        sock.bind(address.as_tuple)
        self._is_connected = False
        self.raw_socket = sock
        return sock

    @property
    def connect_error(self) -> str:
        return self.raw_socket.error if self.raw_socket is not None else ""

    def recv(self, nr_bytes: int) -> bytearray:
        """Read exactly `nr_bytes`, within the network timeout counted from the first byte of the read
        (not per packet: a peer trickling one byte at a time cannot hold the association)."""
        sock = cast(socket.socket, self.socket)
        buf = bytearray(nr_bytes)
        view = memoryview(buf)
        got = 0
        timeout = self.assoc.network_timeout
        deadline = time.monotonic() + timeout if timeout else None
        while got < nr_bytes:
            if deadline is not None and got:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("PDU not received within the network timeout")
                sock.settimeout(remaining)
            n = sock.recv_into(view[got:], nr_bytes - got)
            if not n:
                del view
                return buf[:got]  # the peer closed: the caller sees a short read
            got += n
            if got < nr_bytes:  # the rest may wait for our acknowledgement (`quick_ack`)
                quick_ack(sock)
        if deadline is not None and nr_bytes > 0 and sock.gettimeout() != timeout:
            sock.settimeout(timeout)
        return buf

    _send_lock = threading.Lock()  # replaced per socket at its first send (see `lock`)

    @property
    def lock(self) -> threading.Lock:
        """Orders whole writes of the DUL thread and of `DimseBatch` on this socket."""
        lock = self.__dict__.get("_own_lock")
        if lock is None:
            with FastSocket._send_lock:
                lock = self.__dict__.setdefault("_own_lock", threading.Lock())
        return lock

    def send(self, bytestream: bytes) -> None:
        try:
            with self.lock:
                cast(socket.socket, self.socket).sendall(bytestream)
            evt.trigger(self.assoc, evt.EVT_DATA_SENT, {"data": bytestream})
        except Exception:
            self.event_queue.put("Evt17")  # transport connection closed


_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux


def quick_ack(sock: socket.socket) -> None:
    """Acknowledge what was received at once. A peer with Nagle's algorithm on (DCMTK's tools by
    default) writes a PDU in several small writes and holds the next ones until the first is
    acknowledged, while Linux delays that acknowledgement up to 40 ms after a connection has sent
    data: each C-FIND of findscu waited 40-60 ms in the middle of its request's first PDU
    (1,000 answers: 76 -> 27-37 ms per C-FIND, docs/benchmarks.md)."""
    if _QUICKACK is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        except OSError:
            pass


def set_nodelay(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


class _PData:
    """A received P-DATA-TF reduced to what the state machine needs (`to_primitive`), its values
    being views of the received buffer (no copy until DIMSE assembles the message)."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[int, memoryview]]):
        self.items = items

    def to_primitive(self) -> P_DATA:
        primitive = P_DATA()
        primitive._presentation_data_value_list = self.items  # type: ignore[assignment] # the setter wants bytes
        return primitive


_PDU_HEADER = struct.Struct(">BBL")
_UL_BE = struct.Struct(">L")


class FastDUL(DULServiceProvider):
    """The DUL reactor, waiting in select() instead of sleeping 1 ms between looks."""

    def __init__(self, assoc: Association, wake_assoc: threading.Event):
        super().__init__(assoc)
        self.daemon = True  # pynetdicom's DUL threads are not daemons: one stuck peer would keep us alive
        self._wake_r, self._wake_w = socket.socketpair()
        self._poked = False
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.to_provider_queue = _WakeQueue(self._poke)
        self.event_queue = _WakeQueue(self._poke)
        self.to_user_queue = _WakeQueue(wake_assoc.set)

    def _poke(self) -> None:
        """Wake the reactor up (from another thread; one pending wake-up is enough)."""
        if self._poked or threading.current_thread() is self:
            return
        self._poked = True
        try:
            self._wake_w.send(b"\0")
        except OSError:  # the DUL has ended
            pass

    def _wait(self, timeout: float) -> bool:
        """Wait for the socket or a wake-up; True if the socket has data (or was closed)."""
        fds: list[Any] = [self._wake_r]
        assoc_sock = self.socket
        sock = assoc_sock.socket if assoc_sock is not None and assoc_sock._is_connected else None
        if sock is not None:
            fds.append(sock)
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):  # the socket was closed by another thread
            return False
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass
            self._poked = False  # after draining: a poke racing with us is seen by the queue checks
        return sock is not None and sock in ready

    def _transport_event(self, readable: bool) -> bool:
        """pynetdicom's _is_transport_event, with the readiness already known from `_wait`."""
        assoc_sock = self.socket
        if self.state_machine.current_state == "Sta13":
            if assoc_sock is not None and readable:
                self._read_pdu_data()
                return True
            cast(AssociationSocket, assoc_sock).close()
            return True
        if assoc_sock is not None and readable:
            self._read_pdu_data()
            return True
        return False

    def _read_pdu_data(self) -> None:
        """pynetdicom's reader, with P-DATA-TF parsed in place (the hot path of C-STORE)."""
        sock = cast(AssociationSocket, self.socket)
        try:
            header = sock.recv(6)
            if len(header) < 6:
                raise ConnectionError("connection closed")
            pdu_type, _, length = _PDU_HEADER.unpack(header)
            if pdu_type not in (0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07):
                self.event_queue.put("Evt19")
                return
            body = sock.recv(length)
            if len(body) != length:
                raise ConnectionError("connection closed inside a PDU")
        except (OSError, TimeoutError):
            self.event_queue.put("Evt17")
            return
        if pdu_type != 0x04:
            try:
                pdu, event = self._decode_pdu(bytearray(header) + body)
            except Exception:
                log.exception("Unable to decode the received PDU data")
                self.event_queue.put("Evt19")
                return
            self.event_queue.put(event)
            self._recv_pdu.put(pdu)
            return
        view = memoryview(body)
        items: list[tuple[int, memoryview]] = []
        offset = 0
        while offset < length:
            if offset + 6 > length:
                self.event_queue.put("Evt19")
                return
            item_length = _UL_BE.unpack_from(body, offset)[0]
            end = offset + 4 + item_length
            if item_length < 2 or end > length:
                self.event_queue.put("Evt19")
                return
            items.append((body[offset + 4], view[offset + 5:end]))
            offset = end
        if self._append_fragments(items):
            return
        self.event_queue.put("Evt10")
        self._recv_pdu.put(_PData(items))  # type: ignore[arg-type]

    def _append_fragments(self, items: list[tuple[int, memoryview]]) -> bool:
        """Append a P-DATA-TF that only continues a data set straight to the message being received.

        A 0.5 MB instance arrives as ~32 such PDUs (16 KB each). The state machine's action for them
        (Sta6 + Evt10: DT-2) hands them to DIMSE, which appends non-final data-set fragments to a
        buffer and nothing else; doing that here saves two queue hand-offs, the transition's event
        dispatch and the primitive per PDU. Anything else (a command, a last fragment, another
        state, events still queued) takes the state machine's path."""
        if self.state_machine.current_state != "Sta6" or not self.event_queue.empty() or not self._recv_pdu.empty():
            return False
        message = self.assoc.dimse.message
        if message is None or message.context_id is None or message._data_set_file is not None:
            return False
        for _, data in items:
            if data[0] & 0x03:  # a command fragment, or the last fragment of the data set
                return False
        target = cast(BytesIO, message.data_set)
        for _, data in items:
            target.write(data[1:])
        return True

    def kill_dul(self) -> None:
        self._kill_thread = True
        self._poke()

    def stop_dul(self) -> bool:
        if self.state_machine.current_state != "Sta1":
            return False
        self._kill_thread = True
        self._poke()
        if threading.current_thread() is not self:
            self.join(timeout=5)
        return True

    def run_reactor(self) -> None:
        """pynetdicom's loop, with one select() per turn: blocking when there was nothing to do
        (where pynetdicom slept `_run_loop_delay`), else just a look."""
        self._idle_timer.start()
        idle = False
        try:
            while True:
                if not self.assoc._dul_ready.is_set():
                    self.assoc._dul_ready.set()
                readable = self._wait(TICK if idle else 0)
                if self._kill_thread:
                    break
                if self.artim_timer.expired:
                    self.event_queue.put("Evt18")
                try:
                    if self._process_recv_primitive():
                        pass
                    elif self._transport_event(readable):
                        self._idle_timer.restart()
                except Exception:
                    log.exception("DICOM upper layer failure, aborting the association")
                    self._hard_abort()
                    return
                try:
                    event = self.event_queue.get(block=False)
                except queue.Empty:
                    idle = True
                    continue
                self.state_machine.do_action(event)
                idle = False
        finally:
            self._wake_w.close()
            self._wake_r.close()

    def _hard_abort(self) -> None:
        abort_pdu = A_ABORT_RQ()
        abort_pdu.source = 0x02
        abort_pdu.reason_diagnostic = 0x00
        try:
            cast(AssociationSocket, self.socket).send(abort_pdu.encode())
        except Exception:
            pass
        self.assoc.is_aborted = True
        self.assoc.is_established = False
        self.assoc._kill = True
        self._kill_thread = True


class FastAssociation(Association):
    """An Association whose reactor waits for work instead of polling every millisecond."""

    def __init__(self, ae: ApplicationEntity, mode: str):
        super().__init__(ae, mode)
        self._wake = threading.Event()
        self.dul = FastDUL(self, self._wake)
        self.network_timeout = ae.network_timeout  # re-applied to the new DUL's idle timer
        self.dimse.msg_queue = _WakeQueue(self._wake.set)

    def kill(self) -> None:
        self._wake.set()
        if self.dul.is_alive() and self.dul.state_machine.current_state in ("Sta2", "Sta13"):
            # no A-ASSOCIATE-RQ came in time (or the peer never closed): pynetdicom would wait for the
            # DUL to reach Sta1, which a silent peer never lets happen; closing the transport does
            sock = self.dul.socket
            if sock is not None:
                try:
                    sock.close()
                except Exception:
                    pass
        super().kill()

    def _run_reactor(self) -> None:
        """pynetdicom's acceptor/requestor loop; the reactor counts as paused while it waits."""
        wake = self._wake
        checkpoint = self._reactor_checkpoint
        while not self._kill:
            self._is_paused = True
            wake.wait(TICK)
            wake.clear()
            checkpoint.wait()
            self._is_paused = False
            if not checkpoint.is_set():
                continue  # someone paused us right after the wait: give them the queues
            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, cast(int, context_id))
                wake.set()  # look again at once: more messages may be queued
            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return
            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return
            if not self.dul.is_alive():
                self.kill()
                return
            if self.dul.idle_timer_expired():
                log.info("DICOM association idle for too long, aborting it")
                self.abort()
                self.kill()
                return


class FastRequestHandler(RequestHandler):
    """Creates FastAssociation acceptors (subclass: `association_class`)."""

    association_class: type[FastAssociation] = FastAssociation

    def _create_association(self) -> Association:
        server = self.server
        assoc = self.association_class(self.ae, MODE_ACCEPTOR)
        assoc._server = server
        assoc.name = f"AcceptorThread@{datetime.now():%Y%m%d%H%M%S}"
        sock = FastSocket(assoc, client_socket=self.request)
        assoc.set_socket(sock)
        assoc.acceptor.maximum_length = self.ae.maximum_pdu_size
        assoc.acceptor.ae_title = server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = self.ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = self.ae.implementation_version_name
        assoc.acceptor.supported_contexts = list(server.contexts)  # replaced when the request is read
        assoc.requestor.address_info = self.remote
        for event, handlers in server._handlers.items():
            if event.is_intervention and handlers:
                assoc.bind(event, *handlers)
            elif isinstance(event, evt.NotificationEvent):
                for handler in handlers:
                    assoc.bind(event, handler[0], handler[1])
        return assoc


class FastServer(ThreadedAssociationServer):
    """The listening server: TCP_NODELAY and a read timeout on every accepted socket."""

    daemon_threads = True
    max_connections = 1 << 30  # open TCP connections, associated or not (set by the owner)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Beyond `max_connections`, connections are closed at once (a flood of idle sockets would
        otherwise cost two threads each); the association cap itself is answered with A-ASSOCIATE-RJ."""
        acceptors = sum(1 for t in threading.enumerate() if "AcceptorThread" in t.name)
        if acceptors >= self.max_connections:
            log.warning("Too many DICOM connections (%d): closing the one from %s", acceptors, client_address)
            return False
        return True

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        set_nodelay(client)
        client.settimeout(self.ae.network_timeout)
        return client, address


_PDV_HEADER = struct.Struct(">LBB")


# -- DIMSE messages without pydicom: command sets are small and fixed, encoding them is the hot path --

def send_dimse(assoc: Association, context_id: int, command: bytes, dataset: bytes | memoryview | None = None) -> None:
    """Send an encoded command (and data set) as P-DATA, fragmented to the peer's maximum PDU.

    A message that fits in one PDU is written to the socket by the calling thread when nothing is
    queued for the DUL (so nothing can be overtaken): a C-STORE response then costs no wake-up of
    the DUL thread (204 -> 48 us from the store's end to the response sent, over one association)."""
    peer_max = assoc.dimse.maximum_pdu_size
    size = max(peer_max - 6, 1) if peer_max else 1 << 31
    dul = assoc.dul
    if len(command) + (len(dataset) if dataset is not None else 0) + 12 <= size:
        if can_write_directly(assoc):
            cast(FastSocket, dul.socket).send(pdata_pdu(context_id, command, dataset))
            return
        if dataset is not None:
            # a small message travels as one P-DATA-TF with two PDVs (PS3.8 9.3.5): half the PDUs
            pdata = P_DATA()
            pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
            pdata.presentation_data_value_list.append((context_id, b"\x02" + bytes(dataset)))
            dul.send_pdu(pdata)
            return
    for data, more, last in ((command, b"\x01", b"\x03"), (dataset, b"\x00", b"\x02")):
        if data is None:
            continue
        view = memoryview(data)
        for start in range(0, max(len(view), 1), size):
            chunk = view[start:start + size]
            pdata = P_DATA()
            pdata.presentation_data_value_list.append(
                (context_id, (last if start + size >= len(view) else more) + bytes(chunk)))
            dul.send_pdu(pdata)


def can_write_directly(assoc: Association) -> bool:
    """Data transfer under way and nothing queued for the DUL: a P-DATA-TF written to the socket now
    cannot overtake anything."""
    dul = assoc.dul
    return isinstance(dul.socket, FastSocket) and dul.state_machine.current_state == "Sta6" \
        and dul.to_provider_queue.empty()


def pdata_pdu(context_id: int, command: bytes, dataset: bytes | memoryview | None) -> bytes:
    """One P-DATA-TF PDU holding a whole command (and data set): the last fragment of each."""
    items = [_PDV_HEADER.pack(len(command) + 2, context_id, 0x03), command]
    if dataset is not None:
        items += (_PDV_HEADER.pack(len(dataset) + 2, context_id, 0x02), bytes(dataset))
    return _PDU_HEADER.pack(0x04, 0, sum(len(i) for i in items)) + b"".join(items)


def associate(ae: ApplicationEntity, host: str, port: int, called_aet: str,
              contexts: list[PresentationContext], max_pdu: int = 16382,
              ext_neg: list[Any] | None = None) -> FastAssociation:
    """`ApplicationEntity.associate` with a FastAssociation and TCP_NODELAY; the association is
    established (and its reactor started) when `is_established` is true."""
    remote = AddressInformation.from_addr_port(host, port)
    local = AddressInformation.from_tuple(("::0", 0) if remote.address_family == socket.AF_INET6 else ("", 0))
    assoc = FastAssociation(ae, MODE_REQUESTOR)
    assoc.name = f"RequestorThread@{datetime.now():%Y%m%d%H%M%S}"
    sock = FastSocket(assoc, address=local)
    assoc.set_socket(sock)
    assoc.acceptor.ae_title = called_aet
    assoc.acceptor.address_info = remote
    assoc.requestor.address_info = local
    assoc.requestor.ae_title = ae.ae_title
    assoc.requestor.maximum_length = max_pdu
    assoc.requestor.implementation_class_uid = ae.implementation_class_uid
    assoc.requestor.implementation_version_name = ae.implementation_version_name
    for item in ext_neg or []:
        assoc.requestor.add_negotiation_item(item)
    requested = []
    for i, cx in enumerate(contexts):
        copy = PresentationContext()
        copy.context_id = 2 * i + 1
        copy.abstract_syntax = cx.abstract_syntax
        copy.transfer_syntax = list(cx.transfer_syntax)
        copy.scu_role = cx.scu_role
        copy.scp_role = cx.scp_role
        requested.append(copy)
    assoc.requestor.requested_contexts = requested
    assoc.request()
    if assoc.is_established:
        assoc.start()
    return assoc


class DimseBatch:
    """Many small DIMSE messages (C-FIND answers) written straight to the socket, several P-DATA-TF
    PDUs per `sendall`, instead of one trip through the DUL thread and one write each: the answers of
    a big C-FIND cost a third of the time. Used only in the data-transfer state with nothing queued for
    the DUL (so nothing can overtake); anything else goes through `send_dimse` as usual."""

    FLUSH_BYTES = 64 * 1024

    def __init__(self, assoc: Association, context_id: int):
        self.assoc = assoc
        self.context_id = context_id
        peer_max = assoc.dimse.maximum_pdu_size
        self.size = max(peer_max - 6, 1) if peer_max else 1 << 31
        self.parts: list[bytes] = []
        self.pending = 0

    def send(self, command: bytes, dataset: bytes | None = None) -> None:
        data = b"" if dataset is None else dataset
        if len(command) + len(data) + 12 > self.size or not can_write_directly(self.assoc):
            self.flush()
            send_dimse(self.assoc, self.context_id, command, dataset)
            return
        pdu = pdata_pdu(self.context_id, command, dataset)
        self.parts.append(pdu)
        self.pending += len(pdu)
        if self.pending >= self.FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        data = b"".join(self.parts)
        self.parts.clear()
        self.pending = 0
        cast(FastSocket, self.assoc.dul.socket).send(data)
