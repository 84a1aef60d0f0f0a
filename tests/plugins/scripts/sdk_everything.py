"""A plugin that uses every call of Orthanc's SDK that Donjon supports; tests read what it saw.

Callbacks record what they receive in EVENTS (`GET /sdk/events`); routes under `/sdk/` answer
the results of calls made from inside the server. The custom option `SdkTestStorage` names the
folder of the storage area this plugin provides.
"""

import io
import json
import os
import threading

import orthanc
from pydicom import dcmread

CONFIG = json.loads(orthanc.GetConfiguration())
STORAGE = CONFIG['SdkTestStorage']
EVENTS = []
LOCK = threading.Lock()


def record(kind, **details):
    with LOCK:
        EVENTS.append(dict(kind=kind, **details))


# -- at import: the REST API is not there yet ----------------------------------------------------------
try:
    orthanc.RestApiGet('/system')
    IMPORT_CALL = 'no error'
except orthanc.OrthancException as e:
    IMPORT_CALL = [e.args[0], e.args[1]]

orthanc.SetDescription('The SDK test plugin')
orthanc.SetRootUri('/sdk/events')
orthanc.ExtendOrthancExplorer('console.log("replaced by the next call");')
orthanc.ExtendOrthancExplorer('console.log("sdk");')  # as in Orthanc, the last call wins


# -- storage area --------------------------------------------------------------------------------------
def storage_create(uuid, content_type, data):
    with open(os.path.join(STORAGE, uuid), 'wb') as f:
        f.write(data)
    record('storage-create', uuid=uuid, type=content_type, size=len(data))


def storage_read(uuid, content_type):
    with open(os.path.join(STORAGE, uuid), 'rb') as f:
        return f.read()


def storage_remove(uuid, content_type):
    os.remove(os.path.join(STORAGE, uuid))
    record('storage-remove', uuid=uuid, type=content_type)


orthanc.RegisterStorageArea(storage_create, storage_read, storage_remove)


# -- changes, stored and received instances ------------------------------------------------------------
def on_change(change_type, level, resource_id):
    record('change', change=change_type, level=level, id=resource_id)
    if change_type == orthanc.ChangeType.ORTHANC_STOPPED:  # the REST API still answers at this point
        statistics = json.loads(orthanc.RestApiGet('/statistics'))
        with open(os.path.join(STORAGE, 'stopped.json'), 'w') as f:
            json.dump(statistics, f)


orthanc.RegisterOnChangeCallback(on_change)


def on_stored(instance, instance_id):
    simplified = json.loads(instance.GetInstanceSimplifiedJson())
    full = json.loads(instance.GetInstanceJson())
    short = json.loads(instance.GetInstanceAdvancedJson(orthanc.DicomToJsonFormat.SHORT,
                                                        orthanc.DicomToJsonFlags.NONE, 0))
    record('stored', id=instance_id, size=instance.GetInstanceSize(), data_size=len(instance.GetInstanceData()),
           origin=instance.GetInstanceOrigin(), remote_aet=instance.GetInstanceRemoteAet(),
           transfer_syntax=instance.GetInstanceTransferSyntaxUid(),
           has_origin=instance.HasInstanceMetadata('Origin'), origin_md=instance.GetInstanceMetadata('Origin'),
           has_nothing=instance.HasInstanceMetadata('Nothing'), patient_name=simplified.get('PatientName'),
           full_name=full.get('0010,0010', {}).get('Value'), short_name=short.get('0010,0010'),
           pixel_data=instance.HasInstancePixelData(), frames=instance.GetInstanceFramesCount(),
           serialized=len(instance.SerializeDicomInstance()))


orthanc.RegisterOnStoredInstanceCallback(on_stored)


def on_received(data, origin):
    dataset = dcmread(io.BytesIO(data))
    patient_id = str(dataset.get('PatientID', ''))
    record('received', patient_id=patient_id, origin=origin)
    if patient_id == 'SDK-DISCARD':
        return orthanc.ReceivedInstanceAction.DISCARD, None
    if patient_id == 'SDK-MODIFY':
        dataset.InstitutionName = 'MODIFIED BY SDK'
        out = io.BytesIO()
        dataset.save_as(out)
        return orthanc.ReceivedInstanceAction.MODIFY, out.getvalue()
    return orthanc.ReceivedInstanceAction.KEEP_AS_IS, None


orthanc.RegisterReceivedInstanceCallback(on_received)


# -- filters ---------------------------------------------------------------------------------------------
def http_filter(uri, **request):
    if uri.startswith('/sdk/filter'):
        record('http-filter', uri=uri, method=request['method'], ip=request['ip'],
               header=request['headers'].get('x-sdk'), get=request.get('get'))
    return uri != '/sdk/filter-forbidden'


orthanc.RegisterIncomingHttpRequestFilter(http_filter)


def cstore_filter(instance):
    aet = instance.GetInstanceRemoteAet()
    record('cstore-filter', aet=aet, origin=instance.GetInstanceOrigin(),
           called=instance.GetInstanceMetadata('CalledAET'))
    return 0xA900 if aet == 'REFUSED' else 0


orthanc.RegisterIncomingCStoreInstanceFilter(cstore_filter)


# -- DICOM SCP ---------------------------------------------------------------------------------------------
def on_find(answers, query, issuer_aet, called_aet):
    asked = {}
    for i in range(query.GetFindQuerySize()):
        asked[query.GetFindQueryTagName(i)] = query.GetFindQueryValue(i)
    record('find', issuer=issuer_aet, called=called_aet, query=asked,
           first_tag=[query.GetFindQueryTagGroup(0), query.GetFindQueryTagElement(0)])
    for n in range(2):
        answer = {name: f'SDK{n}-{value}' for name, value in asked.items() if name != 'QueryRetrieveLevel'}
        answer['QueryRetrieveLevel'] = asked.get('QueryRetrieveLevel', '')
        answers.FindAddAnswer(orthanc.CreateDicom(json.dumps(answer), None, orthanc.CreateDicomFlags.NONE))
    if asked.get('PatientName') == 'INCOMPLETE':
        answers.FindMarkIncomplete()


orthanc.RegisterFindCallback(on_find)


def on_move(**request):
    record('move', **request)


orthanc.RegisterMoveCallback(on_move)


# -- REST routes ------------------------------------------------------------------------------------------
def answer_json(output, value):
    output.AnswerBuffer(json.dumps(value), 'application/json')


def events(output, uri, **request):
    with LOCK:
        answer_json(output, EVENTS)


def echo(output, uri, **request):
    output.SetHttpHeader('X-Sdk-Echo', 'yes')
    body = request.get('body')
    answer_json(output, {'uri': uri, 'method': request['method'], 'groups': list(request['groups']),
                         'get': request.get('get'), 'user_agent': request['headers'].get('user-agent'),
                         'body': body.decode('latin-1') if body is not None else None})


def answers(output, uri, **request):
    kind = request['groups'][0]
    if kind == 'status':
        output.SendHttpStatusCode(418)
    elif kind == 'status-body':
        output.SendHttpStatus(409, b'conflict body')
    elif kind == 'redirect':
        output.Redirect('/system')
    elif kind == 'unauthorized':
        output.SendUnauthorized('sdk realm')
    elif kind == 'not-allowed':
        output.SendMethodNotAllowed('GET,PUT')
    elif kind == 'cookie':
        output.SetCookie('sdk', 'cookie-value')
        output.AnswerBuffer('with a cookie', 'text/plain')
    elif kind == 'multipart':
        output.StartMultipartAnswer('related', 'text/plain')
        output.SendMultipartItem(b'first part')
        output.SendMultipartItem('second part')
    elif kind == 'png':
        output.CompressAndAnswerPngImage(orthanc.PixelFormat.GRAYSCALE8, 4, 2, 4, bytes(range(8)))
    elif kind == 'jpeg':
        output.CompressAndAnswerJpegImage(orthanc.PixelFormat.RGB24, 2, 2, 6, bytes(12), 90)
    elif kind == 'error-details':
        output.SetHttpErrorDetails('details from the plugin', 1)
        raise RuntimeError('failing on purpose, after SetHttpErrorDetails')
    elif kind == 'text':
        output.AnswerBuffer('plain text', 'text/plain')


def rest_api(output, uri, **request):
    """Every in-process call of the REST API, on the instance posted in the body."""
    out = {}
    stored = json.loads(orthanc.RestApiPost('/instances', request['body']))
    instance = stored['ID']
    out['stored'] = stored
    out['origin'] = orthanc.RestApiGet(f'/instances/{instance}/metadata/Origin').decode()
    orthanc.RestApiPut(f'/instances/{instance}/metadata/1025', 'from the plugin')
    out['metadata'] = orthanc.RestApiGet(f'/instances/{instance}/metadata/1025').decode()
    out['expand'] = len(json.loads(orthanc.RestApiGet('/instances?expand')))
    out['dicom_equal'] = orthanc.GetDicomForInstance(instance) == request['body']
    tags = json.loads(orthanc.RestApiGet(f'/instances/{instance}/simplified-tags'))
    out['lookups'] = {
        'patient': orthanc.LookupPatient(tags['PatientID']) == stored['ParentPatient'],
        'study': orthanc.LookupStudy(tags['StudyInstanceUID']) == stored['ParentStudy'],
        'accession': orthanc.LookupStudyWithAccessionNumber(tags.get('AccessionNumber', '')) == stored['ParentStudy']
        if tags.get('AccessionNumber') else None,
        'series': orthanc.LookupSeries(tags['SeriesInstanceUID']) == stored['ParentSeries'],
        'instance': orthanc.LookupInstance(tags['SOPInstanceUID']) == instance,
    }
    try:
        orthanc.LookupPatient('no such patient')
        out['lookup_missing'] = 'no error'
    except orthanc.OrthancException as e:
        out['lookup_missing'] = e.args[0]
    out['after_plugins_get'] = json.loads(orthanc.RestApiGetAfterPlugins('/sdk/echo/get?x=1'))
    out['after_plugins_post'] = json.loads(orthanc.RestApiPostAfterPlugins('/sdk/echo/post', b'posted'))
    out['after_plugins_put'] = json.loads(orthanc.RestApiPutAfterPlugins('/sdk/echo/put', 'put'))
    orthanc.RestApiDeleteAfterPlugins('/sdk/echo/delete')
    try:
        orthanc.RestApiGet('/sdk/echo/core-only')
        out['core_only'] = 'no error'
    except orthanc.OrthancException as e:
        out['core_only'] = e.args[0]
    try:
        orthanc.RestApiGet('/nope')
        out['unknown'] = 'no error'
    except orthanc.OrthancException as e:
        out['unknown'] = [e.args[0], e.args[1], e.args[0] == orthanc.ErrorCode.UNKNOWN_RESOURCE]
    try:
        orthanc.RestApiPost('/tools/find', '{"Level": "Nope"}')
        out['bad_request'] = 'no error'
    except orthanc.OrthancException as e:
        out['bad_request'] = e.args[0]
    orthanc.RestApiDelete(f'/instances/{instance}')
    out['deleted'] = json.loads(orthanc.RestApiGet('/instances'))
    answer_json(output, out)


def toolbox(output, uri, **request):
    out = {'import_call': IMPORT_CALL}
    orthanc.SetGlobalProperty(4242, 'sdk value')
    out['global'] = orthanc.GetGlobalProperty(4242, 'default')
    out['global_default'] = orthanc.GetGlobalProperty(4343, 'default')
    try:
        orthanc.SetGlobalProperty(5, 'reserved')
        out['global_reserved'] = 'no error'
    except orthanc.OrthancException as e:
        out['global_reserved'] = e.args[0]
    out['configuration'] = json.loads(orthanc.GetConfiguration()).get('SdkTestStorage') == STORAGE
    out['token'] = orthanc.GenerateRestApiAuthorizationToken()
    dicom = orthanc.CreateDicom(json.dumps({'PatientName': 'SDK^CREATED', 'PatientID': 'SDK-CREATED',
                                            'SOPClassUID': '1.2.840.10008.5.1.4.1.1.7'}),
                                None, orthanc.CreateDicomFlags.GENERATE_IDENTIFIERS)
    created = orthanc.CreateDicomInstance(dicom)
    created_tags = json.loads(created.GetInstanceSimplifiedJson())
    out['created'] = {'name': created_tags['PatientName'], 'charset': created_tags.get('SpecificCharacterSet'),
                      'has_uids': all(k in created_tags for k in ('StudyInstanceUID', 'SeriesInstanceUID',
                                                                   'SOPInstanceUID')),
                      'dicm': dicom[128:132] == b'DICM',
                      'buffer_json': json.loads(orthanc.DicomBufferToJson(
                          dicom, orthanc.DicomToJsonFormat.HUMAN, orthanc.DicomToJsonFlags.NONE, 0))['PatientID']}
    out['enums'] = [orthanc.ChangeType.STABLE_STUDY, orthanc.ChangeType.ORTHANC_STARTED,
                    orthanc.ResourceType.STUDY, orthanc.ResourceType.NONE, orthanc.InstanceOrigin.PLUGIN,
                    orthanc.ReceivedInstanceCallbackResult.MODIFIED]
    out['tag_name'] = orthanc.GetTagName(0x0010, 0x0010, None)
    out['dictionary'] = orthanc.LookupDictionary('PatientName')
    out['sha1'] = orthanc.ComputeSha1(b'donjon')
    out['md5'] = orthanc.ComputeMd5(b'donjon')
    out['description'] = orthanc.GetErrorDescription(orthanc.ErrorCode.UNKNOWN_RESOURCE)
    out['versions'] = [orthanc.CheckVersion(), orthanc.CheckVersionAdvanced(1, 9, 0),
                       orthanc.CheckVersionAdvanced(99, 0, 0)]
    out['database_version'] = orthanc.GetExpectedDatabaseVersion()
    out['paths'] = [orthanc.GetConfigurationPath(), orthanc.GetOrthancPath(), orthanc.GetOrthancDirectory()]
    out['arguments'] = [orthanc.GetCommandLineArgument(i) for i in range(orthanc.GetCommandLineArgumentsCount())]
    out['uuid'] = orthanc.GenerateUuid()
    out['mime'] = [orthanc.AutodetectMimeType('a.json'), orthanc.AutodetectMimeType('b.png')]
    path = os.path.join(STORAGE, 'toolbox.bin')
    orthanc.WriteFile(path, b'written by the plugin')
    out['file'] = orthanc.ReadFile(path).decode()
    instances = json.loads(orthanc.RestApiGet('/instances'))
    out['instance_json'] = (json.loads(orthanc.DicomInstanceToJson(
        instances[0], orthanc.DicomToJsonFormat.SHORT, orthanc.DicomToJsonFlags.NONE, 0)).get('0008,0018')
        if instances else None)
    orthanc.LogInfo('sdk info message')
    orthanc.LogWarning('sdk warning message')
    orthanc.LogError('sdk error message')
    try:
        orthanc.RegisterWorklistCallback(lambda *args: None)
        out['unsupported'] = 'no error'
    except NotImplementedError as e:
        out['unsupported'] = str(e)
    try:
        from orthanc import RegisterWorklistCallback  # noqa: F401
        out['from_import'] = 'no error'
    except ImportError as e:
        out['from_import'] = [isinstance(e, NotImplementedError), str(e)]
    out['hasattr_unsupported'] = hasattr(orthanc, 'RegisterWorklistCallback')
    out['hasattr_supported'] = hasattr(orthanc, 'RestApiGet')
    try:
        orthanc.RegisterOnChangeCallback(on_change)
        out['second_registration'] = 'no error'
    except RuntimeError as e:
        out['second_registration'] = str(e)
    answer_json(output, out)


orthanc.RegisterRestCallback('/sdk/events', events)
orthanc.RegisterRestCallback('/sdk/echo/(.*)', echo)
orthanc.RegisterRestCallback('/sdk/filter(.*)', echo)
orthanc.RegisterRestCallback('/sdk/answers/([a-z-]+)', answers)
orthanc.RegisterRestCallback('/sdk/rest-api', rest_api)
orthanc.RegisterRestCallback('/sdk/toolbox', toolbox)
