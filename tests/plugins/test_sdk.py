"""Every supported call of Orthanc's Python SDK, through a real Donjon running `sdk_everything.py`.

The plugin provides the storage area, filters HTTP requests and C-STOREs, modifies or discards
received instances, answers C-FIND and C-MOVE, and offers routes that call the REST API in-process.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from tests.plugins.support import BRAINIX, SCRIPTS, dcmtk, events, variant, wait_for, write
from tests.support.servers import Server, start_donjon

AET = "DONJON"
AUTH = ("alice", "secret")


@pytest.fixture(scope="module")
def storage() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="donjon-plugin-storage-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server(storage: Path) -> Iterator[Server]:
    s = start_donjon({"PythonScript": str(SCRIPTS / "sdk_everything.py"), "SdkTestStorage": str(storage),
                      "AuthenticationEnabled": True, "RegisteredUsers": {AUTH[0]: AUTH[1]}, "DicomAet": AET,
                      "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowMove": True,
                      "StableAge": 1}, auth=AUTH)
    yield s
    s.stop()


def test_the_plugin_is_listed_as_orthanc_lists_its_python_plugin(server: Server) -> None:
    assert server.get("/plugins").json() == ["explorer.js", "python"]
    info = server.get("/plugins/python").json()
    assert list(info) == ["Description", "ExtendsOrthancExplorer", "ID", "RootUri", "Version"]  # jsoncpp's order
    assert info["ID"] == "python" and info["Description"] == "The SDK test plugin"
    # Orthanc makes a root starting with "/" relative to /app/explorer.html
    assert info["RootUri"] == "../sdk/events" and info["ExtendsOrthancExplorer"] is True and info["Version"]
    assert server.get("/plugins/nope").status_code == 404
    js = server.get("/plugins/explorer.js")
    assert js.headers["content-type"] == "application/javascript"
    assert js.text == ("// Extensions to Orthanc Explorer by the registered plugins\n\n"
                       f"/**\n * From plugin: python (version {info['Version']})\n **/\n\n"
                       'console.log("sdk");\n\n')  # only the last ExtendOrthancExplorer() call, as Orthanc
    system = server.get("/system").json()
    assert system["PluginsEnabled"] is True and system["StorageAreaPlugin"].endswith("sdk_everything.py")


def test_rest_callback_receives_orthancs_arguments(server: Server) -> None:
    r = server.get("/sdk/echo/one/two?a=b&c", headers={"User-Agent": "sdk-test"})
    assert r.status_code == 200 and r.headers["x-sdk-echo"] == "yes"
    assert r.json() == {"uri": "/sdk/echo/one/two", "method": "GET", "groups": ["one/two"],
                        "get": {"a": "b", "c": ""}, "user_agent": "sdk-test", "body": None}
    posted = server.post("/sdk/echo/p", content=b"\x00binary").json()
    assert posted["method"] == "POST" and posted["body"] == "\x00binary" and posted["get"] is None
    assert server.put("/sdk/echo/p", content=b"x").json()["method"] == "PUT"
    deleted = server.delete("/sdk/echo/p").json()
    assert deleted["method"] == "DELETE" and deleted["body"] is None


def test_rest_output_answers(server: Server) -> None:
    assert server.get("/sdk/answers/status").status_code == 418
    conflict = server.get("/sdk/answers/status-body")
    assert conflict.status_code == 409 and conflict.content == b"conflict body"  # HttpDescribeErrors
    redirect = server.get("/sdk/answers/redirect", follow_redirects=False)
    assert redirect.status_code == 301 and redirect.headers["location"] == "/system"
    unauthorized = server.get("/sdk/answers/unauthorized")
    assert unauthorized.status_code == 401 and unauthorized.headers["www-authenticate"] == 'Basic realm="sdk realm"'
    not_allowed = server.get("/sdk/answers/not-allowed")
    assert not_allowed.status_code == 405 and not_allowed.headers["allow"] == "GET,PUT"
    cookie = server.get("/sdk/answers/cookie")
    assert cookie.text == "with a cookie" and cookie.headers["set-cookie"] == "sdk=cookie-value"
    multipart = server.get("/sdk/answers/multipart")
    assert multipart.headers["content-type"].startswith('multipart/related; type="text/plain"; boundary=')
    assert b"first part" in multipart.content and b"second part" in multipart.content
    png = server.get("/sdk/answers/png")
    assert png.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (4, 2) and list(image.tobytes()) == list(range(8))
    text = server.get("/sdk/answers/text")
    assert text.headers["content-type"] == "text/plain" and text.text == "plain text"
    jpeg = server.get("/sdk/answers/jpeg")
    assert jpeg.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(jpeg.content)).size == (2, 2)
    details = server.get("/sdk/answers/error-details")
    assert details.status_code == 500 and details.json()["Details"] == "details from the plugin"


def test_http_filter(server: Server) -> None:
    assert server.get("/sdk/filter-probe?x=1", headers={"X-Sdk": "probe"}).status_code == 200
    probe = wait_for(lambda: [e for e in events(server, "http-filter") if e["uri"] == "/sdk/filter-probe"])[-1]
    assert probe["method"] == 1 and probe["ip"] == "127.0.0.1" and probe["header"] == "probe"
    assert probe["get"] == {"x": "1"}
    assert server.get("/sdk/filter-forbidden").status_code == 403
    server.post("/sdk/filter-post", content=b"")
    posted = [e for e in events(server, "http-filter") if e["uri"] == "/sdk/filter-post"][-1]
    assert posted["method"] == 2 and posted["get"] is None


def test_rest_api_called_in_process(server: Server) -> None:
    data = variant("SDK-REST", AccessionNumber="ACC-SDK")
    out = server.post("/sdk/rest-api", content=data).json()
    assert out["stored"]["Status"] == "Success"
    assert out["origin"] == "Plugins"  # an instance stored by a plugin
    assert out["metadata"] == "from the plugin"
    assert out["expand"] >= 1 and out["dicom_equal"] is True
    assert out["lookups"] == {"patient": True, "study": True, "accession": True, "series": True, "instance": True}
    assert out["lookup_missing"] == -1  # Orthanc's plugin: a NULL answer is an InternalError
    assert out["after_plugins_get"]["groups"] == ["get"] and out["after_plugins_get"]["get"] == {"x": "1"}
    assert out["after_plugins_post"]["body"] == "posted" and out["after_plugins_put"]["body"] == "put"
    assert out["core_only"] == 17  # RestApiGet does not see the plugins' routes
    assert out["unknown"] == [17, "Unknown resource", True]
    assert isinstance(out["bad_request"], int) and out["bad_request"] > 0
    assert out["stored"]["ID"] not in out["deleted"]
    instance = out["stored"]["ID"]
    stored = next(e for e in events(server, "stored") if e["id"] == instance)
    assert stored["origin"] == 4 and stored["origin_md"] == "Plugins"  # InstanceOrigin.PLUGIN


def test_storage_area_receives_every_file(server: Server, storage: Path) -> None:
    data = variant("SDK-STORAGE")
    stored = server.post("/instances", content=data).json()
    creates = [e for e in events(server, "storage-create")]
    types = {e["type"] for e in creates}
    assert {1, 3} <= types  # the DICOM file and the header until the pixel data
    dicom = [e for e in creates if e["type"] == 1 and e["size"] == len(data)]
    assert dicom and (storage / dicom[-1]["uuid"]).read_bytes() == data
    assert server.get(f"/instances/{stored['ID']}/file").content == data  # read through the plugin
    assert server.delete(f"/instances/{stored['ID']}").status_code == 200
    removed = {e["uuid"]: e["type"] for e in events(server, "storage-remove")}
    assert removed.get(dicom[-1]["uuid"]) == 1
    assert not (storage / dicom[-1]["uuid"]).exists()


def test_received_instance_callback_modifies_and_discards(server: Server) -> None:
    modified = server.post("/instances", content=variant("SDK-MODIFY")).json()
    assert modified["Status"] == "Success"
    tags = server.get(f"/instances/{modified['ID']}/simplified-tags").json()
    assert tags["InstitutionName"] == "MODIFIED BY SDK"
    discarded = server.post("/instances", content=variant("SDK-DISCARD")).json()
    assert discarded["Status"] == "FilteredOut"
    assert discarded["ID"] not in server.get("/instances").json()
    received = events(server, "received")
    assert {"patient_id": "SDK-DISCARD", "origin": 3, "kind": "received"} in received  # InstanceOrigin.REST_API


def test_stored_instance_callback_sees_the_instance(server: Server) -> None:
    data = BRAINIX.read_bytes()
    stored = server.post("/instances", content=data).json()
    event = wait_for(lambda: [e for e in events(server, "stored") if e["id"] == stored["ID"]])[0]
    assert event["size"] == event["data_size"] == event["serialized"] == len(data)
    assert event["origin"] == 3 and event["remote_aet"] == ""
    assert event["transfer_syntax"] == "1.2.840.10008.1.2.1"
    assert event["has_origin"] == 1 and event["origin_md"] == "RestApi" and event["has_nothing"] == 0
    assert event["patient_name"] == event["full_name"] == event["short_name"] == "BRAINIX"
    assert event["pixel_data"] == 1 and event["frames"] == 1


def test_changes_are_delivered_with_the_sdk_numbers(server: Server) -> None:
    stored = server.post("/instances", content=variant("SDK-CHANGES")).json()
    new_instance = {"kind": "change", "change": 3, "level": 3, "id": stored["ID"]}  # NEW_INSTANCE
    new_study = {"kind": "change", "change": 6, "level": 1, "id": stored["ParentStudy"]}  # NEW_STUDY
    # (the plugin's change callbacks run on their own thread, after the answer of the store)
    changes = wait_for(lambda: (found := events(server, "change")) and new_instance in found
                       and new_study in found and found, what="NewInstance and NewStudy")
    assert changes[0] == {"kind": "change", "change": 10, "level": 4, "id": ""}  # ORTHANC_STARTED
    wait_for(lambda: {"kind": "change", "change": 9, "level": 1, "id": stored["ParentStudy"]}
             in events(server, "change"), what="StableStudy")
    job = server.post(f"/studies/{stored['ParentStudy']}/anonymize", json={"Asynchronous": True}).json()["ID"]
    for change in (16, 17):  # JOB_SUBMITTED, JOB_SUCCESS, with the job's id and no resource type
        wait_for(lambda change=change: {"kind": "change", "change": change, "level": 4, "id": job}
                 in events(server, "change"), what=f"job change {change}")


def test_cstore_filter_with_storescu(server: Server, tmp_path: Path) -> None:
    refused = write(tmp_path, "refused.dcm", variant("SDK-CSTORE-REFUSED"))
    accepted = write(tmp_path, "accepted.dcm", variant("SDK-CSTORE-ACCEPTED"))
    before = set(server.get("/instances").json())
    r = dcmtk("storescu", "-v", "-aet", "REFUSED", "-aec", AET, "127.0.0.1", str(server.dicom_port), str(refused))
    assert r.returncode != 0 and "DataSetDoesNotMatchSOPClass" in r.stderr, r.stderr  # the filter's 0xA900
    assert set(server.get("/instances").json()) == before
    r = dcmtk("storescu", "-aet", "GOOD", "-aec", AET, "127.0.0.1", str(server.dicom_port), str(accepted))
    assert r.returncode == 0, r.stderr
    (new,) = set(server.get("/instances").json()) - before
    seen = events(server, "cstore-filter")
    assert {"kind": "cstore-filter", "aet": "REFUSED", "origin": 2, "called": AET} in seen
    stored = next(e for e in events(server, "stored") if e["id"] == new)
    assert stored["origin"] == 2 and stored["remote_aet"] == "GOOD"


def test_find_and_move_callbacks(server: Server) -> None:
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=AET)
    assert assoc.is_established
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientName = "TEST"
        query.StudyDescription = ""
        found = [(status.Status, ds) for status, ds in
                 assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
        answers = [ds for status, ds in found if status == 0xFF00]
        assert found[-1][0] == 0x0000 and len(answers) == 2
        query.PatientName = "INCOMPLETE"
        statuses = [status.Status for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
        assert statuses == [0xFF00, 0xFF00, 0xFE00]  # FindMarkIncomplete(): the last status is Cancel
        assert str(answers[0].PatientName) == "SDK0-TEST" and str(answers[1].PatientName) == "SDK1-TEST"
        assert answers[0].QueryRetrieveLevel == "STUDY"
        move = Dataset()
        move.QueryRetrieveLevel = "STUDY"
        move.StudyInstanceUID = "1.2.3.4"
        statuses = [status.Status for status, _ in
                    assoc.send_c_move(move, "TARGET", StudyRootQueryRetrieveInformationModelMove)]
        assert statuses[-1] == 0x0000
    finally:
        assoc.release()
    find = events(server, "find")[-2]  # the first query (the second asked for INCOMPLETE)
    assert find["issuer"] == "FINDSCU" and find["called"] == AET
    assert find["query"] == {"QueryRetrieveLevel": "STUDY", "StudyDescription": "", "PatientName": "TEST"}
    assert find["first_tag"] == [0x0008, 0x0052]
    move_event = events(server, "move")[-1]
    assert move_event == {"kind": "move", "Level": "STUDY", "PatientID": "", "AccessionNumber": "",
                          "StudyInstanceUID": "1.2.3.4", "SeriesInstanceUID": "", "SOPInstanceUID": "",
                          "OriginatorAET": "FINDSCU", "SourceAET": AET, "TargetAET": "TARGET",
                          "OriginatorID": move_event["OriginatorID"]}


def test_toolbox_calls(server: Server) -> None:
    out = server.get("/sdk/toolbox").json()
    assert out["import_call"][0] == 2038  # DatabaseNotInitialized: no REST API while importing
    assert out["global"] == "sdk value" and out["global_default"] == "default"
    assert out["global_reserved"] == 3
    assert out["configuration"] is True
    created = out["created"]
    assert created == {"name": "SDK^CREATED", "charset": "ISO_IR 100", "has_uids": True, "dicm": True,
                       "buffer_json": "SDK-CREATED"}
    assert out["enums"] == [9, 10, 1, 4, 4, 2]
    assert out["tag_name"] == "PatientName"
    assert out["dictionary"] == {"Group": 0x10, "Element": 0x10, "ValueRepresentation": 16,
                                 "MinMultiplicity": 1, "MaxMultiplicity": 1}
    sha1 = hashlib.sha1(b"donjon").hexdigest()
    assert out["sha1"] == "-".join(sha1[i:i + 8] for i in range(0, 40, 8))
    assert out["md5"] == hashlib.md5(b"donjon").hexdigest()
    assert out["description"] == "Unknown resource"
    assert out["versions"] == [1, 1, 0]
    assert out["database_version"] == 6
    assert out["paths"][0] == str(server.workdir / "config.json")  # the file, as Orthanc
    assert Path(out["paths"][1]).name.startswith("python")
    assert out["paths"][2] == str(Path(out["paths"][1]).parent)
    assert out["arguments"][-1].endswith("config.json")
    assert len(out["uuid"]) == 36 and out["uuid"].count("-") == 4
    assert out["mime"] == ["application/json", "image/png"]
    assert out["file"] == "written by the plugin"
    instances = server.get("/instances").json()
    if instances:
        uid = server.get(f"/instances/{instances[0]}/simplified-tags").json()["SOPInstanceUID"]
        assert out["instance_json"] == uid
    assert "orthanc.RegisterWorklistCallback" in out["unsupported"] and "not supported" in out["unsupported"]
    assert out["hasattr_unsupported"] is False and out["hasattr_supported"] is True
    # `from orthanc import X`: an ImportError (also a NotImplementedError) that keeps the clear message
    assert out["from_import"] == [True, "orthanc.RegisterWorklistCallback is not supported by Donjon's Python "
                                        "plugin host (see docs/plugins.md for the supported calls)"]
    assert "Can only register one" in out["second_registration"]
    log = server.log()
    assert "sdk warning message" in log and "sdk error message" in log
    # the token of GenerateRestApiAuthorizationToken() opens the REST API without credentials
    anonymous = httpx.get(f"{server.url}/system")
    assert anonymous.status_code == 401
    with_token = httpx.get(f"{server.url}/system", headers={"Authorization": out["token"]})
    assert with_token.status_code == 200 and json.loads(with_token.text)["PluginsEnabled"] is True
    assert httpx.get(f"{server.url}/system", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_reset_keeps_the_plugin_serving(server: Server) -> None:
    assert server.post("/tools/reset").status_code == 200
    stored = server.post("/instances", content=variant("SDK-AFTER-RESET")).json()
    assert stored["Status"] == "Success"
    wait_for(lambda: [e for e in events(server, "stored") if e["id"] == stored["ID"]], what="the stored callback")
    wait_for(lambda: {"kind": "change", "change": 3, "level": 3, "id": stored["ID"]} in events(server, "change"),
             what="NewInstance after the reset")
    assert server.get("/sdk/echo/after-reset").json()["groups"] == ["after-reset"]


def test_orthanc_stopped_is_delivered_last_with_the_rest_api_still_there(server: Server, storage: Path) -> None:
    count = len(server.get("/instances").json())
    server.stop()
    assert server.process.returncode == 0
    assert json.loads((storage / "stopped.json").read_text())["CountInstances"] == count
