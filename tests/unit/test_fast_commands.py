"""network/fast_commands.py: C-STORE command sets decoded by hand give pynetdicom the same primitives
as its own pydicom decoder; anything else is left to that decoder."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from pydicom.uid import UID
from pynetdicom import dimse_messages
from pynetdicom.dimse_messages import C_ECHO_RQ, C_FIND_RQ, C_STORE_RQ, C_STORE_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_ECHO, C_FIND, C_STORE
from pynetdicom.dsutils import decode as pydicom_decode
from pynetdicom.pdu_primitives import P_DATA

import donjon.network.fast  # noqa: F401 - installs the decoder
from donjon.network.command_sets import store_request, store_response
from donjon.network.fast_commands import StoreCommandSet, decode_store_command

SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
SOP_INSTANCE = "1.2.826.0.1.3680043.8.498.12345678901234567890"


def _encoded(message: DIMSEMessage, primitive: Any) -> bytes:
    """The command set pynetdicom itself sends for `primitive`."""
    message.primitive_to_message(primitive)
    pdata = next(message.encode_msg(1, 16382))
    return b"".join(bytes(v[1:]) for _, v in pdata.presentation_data_value_list if v[0] & 1)


def _store_rq(originator: str = "") -> bytes:
    rq = C_STORE()
    rq.MessageID = 7
    rq.AffectedSOPClassUID = SOP_CLASS
    rq.AffectedSOPInstanceUID = SOP_INSTANCE
    rq.Priority = 2
    if originator:
        rq.MoveOriginatorApplicationEntityTitle = originator
        rq.MoveOriginatorMessageID = 3
    rq.DataSet = BytesIO(b"\x08\x00\x16\x00")
    return _encoded(C_STORE_RQ(), rq)


def _store_rsp() -> bytes:
    rsp = C_STORE()
    rsp.MessageIDBeingRespondedTo = 7
    rsp.AffectedSOPClassUID = SOP_CLASS
    rsp.AffectedSOPInstanceUID = SOP_INSTANCE
    rsp.Status = 0xA700
    return _encoded(C_STORE_RSP(), rsp)


def _received(command: bytes, dataset: bytes | None) -> Any:
    """The primitive pynetdicom's receiving side makes of a command (and data set)."""
    message = DIMSEMessage()
    pdata = P_DATA()
    pdata.presentation_data_value_list.append((1, b"\x03" + command))
    if dataset is not None:
        pdata.presentation_data_value_list.append((1, b"\x02" + dataset))
    assert message.decode_msg(pdata)
    return message.message_to_primitive()


_FIELDS = ("MessageID", "MessageIDBeingRespondedTo", "AffectedSOPClassUID", "AffectedSOPInstanceUID", "Priority",
           "MoveOriginatorApplicationEntityTitle", "MoveOriginatorMessageID", "Status")


@pytest.mark.parametrize("command, dataset", [
    (_store_rq(), b"\x08\x00\x16\x00"), (_store_rq("MOVER"), b"\x08\x00\x16\x00"), (_store_rsp(), None),
    (store_request(9, SOP_CLASS, SOP_INSTANCE, "ORIGIN", 4), b"\x08\x00\x16\x00"),
    (store_response(9, SOP_CLASS, SOP_INSTANCE, 0), None),
], ids=["rq", "rq-move-originator", "rsp", "rq-ours", "rsp-ours"])
def test_the_same_primitive_as_pydicoms_decoder(command: bytes, dataset: bytes | None,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(decode_store_command(command), StoreCommandSet)
    fast = _received(command, dataset)
    monkeypatch.setattr(dimse_messages, "decode", pydicom_decode)
    reference = _received(command, dataset)
    assert type(fast) is type(reference) is C_STORE
    for name in _FIELDS:
        assert getattr(fast, name) == getattr(reference, name), name
    assert isinstance(fast.AffectedSOPInstanceUID, UID)
    assert fast._context_id == reference._context_id == 1
    if dataset is not None:
        assert fast.DataSet.getvalue() == reference.DataSet.getvalue() == dataset


def test_other_commands_go_to_pydicom() -> None:
    echo = C_ECHO()
    echo.MessageID = 1
    echo.AffectedSOPClassUID = "1.2.840.10008.1.1"
    find = C_FIND()
    find.MessageID = 2
    find.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.1"
    find.Priority = 2
    find.Identifier = BytesIO(b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ")
    for message, primitive in ((C_ECHO_RQ(), echo), (C_FIND_RQ(), find)):
        command = _encoded(message, primitive)
        assert decode_store_command(command) is None
        assert type(_received(command, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY " if primitive is find else None)) \
            is type(primitive)


def test_unexpected_elements_or_lengths_go_to_pydicom() -> None:
    rq = _store_rq()
    assert decode_store_command(rq) is not None
    error_comment = b"\x00\x00\x02\x09\x04\x00\x00\x00oops"  # (0000,0902) ErrorComment: not handled here
    assert decode_store_command(rq + error_comment) is None
    assert decode_store_command(rq[:-3]) is None  # truncated
    odd_us = rq.replace(b"\x00\x00\x00\x01\x02\x00\x00\x00\x01\x00", b"\x00\x00\x00\x01\x03\x00\x00\x00\x01\x00\x00")
    assert decode_store_command(odd_us) is None  # CommandField with 3 bytes
    assert decode_store_command(rq + rq[8:20]) is None  # an element twice
