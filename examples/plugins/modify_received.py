"""Change instances before they are stored, whatever their way in (REST, C-STORE, plugins...).

- `InstitutionName` is set to "DONJON EXAMPLE" and `PatientName` is upper-cased;
- an instance whose PatientID starts with "DISCARD-" is not stored at all;
- an instance already processed (PatientID starting with "KEEP-") is stored as it came.

Uses pydicom. Runs unchanged in Orthanc with the Python plugin and in Donjon
(`"PythonScript": "modify_received.py"`).
"""

from io import BytesIO

import orthanc
from pydicom import dcmread


def on_received(received_dicom, origin):
    dataset = dcmread(BytesIO(received_dicom))
    patient_id = str(dataset.get('PatientID', ''))

    if patient_id.startswith('DISCARD-'):
        return orthanc.ReceivedInstanceAction.DISCARD, None
    if patient_id.startswith('KEEP-'):
        return orthanc.ReceivedInstanceAction.KEEP_AS_IS, None

    dataset.InstitutionName = 'DONJON EXAMPLE'
    dataset.PatientName = str(dataset.get('PatientName', '')).upper()

    out = BytesIO()
    dataset.save_as(out)
    return orthanc.ReceivedInstanceAction.MODIFY, out.getvalue()


orthanc.RegisterReceivedInstanceCallback(on_received)
