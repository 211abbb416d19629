"""Round trips against a real Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) on loopback.

A real chest DICOM from ../shared/data goes into Orthanc, is found (C-FIND / QIDO-RS), moved to the RadAssist
listener (C-MOVE) or fetched (C-GET / WADO-RS), pre-read, and the SR + overlay come back to Orthanc under the SAME
study (checked through Orthanc's REST API and DICOMweb). Skips only where the Orthanc binary is absent.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pydicom
import pytest
from pacs_support import (
    CHEST_DICOM,
    TEST_SCU_AET,
    chest_copies,
    free_port,
    start_orthanc,
    stop,
    wait_for,
)

from radassist.pacs.config import DicomWebPeer, PacsConfig, Peer, ResultsDestination
from radassist.pacs.listener import Listener
from radassist.pacs.query import StudyQuery, find_studies, get_study, move_study, qido_studies, wado_study
from radassist.pacs.sender import store_to_peer
from radassist.pacs.spool import Spool
from radassist.pacs.worklist import AIStatus, ResultsStatus

pytestmark = pytest.mark.skipif(shutil.which("Orthanc") is None,
                                reason="Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")

LISTENER_AET = "RADASSIST"


@pytest.fixture(scope="module")
def pacs(tmp_path_factory):
    """A running Orthanc that knows the listener (RADASSIST on a free port) and the test SCU (RATEST)."""
    workdir = tmp_path_factory.mktemp("orthanc")
    listener_port = free_port()
    orthanc, process = start_orthanc(workdir, {LISTENER_AET: ("127.0.0.1", listener_port),
                                               TEST_SCU_AET: ("127.0.0.1", free_port())})
    yield orthanc, listener_port
    stop(process)


def _peer(orthanc) -> Peer:
    return Peer(name="orthanc", ae_title=orthanc.ae_title, host="127.0.0.1", port=orthanc.dicom_port)


def _listener(tmp_path: Path, port: int, results: ResultsDestination) -> Listener:
    listener = Listener(PacsConfig(ae_title=LISTENER_AET, port=port, spool=tmp_path / "spool", results=results))
    listener.start()
    return listener


def _series_of(orthanc, study_uid: str) -> dict[str, dict]:
    """Modality -> Orthanc series record, for the study with this Study Instance UID."""
    found = orthanc.post("/tools/lookup", study_uid.encode())
    study_id = next(item["ID"] for item in found if item["Type"] == "Study")
    return {series["MainDicomTags"]["Modality"]: series for series in orthanc.get(f"/studies/{study_id}/series")}


def _sr_references(orthanc, series: dict) -> tuple[pydicom.Dataset, set[str]]:
    instance_id = series["Instances"][0]
    import urllib.request
    from io import BytesIO

    with urllib.request.urlopen(f"{orthanc.url}/instances/{instance_id}/file", timeout=30) as response:
        sr = pydicom.dcmread(BytesIO(response.read()))
    referenced = {item.ReferencedSOPInstanceUID for evidence in sr.CurrentRequestedProcedureEvidenceSequence
                  for series_item in evidence.ReferencedSeriesSequence for item in series_item.ReferencedSOPSequence}
    return sr, referenced


def test_cmove_to_listener_preread_and_sr_back_in_the_same_study(pacs, shared_data, tmp_path):
    orthanc, listener_port = pacs
    original_path = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 1)[0]
    original = pydicom.dcmread(original_path)
    peer = _peer(orthanc)
    store_to_peer(peer, [original_path], TEST_SCU_AET)

    matches = find_studies(peer, StudyQuery(patient_id=str(original.PatientID)), TEST_SCU_AET)
    assert original.StudyInstanceUID in {m.study_instance_uid for m in matches}

    listener = _listener(tmp_path, listener_port, ResultsDestination(peer=peer))
    try:
        assert move_study(peer, original.StudyInstanceUID, LISTENER_AET, TEST_SCU_AET) == 1
        entry = wait_for(lambda: (e := listener.worklist.get(original.SOPInstanceUID)) and
                         e.results_status in (ResultsStatus.SENT, ResultsStatus.FAILED) and e, timeout=120)
    finally:
        listener.stop()
    assert entry.ai_status is AIStatus.READ and entry.priority is not None
    assert entry.results_status is ResultsStatus.SENT, entry.results_error
    assert entry.calling_ae == orthanc.ae_title
    # the spooled copy is the original, byte for byte the dataset Orthanc holds
    assert pydicom.dcmread(entry.spool_path).SOPInstanceUID == original.SOPInstanceUID

    series = _series_of(orthanc, original.StudyInstanceUID)
    assert set(series) == {original.Modality, "SR", "OT", "PR"}, series.keys()  # this film has positive findings
    sr, referenced = _sr_references(orthanc, series["SR"])
    assert sr.StudyInstanceUID == original.StudyInstanceUID
    assert sr.PatientID == original.PatientID and str(sr.PatientName) == str(original.PatientName)
    assert referenced == {original.SOPInstanceUID}
    assert "research use" in series["OT"]["MainDicomTags"]["SeriesDescription"]
    assert "research use" in series["PR"]["MainDicomTags"]["SeriesDescription"]

    # the same study through DICOMweb (QIDO-RS): three series, one of them the SR
    web = DicomWebPeer(name="orthanc-web", url=orthanc.dicomweb_url)
    found = qido_studies(web, StudyQuery(patient_id=str(original.PatientID)))
    assert original.StudyInstanceUID in {m.study_instance_uid for m in found}


def test_stow_rs_results_and_wado_rs_retrieve(pacs, shared_data, tmp_path):
    orthanc, listener_port = pacs
    original_path = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 1)[0]
    original = pydicom.dcmread(original_path)
    web = DicomWebPeer(name="orthanc-web", url=orthanc.dicomweb_url)
    store_to_peer(_peer(orthanc), [original_path], TEST_SCU_AET)

    fetched = wado_study(web, original.StudyInstanceUID, Spool(tmp_path / "viewer-spool"))
    assert [pydicom.dcmread(p).SOPInstanceUID for p in fetched] == [original.SOPInstanceUID]

    listener = _listener(tmp_path, listener_port, ResultsDestination(dicomweb=web, overlay=False))
    try:
        assert move_study(_peer(orthanc), original.StudyInstanceUID, LISTENER_AET, TEST_SCU_AET) == 1
        entry = wait_for(lambda: (e := listener.worklist.get(original.SOPInstanceUID)) and
                         e.results_status in (ResultsStatus.SENT, ResultsStatus.FAILED) and e, timeout=120)
    finally:
        listener.stop()
    assert entry.results_status is ResultsStatus.SENT, entry.results_error
    series = _series_of(orthanc, original.StudyInstanceUID)
    assert set(series) == {original.Modality, "SR"}  # --no-overlay: the SR only
    assert _sr_references(orthanc, series["SR"])[1] == {original.SOPInstanceUID}


def test_cget_writes_the_study_into_the_spool(pacs, shared_data, tmp_path):
    orthanc, _ = pacs
    paths = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 2)
    originals = {pydicom.dcmread(p).SOPInstanceUID for p in paths}
    study_uid = pydicom.dcmread(paths[0]).StudyInstanceUID
    store_to_peer(_peer(orthanc), paths, TEST_SCU_AET)
    fetched = get_study(_peer(orthanc), study_uid, Spool(tmp_path / "spool"), TEST_SCU_AET)
    assert {pydicom.dcmread(p).SOPInstanceUID for p in fetched} == originals


def test_results_that_cannot_be_delivered_are_kept_and_marked_failed(pacs, shared_data, tmp_path):
    """A peer that refuses (Orthanc does not know this AE title): retried, then `failed`, objects kept."""
    orthanc, listener_port = pacs
    original_path = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 1)[0]
    original = pydicom.dcmread(original_path)
    listener = Listener(PacsConfig(ae_title="STRANGER", port=free_port(), spool=tmp_path / "spool",
                                   results=ResultsDestination(peer=_peer(orthanc))))
    listener.sender.delays = (0.05, 0.1)
    listener.start()
    try:
        store_to_peer(replace(_peer(orthanc), ae_title="STRANGER", port=listener.config.port), [original_path],
                      TEST_SCU_AET)
        entry = wait_for(lambda: (e := listener.worklist.get(original.SOPInstanceUID)) and
                         e.results_status is ResultsStatus.FAILED and e, timeout=120)
    finally:
        listener.stop()
    assert entry.results_attempts == 3
    assert "did not accept the association" in entry.results_error
    assert sorted(p.name for p in listener.spool.outbox(original.SOPInstanceUID).glob("*.dcm")) == \
        ["gsps.dcm", "overlay.dcm", "sr.dcm"]
