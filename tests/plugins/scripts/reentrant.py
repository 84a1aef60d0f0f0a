"""Callbacks that call the REST API back in-process, from every ingest callback, and slow callbacks.

Each callback appends what it saw to LOG, which `/reentrant/log` answers. A stored instance of patient
NESTED makes the stored callback store a child instance (a store inside a store), then write and read
a metadata of the parent. Patient SLOW makes the stored callback sleep far beyond `CallbackTimeout`,
and so does the HTTP filter for `/reentrant/slow`.
"""

import io
import json
import threading
import time

import orthanc
from pydicom import dcmread
from pydicom.uid import generate_uid

LOG = []
LOCK = threading.Lock()


def record(*entry):
    with LOCK:
        LOG.append(list(entry))


def on_received(data, origin):
    stats = json.loads(orthanc.RestApiGet('/statistics'))
    record('received', origin, stats['CountInstances'])
    return orthanc.ReceivedInstanceAction.KEEP_AS_IS, None


def on_stored(instance, instance_id):
    info = json.loads(orthanc.RestApiGet(f'/instances/{instance_id}'))
    ds = dcmread(io.BytesIO(instance.GetInstanceData()))
    record('stored', str(ds.PatientID), info['ID'] == instance_id)
    if str(ds.PatientID) == 'SLOW':
        time.sleep(30)
    if str(ds.PatientID) == 'NESTED':
        ds.PatientID = 'NESTED-CHILD'
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        out = io.BytesIO()
        ds.save_as(out)
        child = json.loads(orthanc.RestApiPost('/instances', out.getvalue()))
        record('nested-store', child['Status'], child['ID'])
        orthanc.RestApiPut(f'/instances/{instance_id}/metadata/1024', 'set from the stored callback')
        record('nested-metadata', orthanc.RestApiGet(f'/instances/{instance_id}/metadata/1024').decode())


def cstore_filter(instance):
    record('cstore-filter', instance.GetInstanceRemoteAet(), len(json.loads(orthanc.RestApiGet('/instances'))))
    return 0


def on_change(change_type, level, resource_id):
    if change_type == orthanc.ChangeType.NEW_INSTANCE:
        tags = json.loads(orthanc.RestApiGet(f'/instances/{resource_id}/simplified-tags'))
        record('change', tags['PatientID'])


def http_filter(uri, **request):
    if uri == '/reentrant/slow':
        time.sleep(30)
    return True


def answer_log(output, uri, **request):
    with LOCK:
        output.AnswerBuffer(json.dumps(LOG), 'application/json')


orthanc.RegisterReceivedInstanceCallback(on_received)
orthanc.RegisterOnStoredInstanceCallback(on_stored)
orthanc.RegisterIncomingCStoreInstanceFilter(cstore_filter)
orthanc.RegisterOnChangeCallback(on_change)
orthanc.RegisterIncomingHttpRequestFilter(http_filter)
orthanc.RegisterRestCallback('/reentrant/log', answer_log)
orthanc.RegisterRestCallback('/reentrant/slow', answer_log)
