"""What the identifiers table holds: the normalised values of the indexed tags of each resource
(`/tools/find`, C-FIND, `/tools/lookup`), and on each study a copy of its patient's.

Orthanc matches a patient tag queried at study level or below against the patient tags that the study
itself was stored with, not against the patient's: they differ when studies of one PatientID carry
different names (anonymised studies, typing errors). The copy is kept under the negated tag, so that a
lookup by tag never meets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import orjson

from ..core.matching import normalize
from ..dicom.main_tags import format_tag

PATIENT_IDENTIFIER_TAGS = (0x00100020, 0x00100010, 0x00100030)  # PatientID, PatientName, PatientBirthDate
_KEYS = tuple((tag, format_tag(tag)) for tag in PATIENT_IDENTIFIER_TAGS)


def on_study(tag: int) -> int:
    """The identifiers' tag under which a study holds its copy of a patient tag."""
    return -tag


def study_copies(patient_tags: bytes | None) -> list[tuple[int, str]]:
    """(tag, norm) rows of a study's copy, from the patient tags blob of its resource row."""
    if not patient_tags:
        return []
    tags = orjson.loads(patient_tags)
    return [(on_study(tag), normalize(value)) for tag, key in _KEYS if isinstance(value := tags.get(key), str)]


STUDIES_AFTER = "SELECT id, patient_tags FROM resources WHERE level = 2 AND id > {0} ORDER BY id LIMIT 5000"


def study_copy_batches(studies_after: Callable[[int], Sequence[tuple[int, bytes | None]]]
                       ) -> Iterator[list[tuple[int, int, str]]]:
    """(resource id, tag, norm) rows of every study's copy, a batch at a time, for an index that
    predates them: `studies_after(id)` answers the next (id, patient tags) rows of `STUDIES_AFTER`."""
    after = 0
    while rows := studies_after(after):
        yield [(rid, tag, norm) for rid, blob in rows for tag, norm in study_copies(blob)]
        after = rows[-1][0]
