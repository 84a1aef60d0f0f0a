"""Orthanc identifiers: SHA-1 over the DICOM identifiers, in five dash-separated groups."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


def orthanc_id(*parts: str) -> str:
    h = hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()
    return f"{h[0:8]}-{h[8:16]}-{h[16:24]}-{h[24:32]}-{h[32:40]}"


@dataclass(frozen=True, slots=True)
class InstanceIds:
    """The four Orthanc identifiers of one instance, from patient down to instance."""

    patient: str
    study: str
    series: str
    instance: str

    @classmethod
    def compute(cls, patient_id: str, study_uid: str, series_uid: str, sop_uid: str) -> InstanceIds:
        return cls(
            orthanc_id(patient_id),
            orthanc_id(patient_id, study_uid),
            orthanc_id(patient_id, study_uid, series_uid),
            orthanc_id(patient_id, study_uid, series_uid, sop_uid),
        )

    def as_tuple(self) -> tuple[str, str, str, str]:
        return (self.patient, self.study, self.series, self.instance)
