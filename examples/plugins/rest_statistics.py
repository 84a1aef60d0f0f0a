"""A REST route answering a computed JSON: what the server holds, per modality.

    GET /examples/statistics/modalities  ->  {"CT": {"Series": 2, "Instances": 40, "Studies": 1}, ...}
    GET /examples/statistics/modalities?modality=MR  ->  the MR entry only

Written for Donjon against Orthanc's Python plugin API: it runs unchanged in Orthanc with the Python
plugin, and in Donjon with `"PythonScript": "rest_statistics.py"`.
"""

import json

import orthanc


def modalities(output, uri, **request):
    if request['method'] != 'GET':
        output.SendMethodNotAllowed('GET')
        return

    summary = {}
    for series in json.loads(orthanc.RestApiGet('/series?expand')):
        modality = series['MainDicomTags'].get('Modality', '') or 'UNKNOWN'
        entry = summary.setdefault(modality, {'Series': 0, 'Instances': 0, 'Studies': set()})
        entry['Series'] += 1
        entry['Instances'] += len(series['Instances'])
        entry['Studies'].add(series['ParentStudy'])

    for entry in summary.values():
        entry['Studies'] = len(entry['Studies'])

    wanted = request['get'].get('modality')
    if wanted is not None:
        summary = {wanted: summary.get(wanted, {'Series': 0, 'Instances': 0, 'Studies': 0})}

    output.SetHttpHeader('Cache-Control', 'no-store')
    output.AnswerBuffer(json.dumps(summary, indent=2, sort_keys=True), 'application/json')


orthanc.RegisterRestCallback('/examples/statistics/modalities', modalities)
