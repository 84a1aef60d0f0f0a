"""A plugin whose callbacks fail in every way; the server must stay up and go on without them."""

import io
import json
import threading
import time

import orthanc
from pydicom import dcmread

CHANGES = []
LOCK = threading.Lock()


def raising_route(output, uri, **request):
    raise ValueError('boom from the plugin')


def silent_route(output, uri, **request):
    pass  # never answers


def changes_route(output, uri, **request):
    with LOCK:
        output.AnswerBuffer(json.dumps(CHANGES), 'application/json')


def on_change(change_type, level, resource_id):
    if change_type == orthanc.ChangeType.NEW_INSTANCE:
        raise RuntimeError('on-change failure')
    with LOCK:
        CHANGES.append([change_type, resource_id])


def on_received(data, origin):
    patient_id = str(dcmread(io.BytesIO(data), stop_before_pixels=True).PatientID)
    if patient_id == 'SLOW':
        time.sleep(30)
        return orthanc.ReceivedInstanceAction.DISCARD, None
    if patient_id == 'RAISE':
        raise RuntimeError('received-instance failure')
    if patient_id == 'BAD-ANSWER':
        return 'not a tuple'
    return orthanc.ReceivedInstanceAction.KEEP_AS_IS, None


def on_stored(instance, instance_id):
    raise RuntimeError('on-stored failure')


def http_filter(uri, **request):
    if uri == '/faulty/bad-filter':
        return 'yes'  # not a Boolean
    return True


orthanc.RegisterRestCallback('/faulty/raise', raising_route)
orthanc.RegisterRestCallback('/faulty/silent', silent_route)
orthanc.RegisterRestCallback('/faulty/changes', changes_route)
orthanc.RegisterOnChangeCallback(on_change)
orthanc.RegisterReceivedInstanceCallback(on_received)
orthanc.RegisterOnStoredInstanceCallback(on_stored)
orthanc.RegisterIncomingHttpRequestFilter(http_filter)

raise RuntimeError('failure at the end of the import')
