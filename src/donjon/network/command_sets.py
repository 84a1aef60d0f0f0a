"""DIMSE command sets encoded by hand: their layouts are fixed, and pydicom's encoder costs more than
the rest of a small C-STORE or C-FIND answer (network/fast.py sends them)."""

from __future__ import annotations

import struct

_US, _UL = struct.Struct("<H"), struct.Struct("<L")


def _ui(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b"\x00" if len(data) % 2 else data


def _ae(value: str) -> bytes:
    data = value.encode("ascii")
    return data + b" " if len(data) % 2 else data


def encode_command(elements: list[tuple[int, bytes]]) -> bytes:
    """A command set (implicit VR little endian, group length first) from (element, value bytes)."""
    body = b"".join(struct.pack("<HHL", 0x0000, element, len(value)) + value for element, value in elements)
    return struct.pack("<HHL", 0x0000, 0x0000, 4) + _UL.pack(len(body)) + body


def store_request(msg_id: int, sop_class: str, sop_instance: str, originator_aet: str = "",
                  originator_id: int = 0) -> bytes:
    elements = [(0x0002, _ui(sop_class)), (0x0100, _US.pack(0x0001)), (0x0110, _US.pack(msg_id)),
                (0x0700, _US.pack(0x0002)), (0x0800, _US.pack(0x0001)), (0x1000, _ui(sop_instance))]
    if originator_aet:
        elements += [(0x1030, _ae(originator_aet)), (0x1031, _US.pack(originator_id))]
    return encode_command(elements)


def store_response(msg_id: int, sop_class: str, sop_instance: str, status: int) -> bytes:
    return encode_command([(0x0002, _ui(sop_class)), (0x0100, _US.pack(0x8001)), (0x0120, _US.pack(msg_id)),
                           (0x0800, _US.pack(0x0101)), (0x0900, _US.pack(status)), (0x1000, _ui(sop_instance))])


def find_response(msg_id: int, sop_class: str, status: int, has_identifier: bool) -> bytes:
    return encode_command([(0x0002, _ui(sop_class)), (0x0100, _US.pack(0x8020)), (0x0120, _US.pack(msg_id)),
                           (0x0800, _US.pack(0x0001 if has_identifier else 0x0101)), (0x0900, _US.pack(status))])
