"""C-STORE command sets decoded by hand on receipt (the mirror of command_sets.py, which encodes them).

pynetdicom decodes every received command set into a pydicom Dataset and then reads it element by
element into a DIMSE primitive: for a small C-STORE that was 60 to 90 µs of the DUL thread's ~140 µs per
instance (py-spy), on the critical path of every instance over one association. A C-STORE-RQ or
C-STORE-RSP holding only the elements PS3.7 defines for it is read here into a light object that
answers what pynetdicom asks of a command set (`CommandField`, `CommandDataSetType`, iteration by
element for `message_to_primitive`); anything else (another command, an unknown element, a length
that does not fit) goes to pynetdicom's own decoder, unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from io import BytesIO
from typing import Any

from pydicom.uid import UID
from pynetdicom import dimse_messages

_HEADER = struct.Struct("<HHL")
_US, _UL = struct.Struct("<H"), struct.Struct("<L")

# element -> (keyword, VR) of the command elements a C-STORE request or response may hold
_ELEMENTS: dict[int, tuple[str, str]] = {
    0x0000: ("CommandGroupLength", "UL"),
    0x0002: ("AffectedSOPClassUID", "UI"),
    0x0100: ("CommandField", "US"),
    0x0110: ("MessageID", "US"),
    0x0120: ("MessageIDBeingRespondedTo", "US"),
    0x0700: ("Priority", "US"),
    0x0800: ("CommandDataSetType", "US"),
    0x0900: ("Status", "US"),
    0x1000: ("AffectedSOPInstanceUID", "UI"),
    0x1030: ("MoveOriginatorApplicationEntityTitle", "AE"),
    0x1031: ("MoveOriginatorMessageID", "US"),
}
_ALLOWED: dict[int, frozenset[int]] = {
    0x0001: frozenset((0x0000, 0x0002, 0x0100, 0x0110, 0x0700, 0x0800, 0x1000, 0x1030, 0x1031)),  # C-STORE-RQ
    0x8001: frozenset((0x0000, 0x0002, 0x0100, 0x0120, 0x0800, 0x0900, 0x1000)),  # C-STORE-RSP
}


class CommandElement:
    """What pynetdicom reads of a command element: keyword, value, VM and tag."""

    __slots__ = ("keyword", "tag", "value")
    VM = 1

    def __init__(self, element: int, keyword: str, value: Any):
        self.tag = element  # group 0000: the tag is the element number
        self.keyword = keyword
        self.value = value


class StoreCommandSet:
    """A decoded C-STORE command set; attribute access by keyword, as on a pydicom Dataset (an
    element it does not hold raises AttributeError, as there)."""

    def __init__(self, elements: list[CommandElement]):
        self._elements = elements
        for e in elements:
            self.__dict__[e.keyword] = e.value

    def __iter__(self) -> Iterator[CommandElement]:
        return iter(self._elements)

    def __contains__(self, keyword: object) -> bool:
        return keyword in self.__dict__


def decode_store_command(data: bytes) -> StoreCommandSet | None:
    """The command set, or None when it is not a plain C-STORE request or response."""
    elements: list[CommandElement] = []
    offset, end = 0, len(data)
    seen: set[int] = set()
    while offset < end:
        if offset + 8 > end:
            return None
        group, element, length = _HEADER.unpack_from(data, offset)
        offset += 8
        spec = _ELEMENTS.get(element)
        if group != 0 or spec is None or element in seen or offset + length > end:
            return None
        seen.add(element)
        raw = data[offset:offset + length]
        offset += length
        keyword, vr = spec
        if vr == "US":
            if length != 2:
                return None
            value: Any = _US.unpack(raw)[0]
        elif vr == "UL":
            if length != 4:
                return None
            value = _UL.unpack(raw)[0]
        else:
            try:
                text = raw.decode("ascii").strip("\x00 ")
            except UnicodeDecodeError:
                return None
            value = UID(text) if vr == "UI" else text
        elements.append(CommandElement(element, keyword, value))
    field = next((e.value for e in elements if e.tag == 0x0100), None)
    allowed = _ALLOWED.get(field) if isinstance(field, int) else None
    if allowed is None or not seen <= allowed or 0x0800 not in seen:
        return None
    return StoreCommandSet(elements)


def install() -> None:
    """Route pynetdicom's command-set decoding through `decode_store_command` first (once)."""
    original: Callable[..., Any] = dimse_messages.decode
    if getattr(original, "donjon_fast", False):
        return

    def decode(stream: BytesIO, is_implicit_vr: bool, is_little_endian: bool, *args: Any, **kwargs: Any) -> Any:
        if is_implicit_vr and is_little_endian and not args and not kwargs:
            fast = decode_store_command(stream.getvalue())
            if fast is not None:
                return fast
        return original(stream, is_implicit_vr, is_little_endian, *args, **kwargs)

    decode.donjon_fast = True  # type: ignore[attr-defined]
    dimse_messages.decode = decode
