"""C-FIND and C-MOVE SCP answered by a plugin (`RegisterFindCallback`, `RegisterMoveCallback`).

As in Orthanc, a registered callback replaces the built-in handler of that service. The C-FIND
callback receives `(answers, query, issuerAet, calledAet)`: `query` lists the top-level elements of
the request in tag order, `answers.FindAddAnswer()` takes DICOM files (e.g. from `CreateDicom`),
sent as C-FIND responses in the negotiated transfer syntax. The C-MOVE callback receives keyword
arguments (`Level`, the identifiers, `OriginatorAET`, `SourceAET`, `TargetAET`, `OriginatorID`) and
counts as one sub-operation, failed if it raises.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import encode

from ..core.dicom_query import identifier_values
from ..dicom.tag_dictionary import tag_name
from ..errors import ErrorCode
from .exceptions import OrthancException, UnsupportedCall
from .guard import log_traceback

QUERY_RETRIEVE_LEVEL = 0x00080052
_MOVE_KEYS = {0x00100020: "PatientID", 0x00080050: "AccessionNumber", 0x0020000D: "StudyInstanceUID",
              0x0020000E: "SeriesInstanceUID", 0x00080018: "SOPInstanceUID"}
_LEVELS = {"PATIENT": "PATIENT", "STUDY": "STUDY", "SERIES": "SERIES", "IMAGE": "INSTANCE", "INSTANCE": "INSTANCE"}


class FindQuery:
    __module__ = "orthanc"

    def __init__(self, values: dict[int, str]):
        self._items = sorted(values.items())

    def __getattr__(self, name: str) -> Any:
        raise UnsupportedCall(f"FindQuery.{name}")

    def _item(self, index: int) -> tuple[int, str]:
        if not 0 <= int(index) < len(self._items):
            raise OrthancException(ErrorCode.PARAMETER_OUT_OF_RANGE, "Index is out of range")
        return self._items[int(index)]

    def GetFindQuerySize(self) -> int:
        return len(self._items)

    def GetFindQueryTagName(self, index: int) -> str:
        return tag_name(self._item(index)[0])

    def GetFindQueryTagGroup(self, index: int) -> int:
        return self._item(index)[0] >> 16

    def GetFindQueryTagElement(self, index: int) -> int:
        return self._item(index)[0] & 0xFFFF

    def GetFindQueryValue(self, index: int) -> str:
        return self._item(index)[1]


class FindAnswers:
    __module__ = "orthanc"

    def __init__(self) -> None:
        self.answers: list[Dataset] = []
        self.complete = True

    def __getattr__(self, name: str) -> Any:
        raise UnsupportedCall(f"FindAnswers.{name}")

    def FindAddAnswer(self, dicom: bytes) -> None:
        try:
            ds = dcmread(io.BytesIO(bytes(dicom)), force=True)
        except Exception:
            raise OrthancException(ErrorCode.BAD_FILE_FORMAT) from None
        ds.file_meta = None  # type: ignore[assignment]
        self.answers.append(ds)

    def FindMarkIncomplete(self) -> None:
        self.complete = False


def run_find(callback: Callable[..., Any], identifier: Dataset, default_codec: str, transfer_syntax: str,
             issuer_aet: str, called_aet: str) -> tuple[list[bytes], bool] | None:
    """The encoded answers and whether they are complete; None if the callback failed (logged)."""
    answers = FindAnswers()
    query = FindQuery(identifier_values(identifier, default_codec))
    try:
        callback(answers, query, issuer_aet, called_aet)
    except (Exception, SystemExit):
        log_traceback("C-FIND SCP callback")
        return None
    ts = UID(transfer_syntax)
    encoded = [encode(ds, ts.is_implicit_VR, ts.is_little_endian, ts.is_deflated) or b"" for ds in answers.answers]
    return encoded, answers.complete


def run_move(callback: Callable[..., Any], identifier: Dataset, default_codec: str, originator_aet: str,
             source_aet: str, target_aet: str, originator_id: int) -> bool:
    """True if the callback succeeded (a failure is logged)."""
    values = identifier_values(identifier, default_codec)
    level_text = values.get(QUERY_RETRIEVE_LEVEL, "").strip().upper()
    level = _LEVELS.get(level_text) or _guess_level(values)
    kwargs: dict[str, Any] = {"Level": level}
    for tag, key in _MOVE_KEYS.items():
        kwargs[key] = values.get(tag, "")
    kwargs.update(OriginatorAET=originator_aet, SourceAET=source_aet, TargetAET=target_aet,
                  OriginatorID=originator_id)
    try:
        callback(**kwargs)
    except (Exception, SystemExit):
        log_traceback("C-MOVE SCP callback")
        return False
    return True


def _guess_level(values: dict[int, str]) -> str:
    """Orthanc's guess when QueryRetrieveLevel is missing: the deepest identifier given."""
    for tag, level in ((0x00080018, "INSTANCE"), (0x0020000E, "SERIES"), (0x0020000D, "STUDY")):
        if values.get(tag):
            return level
    return "PATIENT"
