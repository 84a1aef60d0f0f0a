"""The DICOM server with real peers: DCMTK's echoscu/storescu/findscu/movescu/getscu and pynetdicom.

Association checks, C-STORE of every transfer syntax of the samples (stored as received, with
Orthanc's meta header), bad C-STOREs, C-FIND at each level with counters and limits, C-MOVE to a
storescp started here, C-GET, and faults (abrupt close, unknown destination).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from donjon.network.meta import split_file
from tests.support.servers import Server, free_port, start_donjon

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="DCMTK is not installed")

AET = "DONJON"
BRAINIX1 = "Brainix/Flair/IM-0001-0001.dcm"
ENV = {**os.environ, "TCP_NODELAY": "1"}
# storescu option proposing the transfer syntax of each sample (4.57 is refused by storescu itself)
PROPOSE = {"1.2.840.10008.1.2.1.99": "-xd", "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
           "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.81": "-xu",
           "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.5": "-xr",
           "1.2.840.10008.1.2": "-R", "1.2.840.10008.1.2.1": "-R", "1.2.840.10008.1.2.2": "-R"}


def dcmtk(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, errors="replace", env=ENV, timeout=timeout)


def dataset_part(path: Path) -> bytes:
    """The bytes of a file after its meta header."""
    data = path.read_bytes()
    return data[split_file(data).dataset_start:]


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = start_donjon({"DicomAet": AET, "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True,
                      "DicomAlwaysAllowMove": True})
    yield s
    s.stop()


@pytest.fixture
def fresh(server: Server) -> Server:
    server.wipe()
    return server


def store(server: Server, *paths: Path, opt: str = "-R", calling: str = "STORESCU") -> subprocess.CompletedProcess[str]:
    return dcmtk("storescu", opt, "-aet", calling, "-aec", AET, "127.0.0.1", str(server.dicom_port),
                 *[str(p) for p in paths])


# -- association --------------------------------------------------------------------------------------

def test_echo(server: Server) -> None:
    r = dcmtk("echoscu", "-aet", "ANYONE", "-aec", "WHATEVER", "127.0.0.1", str(server.dicom_port))
    assert r.returncode == 0, r.stderr


def test_called_aet_checked() -> None:
    s = start_donjon({"DicomAet": AET, "DicomCheckCalledAet": True})
    try:
        bad = dcmtk("echoscu", "-aec", "OTHER", "127.0.0.1", str(s.dicom_port))
        assert bad.returncode != 0 and "Called AE Title Not Recognized" in bad.stderr
        assert dcmtk("echoscu", "-aec", AET.lower(), "127.0.0.1", str(s.dicom_port)).returncode == 0
    finally:
        s.stop()


def test_calling_aet_checked_when_nothing_is_always_allowed() -> None:
    s = start_donjon({"DicomAet": AET, "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
                      "DicomModalities": {"known": ["KNOWN", "127.0.0.1", 104],
                                          "elsewhere": {"AET": "FAR", "Host": "10.1.2.3", "Port": 104}},
                      "DicomCheckModalityHost": True})
    try:
        bad = dcmtk("echoscu", "-aet", "STRANGER", "-aec", AET, "127.0.0.1", str(s.dicom_port))
        assert bad.returncode != 0 and "Calling AE Title Not Recognized" in bad.stderr
        assert dcmtk("echoscu", "-aet", "KNOWN", "-aec", AET, "127.0.0.1", str(s.dicom_port)).returncode == 0
        far = dcmtk("echoscu", "-aet", "FAR", "-aec", AET, "127.0.0.1", str(s.dicom_port))
        assert far.returncode != 0  # known AET, wrong host
    finally:
        s.stop()


def test_commands_not_allowed_abort_the_association(samples: Any) -> None:
    s = start_donjon({"DicomAet": AET, "DicomModalities": {"m": {"AET": "NOECHO", "Host": "127.0.0.1", "Port": 104,
                                                                "AllowFind": False}}})
    try:
        find = dcmtk("findscu", "-S", "-aet", "STRANGER", "-aec", AET, "-k", "QueryRetrieveLevel=STUDY",
                     "127.0.0.1", str(s.dicom_port))
        assert "Peer aborted Association" in find.stderr or find.returncode != 0
        find = dcmtk("findscu", "-S", "-aet", "NOECHO", "-aec", AET, "-k", "QueryRetrieveLevel=STUDY",
                     "127.0.0.1", str(s.dicom_port))
        assert "Peer aborted Association" in find.stderr or find.returncode != 0
        assert store(s, samples / BRAINIX1, calling="STRANGER").returncode == 0
        assert dcmtk("echoscu", "-aec", AET, "127.0.0.1", str(s.dicom_port)).returncode == 0  # still up
    finally:
        s.stop()


# -- C-STORE ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("syntax", sorted(PROPOSE))
def test_store_each_transfer_syntax(fresh: Server, samples: Any, syntax: str) -> None:
    path = samples / "TransferSyntaxes" / f"{syntax}.dcm"
    r = store(fresh, path, opt=PROPOSE[syntax])
    assert r.returncode == 0, r.stderr
    (iid,) = fresh.get("/instances").json()
    md = fresh.get(f"/instances/{iid}/metadata?expand").json()
    assert md["Origin"] == "DicomProtocol"
    assert md["RemoteAET"] == "STORESCU"
    assert md["CalledAET"] == AET
    assert md["RemoteIP"] == "127.0.0.1"
    expected = "1.2.840.10008.1.2.1" if syntax == "1.2.840.10008.1.2.2" else syntax  # storescu converts BE, as with Orthanc
    assert md["TransferSyntax"] == expected
    stored = fresh.get(f"/instances/{iid}/file").content
    ds = pydicom.dcmread(io.BytesIO(stored), stop_before_pixels=True)
    assert ds.file_meta.ImplementationClassUID == "1.2.276.0.7230010.3.0.3.6.7"
    assert ds.file_meta.ImplementationVersionName == "OFFIS_DCMTK_367"
    assert ds.file_meta.TransferSyntaxUID == expected
    whole = pydicom.dcmread(io.BytesIO(stored))
    source = pydicom.dcmread(path, force=True)
    assert whole.SOPInstanceUID == source.SOPInstanceUID
    if expected == syntax:
        assert whole.PixelData == source.PixelData  # not transcoded on the way in


def test_store_a_series_over_one_association(fresh: Server, samples: Any) -> None:
    r = dcmtk("storescu", "-aec", AET, "+sd", "+r", "127.0.0.1", str(fresh.dicom_port), str(samples / "Brainix"))
    assert r.returncode == 0, r.stderr
    stats = fresh.get("/statistics").json()
    assert (stats["CountPatients"], stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == (1, 1, 2, 44)
    assert store(fresh, samples / BRAINIX1).returncode == 0
    assert store(fresh, samples / BRAINIX1).returncode == 0  # AlreadyStored is a success


@pytest.mark.parametrize("pdu", ["4096", "16384", "131072"])
def test_data_sets_spread_over_many_pdus_arrive_whole(fresh: Server, samples: Any, pdu: str) -> None:
    # continuation fragments skip pynetdicom's state machine (network/fast.py): each byte must land
    # once and in order, whatever the PDU size and however many instances share the association
    paths = [samples / "SignedCT.dcm", samples / BRAINIX1, samples / "Phenix" / "IM-0001-0001.dcm"]
    r = dcmtk("storescu", "--max-send-pdu", pdu, "-aec", AET, "127.0.0.1", str(fresh.dicom_port), *map(str, paths))
    assert r.returncode == 0, r.stderr
    stored = {}
    for iid in fresh.get("/instances").json():
        ds = pydicom.dcmread(io.BytesIO(fresh.get(f"/instances/{iid}/file").content))
        stored[ds.SOPInstanceUID] = ds
    assert len(stored) == len(paths)
    for path in paths:
        source = pydicom.dcmread(path)
        ds = stored[source.SOPInstanceUID]
        assert ds.PixelData == source.PixelData
        assert ds == source  # every element (storescu may re-encode sequence lengths, not values)


def _associate(server: Server, *contexts: str, aet: str = "PYSCU") -> Any:
    ae = AE(ae_title=aet)
    for cx in contexts:
        ae.add_requested_context(cx)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", server.dicom_port, ae_title=AET)
    assert assoc.is_established
    return assoc


def _raw_store(assoc: Any, sop_class: str, sop_instance: str, payload: bytes) -> int:
    from io import BytesIO

    from pynetdicom.dimse_primitives import C_STORE

    req = C_STORE()
    req.MessageID = 7
    req.Priority = 2
    req.AffectedSOPClassUID = sop_class
    req.AffectedSOPInstanceUID = sop_instance
    req.DataSet = BytesIO(payload)
    cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == sop_class)
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.001)
    assoc.dimse.send_msg(req, cx.context_id)
    _, rsp = assoc.dimse.get_msg(block=True)
    assoc._reactor_checkpoint.set()
    return int(rsp.Status)


def test_bad_stores_get_failure_statuses(fresh: Server, samples: Any) -> None:
    path = samples / BRAINIX1
    ds = pydicom.dcmread(path)
    body = dataset_part(path)
    assoc = _associate(fresh, MRImageStorage)
    try:
        # a data set that is not what the command says
        assert _raw_store(assoc, MRImageStorage, "1.2.3.4", body) == 0xA900
        # garbage: no SOP class or instance in the data set
        assert _raw_store(assoc, MRImageStorage, ds.SOPInstanceUID, b"\x08\x00\x16\x00\xff\xff\xff\x7f" + b"x" * 40) == 0xC000
        # a truncated data set: the store path refuses it
        assert _raw_store(assoc, MRImageStorage, ds.SOPInstanceUID, body[: len(body) // 2]) == 0xC000
        assert _raw_store(assoc, MRImageStorage, ds.SOPInstanceUID, body) == 0x0000
    finally:
        assoc.release()
    assert len(fresh.get("/instances").json()) == 1


def test_full_storage_answers_out_of_resources(samples: Any) -> None:
    s = start_donjon({"DicomAet": AET, "MaximumStorageSize": 1, "MaximumStorageMode": "Reject"})
    try:
        assoc = _associate(s, MRImageStorage)
        statuses = []
        for path in sorted((samples / "Brainix" / "Flair").iterdir())[:12]:
            uid = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
            statuses.append(_raw_store(assoc, MRImageStorage, uid, dataset_part(path)))
        assoc.release()
        assert statuses[0] == 0 and statuses[-1] == 0xA700
        assert dcmtk("echoscu", "-aec", AET, "127.0.0.1", str(s.dicom_port)).returncode == 0
    finally:
        s.stop()


def test_unknown_sop_class_and_syntaxes() -> None:
    private_class = "1.2.3.4.5.6.7.8"
    plain = start_donjon({"DicomAet": AET})
    promiscuous = start_donjon({"DicomAet": AET, "UnknownSopClassAccepted": True,
                                "AcceptedTransferSyntaxes": ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"],
                                "JpegTransferSyntaxAccepted": False})
    try:
        for s, accepted in ((plain, False), (promiscuous, True)):
            ae = AE(ae_title="PYSCU")
            ae.add_requested_context(private_class)
            ae.add_requested_context(CTImageStorage, ["1.2.840.10008.1.2.4.50"])
            ae.add_requested_context(Verification)
            assoc = ae.associate("127.0.0.1", s.dicom_port, ae_title=AET)
            accepted_classes = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
            assert (private_class in accepted_classes) is accepted
            assert (CTImageStorage in accepted_classes) is (not accepted)  # JPEG refused by the second server
            assoc.release()
    finally:
        plain.stop()
        promiscuous.stop()


def test_abrupt_close_mid_transfer(fresh: Server, samples: Any) -> None:
    """A peer that vanishes in the middle of a PDU leaves nothing indexed and the server up."""
    from pynetdicom.pdu import A_ASSOCIATE_RQ

    assoc = _associate(fresh, MRImageStorage)
    sock = assoc.dul.socket.socket
    sock.sendall(b"\x04\x00\x00\x00\x10\x00" + b"\x00\x00\x00\x0c\x01\x03" + b"\x00" * 4)  # half a P-DATA
    sock.close()
    del A_ASSOCIATE_RQ
    with socket.create_connection(("127.0.0.1", fresh.dicom_port)) as raw:
        raw.sendall(b"\x01\x00\x00\x00\x01\x00garbage")
    time.sleep(0.5)
    assert dcmtk("echoscu", "-aec", AET, "127.0.0.1", str(fresh.dicom_port)).returncode == 0
    assert fresh.get("/instances").json() == []


# -- C-FIND ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def loaded(server: Server, samples: Any) -> Server:
    server.wipe()
    r = dcmtk("storescu", "-aec", AET, "+sd", "+r", "127.0.0.1", str(server.dicom_port), str(samples / "Brainix"))
    assert r.returncode == 0, r.stderr
    r = dcmtk("storescu", "-xw", "-aec", AET, "+sd", "+r", "127.0.0.1", str(server.dicom_port), str(samples / "Knee"))
    assert r.returncode == 0, r.stderr
    return server


def find(server: Server, level: str, model: str = StudyRootQueryRetrieveInformationModelFind,
         **keys: Any) -> tuple[list[Dataset], int]:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for k, v in keys.items():
        setattr(ds, k, v)
    assoc = _associate(server, model)
    answers, final = [], -1
    try:
        for status, identifier in assoc.send_c_find(ds, model):
            if status.Status in (0xFF00, 0xFF01):
                answers.append(identifier)
            else:
                final = int(status.Status)
    finally:
        assoc.release()
    return answers, final


def test_find_each_level(loaded: Server) -> None:
    patients, status = find(loaded, "PATIENT", PatientRootQueryRetrieveInformationModelFind, PatientName="",
                            PatientID="", NumberOfPatientRelatedStudies="", NumberOfPatientRelatedSeries="",
                            NumberOfPatientRelatedInstances="")
    assert status == 0
    by_name = {str(p.PatientName): p for p in patients}
    assert set(by_name) == {"BRAINIX", "KNEE"}
    assert (by_name["BRAINIX"].NumberOfPatientRelatedStudies, by_name["BRAINIX"].NumberOfPatientRelatedSeries,
            by_name["BRAINIX"].NumberOfPatientRelatedInstances) == (1, 2, 44)
    assert by_name["KNEE"].RetrieveAETitle == AET and by_name["KNEE"].SpecificCharacterSet == "ISO_IR 100"

    studies, _ = find(loaded, "STUDY", PatientName="B*", StudyInstanceUID="", StudyDescription="", ModalitiesInStudy="",
                      NumberOfStudyRelatedSeries="", NumberOfStudyRelatedInstances="", SOPClassesInStudy="")
    (study,) = studies
    assert study.StudyDescription == "IRM cérébrale, neuro-crâne"
    assert (study.ModalitiesInStudy, study.NumberOfStudyRelatedSeries, study.NumberOfStudyRelatedInstances) == ("MR", 2, 44)
    assert study.SOPClassesInStudy == MRImageStorage
    assert "SeriesDescription" not in study

    series, _ = find(loaded, "SERIES", StudyInstanceUID=study.StudyInstanceUID, SeriesInstanceUID="", SeriesDescription="",
                     NumberOfSeriesRelatedInstances="", Modality="MR")
    assert sorted(int(s.NumberOfSeriesRelatedInstances) for s in series) == [22, 22]
    instances, _ = find(loaded, "IMAGE", SeriesInstanceUID=series[0].SeriesInstanceUID, SOPInstanceUID="",
                        InstanceNumber="1")
    assert len(instances) == 1 and instances[0].QueryRetrieveLevel == "IMAGE"


def test_find_matching_rules(loaded: Server) -> None:
    assert len(find(loaded, "PATIENT", PatientName="brainix")[0]) == 1  # PN: case-insensitive by default
    assert len(find(loaded, "STUDY", StudyDescription="irm*")[0]) == 0  # other VRs: case-sensitive
    assert len(find(loaded, "STUDY", StudyDescription="IRM*")[0]) == 2
    assert len(find(loaded, "PATIENT", PatientName="KNEE\\NOBODY")[0]) == 1
    assert len(find(loaded, "STUDY", StudyDate="20000101-")[0]) >= 1
    assert find(loaded, "STUDY", StudyDate="2006*")[1] == 0xC000  # no wildcard on a date
    values = find(loaded, "STUDY", PatientName="KNEE", SliceThickness="", InstitutionName="")[0]
    assert values[0].SliceThickness != ""  # read from a stored file
    assert find(loaded, "STUDY", Modality="MR")[0] == []  # a series tag at study level matches nothing


def test_find_without_level_fails(loaded: Server) -> None:
    assoc = _associate(loaded, StudyRootQueryRetrieveInformationModelFind)
    ds = Dataset()
    ds.PatientName = "*"
    statuses = [int(st.Status) for st, _ in assoc.send_c_find(ds, StudyRootQueryRetrieveInformationModelFind)]
    assoc.release()
    assert statuses == [0xC000]


def test_find_limit(samples: Any) -> None:
    s = start_donjon({"DicomAet": AET, "DicomAlwaysAllowFind": True, "LimitFindResults": 1, "LimitFindInstances": 3})
    try:
        dcmtk("storescu", "-xw", "-aec", AET, "+sd", "+r", "127.0.0.1", str(s.dicom_port), str(samples / "Knee"))
        dcmtk("storescu", "-aec", AET, "+sd", "+r", "127.0.0.1", str(s.dicom_port), str(samples / "Brainix"))
        answers, status = find(s, "STUDY", StudyInstanceUID="")
        assert (len(answers), status) == (1, 0xFE00)
        answers, status = find(s, "IMAGE", SOPInstanceUID="")
        assert (len(answers), status) == (3, 0xFE00)
    finally:
        s.stop()


def test_findscu_each_level(loaded: Server) -> None:
    for level, extra in (("PATIENT", ["-P"]), ("STUDY", ["-S"]), ("SERIES", ["-S"]), ("IMAGE", ["-S"])):
        r = dcmtk("findscu", *extra, "-aec", AET, "-k", f"QueryRetrieveLevel={level}", "-k", "PatientName=KNEE",
                  "-k", "PatientID", "127.0.0.1", str(loaded.dicom_port))
        assert r.returncode == 0, r.stderr
        assert "KNEE" in r.stderr


# -- C-MOVE / C-GET --------------------------------------------------------------------------------------

@pytest.fixture
def storescp() -> Iterator[tuple[int, Path]]:
    port, folder = free_port(), Path(tempfile.mkdtemp(prefix="storescp-"))
    proc = subprocess.Popen(["storescp", "+xa", "-aet", "TARGET", "-od", str(folder), str(port)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    yield port, folder
    proc.terminate()
    proc.wait()
    shutil.rmtree(folder, ignore_errors=True)


def test_movescu_to_a_storescp(loaded: Server, storescp: tuple[int, Path]) -> None:
    port, folder = storescp
    loaded.put("/modalities/target", json=["TARGET", "127.0.0.1", port])
    try:
        r = dcmtk("movescu", "-S", "-aec", AET, "-aem", "target", "-k", "QueryRetrieveLevel=STUDY",
                  "-k", "PatientName=KNEE", "-k", "StudyInstanceUID=" + _study_uid(loaded, "KNEE"),
                  "127.0.0.1", str(loaded.dicom_port))
        assert r.returncode == 0, r.stderr
        assert len(list(folder.iterdir())) == 50
        unknown = dcmtk("movescu", "-S", "-aec", AET, "-aem", "NOWHERE", "-k", "QueryRetrieveLevel=STUDY",
                        "-k", "StudyInstanceUID=" + _study_uid(loaded, "KNEE"), "127.0.0.1", str(loaded.dicom_port))
        assert "UnableToProcess" in unknown.stderr
        nothing = dcmtk("movescu", "-S", "-aec", AET, "-aem", "TARGET", "-k", "QueryRetrieveLevel=STUDY",
                        "-k", "StudyInstanceUID=1.2.3", "127.0.0.1", str(loaded.dicom_port))
        assert "UnableToProcess" in nothing.stderr
    finally:
        loaded.delete("/modalities/target")


def _study_uid(server: Server, patient_name: str) -> str:
    (study,) = server.post("/tools/find", json={"Level": "Study", "Query": {"PatientName": patient_name}}).json()
    return str(server.get(f"/studies/{study}").json()["MainDicomTags"]["StudyInstanceUID"])


def test_getscu(loaded: Server) -> None:
    folder = Path(tempfile.mkdtemp(prefix="getscu-"))
    try:
        r = dcmtk("getscu", "-S", "-aec", AET, "-od", str(folder), "-k", "QueryRetrieveLevel=STUDY",
                  "-k", "StudyInstanceUID=" + _study_uid(loaded, "BRAINIX"), "127.0.0.1", str(loaded.dicom_port))
        assert r.returncode == 0, r.stderr
        assert len(list(folder.iterdir())) == 44
        none = dcmtk("getscu", "-S", "-aec", AET, "-od", str(folder), "-k", "StudyInstanceUID=1.2.3",
                     "127.0.0.1", str(loaded.dicom_port))
        assert "UnableToProcess" in none.stderr or none.returncode != 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_idle_association_is_closed_after_the_scp_timeout() -> None:
    s = start_donjon({"DicomAet": AET, "DicomScpTimeout": 1})
    try:
        assoc = _associate(s, Verification)
        time.sleep(3)
        assert not assoc.is_established
        assert dcmtk("echoscu", "-aec", AET, "127.0.0.1", str(s.dicom_port)).returncode == 0
    finally:
        s.stop()


def test_asynchronous_c_move_queues_a_job(samples: Any, storescp: tuple[int, Path]) -> None:
    port, folder = storescp
    s = start_donjon({"DicomAet": AET, "SynchronousCMove": False, "DicomAlwaysAllowMove": True,
                      "DicomModalities": {"target": ["TARGET", "127.0.0.1", port]}})
    try:
        s.upload(samples / BRAINIX1)
        uid = pydicom.dcmread(samples / BRAINIX1, stop_before_pixels=True).SOPInstanceUID
        r = dcmtk("movescu", "-S", "-aec", AET, "-aem", "TARGET", "-k", "QueryRetrieveLevel=IMAGE",
                  "-k", f"SOPInstanceUID={uid}", "127.0.0.1", str(s.dicom_port))
        assert r.returncode == 0, r.stderr
        for _ in range(100):
            jobs = s.get("/jobs?expand").json()
            if jobs and jobs[0]["State"] == "Success":
                break
            time.sleep(0.1)
        assert jobs[0]["Type"] == "DicomModalityStore" and jobs[0]["Content"]["Description"] == "C-MOVE"
        assert jobs[0]["Content"]["MoveOriginatorAET"] == "MOVESCU"
        assert len(list(folder.iterdir())) == 1
    finally:
        s.stop()
