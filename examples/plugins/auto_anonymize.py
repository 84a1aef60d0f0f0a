"""Anonymize every study once it is stable, and keep only the anonymized copy.

A study that is itself the result of an anonymization (it has `AnonymizedFrom`) is left alone, so
the callback does not loop. The anonymization runs through the REST API from the change callback:
change callbacks run on their own thread, so this cannot deadlock the server.

Runs unchanged in Orthanc with the Python plugin and in Donjon (`"PythonScript": "auto_anonymize.py"`).
"""

import json

import orthanc

DELETE_ORIGINAL = True


def on_change(change_type, level, resource_id):
    if change_type != orthanc.ChangeType.STABLE_STUDY:
        return

    study = json.loads(orthanc.RestApiGet(f'/studies/{resource_id}'))
    if 'AnonymizedFrom' in study:
        return  # our own output

    request = {'Keep': ['StudyDescription', 'SeriesDescription'], 'Force': True}
    answer = json.loads(orthanc.RestApiPost(f'/studies/{resource_id}/anonymize', json.dumps(request)))
    orthanc.LogWarning(f"Study {resource_id} anonymized into {answer['ID']}")

    if DELETE_ORIGINAL:
        orthanc.RestApiDelete(f'/studies/{resource_id}')


orthanc.RegisterOnChangeCallback(on_change)
