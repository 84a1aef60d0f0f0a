"""Refuse the C-STOREs of modalities that are not in an allow-list.

The list is the custom configuration option `ExampleAcceptedAets` (default: ["MODALITY"]); the
refused modality receives the DIMSE status 0x0124 ("Refused: Not authorized") and nothing is stored.

Runs unchanged in Orthanc with the Python plugin and in Donjon (`"PythonScript": "filter_by_aet.py"`).
"""

import json

import orthanc

ACCEPTED = set(json.loads(orthanc.GetConfiguration()).get('ExampleAcceptedAets', ['MODALITY']))
REFUSED_NOT_AUTHORIZED = 0x0124


def filter_instance(received_dicom):
    aet = received_dicom.GetInstanceRemoteAet()
    if aet in ACCEPTED:
        return 0  # store it

    tags = json.loads(received_dicom.GetInstanceSimplifiedJson())
    orthanc.LogWarning(f"C-STORE of {tags.get('SOPInstanceUID')} from {aet} refused")
    return REFUSED_NOT_AUTHORIZED


orthanc.RegisterIncomingCStoreInstanceFilter(filter_instance)
