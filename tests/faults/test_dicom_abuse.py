"""The DICOM listener cannot be blocked or exhausted: silent and slow peers are cut off by timeouts
counted from their first byte, and associations beyond the cap get an A-ASSOCIATE-RJ."""

from __future__ import annotations

import struct
import subprocess
import time
from collections.abc import Iterator

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from tests.faults.support import MB, alive, closed_within, connect, peak_rss, reset_peak_rss
from tests.support.servers import Server, start_donjon

TIMEOUT = 3
CAP = 4


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"DicomScpTimeout": TIMEOUT, "DicomMaximumAssociations": CAP, "StableAge": 1000})
    yield s
    s.stop()


def _echo(server: Server) -> float:
    start = time.monotonic()
    r = subprocess.run(["echoscu", "-to", "5", "127.0.0.1", str(server.dicom_port)], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return time.monotonic() - start


def _associate(server: Server):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="FAULTS")
    ae.add_requested_context(Verification)
    ae.acse_timeout = 5
    return ae.associate("127.0.0.1", server.dicom_port, ae_title="ORTHANC")


def test_silent_and_slow_peers_are_cut_off(server: Server) -> None:
    before = reset_peak_rss(server)
    silent = [connect(server.dicom_port) for _ in range(CAP)]  # connected, never a byte
    assert _echo(server) < 3  # served while they hang
    slow = connect(server.dicom_port)
    pdu = struct.pack(">BBL", 1, 0, 200) + b"\x00" * 200  # an A-ASSOCIATE-RQ, one byte every 0.3 s
    start = time.monotonic()
    cut = None
    for byte in pdu:
        try:
            slow.send(bytes([byte]))
        except OSError:
            cut = time.monotonic() - start
            break
        time.sleep(0.3)
        if time.monotonic() - start > 3 * TIMEOUT:
            break
    if cut is None:
        assert closed_within(slow, 1)
        cut = time.monotonic() - start
    assert cut < TIMEOUT + 2, cut
    assert all(closed_within(s, 1) for s in silent)  # the association request never came
    for s in (*silent, slow):
        s.close()
    assert _echo(server) < 3
    assert peak_rss(server) - before < 16 * MB, (peak_rss(server) - before) // MB


def test_established_then_silent(server: Server) -> None:
    assoc = _associate(server)
    assert assoc.is_established
    sock = assoc.dul.socket.socket
    half = connect(server.dicom_port)  # and one that sends half a PDU header after a valid start
    half.sendall(b"\x01\x00")
    start = time.monotonic()
    while assoc.is_alive() and time.monotonic() - start < 3 * TIMEOUT:
        time.sleep(0.1)
    assert not assoc.is_established, "an idle association must be aborted after DicomScpTimeout"
    assert time.monotonic() - start < TIMEOUT + 2
    assert closed_within(half, 1)
    half.close()
    del sock
    assert _echo(server) < 3


def test_association_cap_is_answered_with_a_rejection(server: Server) -> None:
    before = reset_peak_rss(server)
    held = [_associate(server) for _ in range(CAP)]
    assert all(a.is_established for a in held)
    extra = _associate(server)
    assert extra.is_rejected, "the association over the cap must be rejected, not left hanging"
    rj = extra.acceptor.primitive
    assert (rj.result, rj.result_source, rj.diagnostic) == (0x02, 0x03, 0x02)  # transient, local limit exceeded
    held[0].release()
    time.sleep(0.3)
    again = _associate(server)
    assert again.is_established
    assert again.send_c_echo().Status == 0
    again.release()
    for a in held[1:]:
        a.release()
    assert peak_rss(server) - before < 16 * MB, (peak_rss(server) - before) // MB
    assert alive(server)
