"""Which SOP classes and transfer syntaxes the DICOM server accepts, from Orthanc's options.

`AcceptedTransferSyntaxes` (patterns with `*`/`?`) selects among the transfer syntaxes Orthanc knows;
then each `...TransferSyntaxAccepted` switch that is set adds (true) or removes (false) its group.
Storage SOP classes are pynetdicom's storage and non-patient object classes plus the retired and
trial ones of the DICOM dictionary (DCMTK's list, used by Orthanc, has them too);
`UnknownSopClassAccepted` also lets in any SOP class that is not a known non-storage class.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

from pynetdicom import sop_class as _sop

LEE, BEE, LEI = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
GENERIC_SYNTAXES = (LEE, BEE, LEI)

# Orthanc's groups of transfer syntaxes (enumeration TransferSyntaxGroup)
GROUPS: dict[str, tuple[str, ...]] = {
    "Deflated": (DEFLATED,),
    "Jpeg": tuple(f"1.2.840.10008.1.2.4.{n}" for n in (*range(50, 67), 70)),
    "Jpeg2000": tuple(f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93)),
    "JpegLossless": ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"),
    "Jpip": ("1.2.840.10008.1.2.4.94", "1.2.840.10008.1.2.4.95"),
    "Mpeg2": ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"),
    "Mpeg4": tuple(f"1.2.840.10008.1.2.4.{n}" for n in range(102, 107)),
    "Rle": ("1.2.840.10008.1.2.5",),
    "H265": ("1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108"),
}
# Every transfer syntax Orthanc knows, in its order of preference for storage when several are
# proposed (LE explicit first, then Orthanc's enumeration order: checked with storescu on 1.10.1)
ALL_SYNTAXES: tuple[str, ...] = (LEE, LEI, DEFLATED, BEE, *GROUPS["Jpeg"], *GROUPS["JpegLossless"],
                                 *GROUPS["Jpeg2000"], *GROUPS["Jpip"], *GROUPS["Mpeg2"], *GROUPS["Mpeg4"],
                                 *GROUPS["H265"], *GROUPS["Rle"])

VERIFICATION = "1.2.840.10008.1.1"
FIND_CLASSES = ("1.2.840.10008.5.1.4.1.2.1.1", "1.2.840.10008.5.1.4.1.2.2.1")  # patient root, study root
MOVE_CLASSES = ("1.2.840.10008.5.1.4.1.2.1.2", "1.2.840.10008.5.1.4.1.2.2.2")
GET_CLASSES = ("1.2.840.10008.5.1.4.1.2.1.3", "1.2.840.10008.5.1.4.1.2.2.3")
SERVICE_CLASSES = frozenset((VERIFICATION, *FIND_CLASSES, *MOVE_CLASSES, *GET_CLASSES))

def _retired_storage_classes() -> set[str]:
    """Storage SOP classes pynetdicom leaves out (retired, trial) but DCMTK, hence Orthanc, accepts."""
    from pydicom._uid_dict import UID_dictionary

    return {uid for uid, (name, kind, *_) in UID_dictionary.items()
            if kind == "SOP Class" and "Storage" in name and "Commitment" not in name
            and "Management" not in name and "Directory" not in name}


STORAGE_CLASSES: frozenset[str] = frozenset(
    {str(uid) for uid in (*_sop._STORAGE_CLASSES.values(), *_sop._NON_PATIENT_OBJECT_CLASSES.values())}
    | _retired_storage_classes())
_KNOWN_CLASSES: frozenset[str] = frozenset(
    str(v) for name in dir(_sop) if name.startswith("_") and name.endswith("_CLASSES")
    for v in getattr(_sop, name).values())
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def is_storage_class(uid: str, unknown_accepted: bool) -> bool:
    """Whether a SOP class is accepted for C-STORE (promiscuous mode: anything not known otherwise)."""
    if uid in STORAGE_CLASSES:
        return True
    return unknown_accepted and _UID.fullmatch(uid) is not None and uid not in _KNOWN_CLASSES


def accepted_syntaxes(config: Any) -> list[str]:
    """The transfer syntaxes of incoming C-STORE, in order of preference."""
    patterns = config["AcceptedTransferSyntaxes"]
    if isinstance(patterns, str):
        patterns = [patterns]
    accepted = set(match_syntaxes(patterns))
    for group, uids in GROUPS.items():
        switch = config.get(f"{group}TransferSyntaxAccepted")
        if switch is True:
            accepted.update(uids)
        elif switch is False:
            accepted.difference_update(uids)
    return [ts for ts in ALL_SYNTAXES if ts in accepted]


def match_syntaxes(patterns: Iterable[str]) -> list[str]:
    out: list[str] = []
    for pattern in patterns:
        for ts in ALL_SYNTAXES:
            if ts not in out and fnmatch.fnmatchcase(ts, pattern):
                out.append(ts)
    return out
