"""The viewer's PACS source on real widgets: the worklist a real listener filled (real C-STOREs, real pre-reads),
sorted by AI priority with status icons; opening from it; query and retrieve against a real Orthanc."""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import replace
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pacs_support import (
    CHEST_DICOM,
    TEST_SCU_AET,
    chest_copies,
    free_port,
    png_as_dicom,
    start_orthanc,
    stop,
    wait_for,
)
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow

from radassist.gui.pacs_browser import WORKLIST_COLUMNS, PacsBrowser, install_pacs_dock
from radassist.pacs.config import PacsConfig, Peer, ResultsDestination
from radassist.pacs.listener import Listener
from radassist.pacs.sender import store_to_peer
from radassist.pacs.worklist import AIStatus, ReadingStatus

NON_CHEST_DICOM = "dicom/nhsx_nccid_test_data/sample.dcm"


@pytest.fixture(scope="module")
def filled_spool(shared_data, tmp_path_factory):
    """A listener spool after real C-STOREs of: the NIH chest DICOM, a pediatric normal and a pediatric
    pneumonia radiograph (PNG -> DICOM), and an abdomen scout the AI must refuse."""
    folder = tmp_path_factory.mktemp("pacs-gui")
    labels = (shared_data / "pediatric_pneumonia" / "labels.csv").read_text().splitlines()[1:]
    normal = next(line.split(",")[0] for line in labels if ",NORMAL," in line)
    pneumonia = next(line.split(",")[0] for line in labels if ",PNEUMONIA," in line)
    files = [chest_copies(shared_data / CHEST_DICOM, folder / "src", 1)[0], shared_data / NON_CHEST_DICOM]
    for index, png in enumerate((normal, pneumonia)):
        files.append(png_as_dicom(shared_data / "pediatric_pneumonia" / png, folder / f"peds{index}.dcm",
                                  patient_name=f"TEST^PEDIATRIC{index}", patient_id=f"TEST{index}",
                                  accession=f"ACC{index}", study_date="20260102"))
    config = PacsConfig(port=free_port(), spool=folder / "spool")
    listener = Listener(config)
    listener.start()
    try:
        store_to_peer(Peer("self", config.ae_title, "127.0.0.1", config.port), files, TEST_SCU_AET)
        assert listener.prereader.wait_idle(180)
    finally:
        listener.stop()
    return config, listener.worklist


def _rows(browser: PacsBrowser) -> list[list[str]]:
    tree = browser.worklist_tree
    return [[tree.topLevelItem(i).text(c) for c in range(len(WORKLIST_COLUMNS))] for i in range(tree.topLevelItemCount())]


def test_worklist_is_sorted_by_ai_priority_with_status_icons(qtbot, filled_spool):
    config, worklist = filled_spool
    browser = PacsBrowser(config)
    qtbot.addWidget(browser)
    entries = worklist.entries()
    assert len(entries) == 4
    rows = _rows(browser)
    assert len(rows) == 4
    read = [e for e in entries if e.ai_status is AIStatus.READ]
    assert len(read) == 3
    # flagged studies first, then by priority; the refused scout last
    expected_order = sorted(read, key=lambda e: (not e.flagged, -e.priority))
    assert [row[1] for row in rows[:3]] == [f"{e.priority:.0%}" for e in expected_order]
    assert [row[3] for row in rows[:3]] == [
        (e.lead_finding or e.priority_label).replace("_", " ") if e.lead_finding or e.flagged else "none flagged"
        for e in expected_order]
    tree = browser.worklist_tree
    tooltips = [tree.topLevelItem(i).toolTip(0) for i in range(4)]
    assert tooltips[3] == "AI refused the image (input QA)" and rows[3][1] == "" and rows[3][3] == "refused"
    assert tree.topLevelItem(3).toolTip(3) == entries[3].ai_reason != ""
    for entry, tooltip in zip(expected_order, tooltips, strict=False):
        assert ("likely abnormal" in tooltip) == entry.flagged
    assert all(not tree.topLevelItem(i).icon(0).isNull() for i in range(4))
    # patient fields come from the spooled headers (the worklist database has none)
    assert {"TEST^PEDIATRIC0", "TEST^PEDIATRIC1"} <= {row[2] for row in rows}
    assert browser.status.text().startswith("4 image(s):") and "0 waiting" in browser.status.text()


def test_opening_from_the_worklist_marks_it_opened(qtbot, filled_spool):
    config, worklist = filled_spool
    browser = PacsBrowser(config)
    qtbot.addWidget(browser)
    item = browser.worklist_tree.topLevelItem(0)
    with qtbot.waitSignal(browser.open_requested, timeout=5000) as opened:
        browser.worklist_tree.itemActivated.emit(item, 0)
    path = opened.args[0]
    assert pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID == worklist.entries()[0].sop_instance_uid
    assert worklist.get(worklist.entries()[0].sop_instance_uid).reading_status is ReadingStatus.OPENED
    browser.refresh()
    assert _rows(browser)[0][7] == "● opened"


def test_dock_is_tabbed_with_the_study_browser_and_opens_through_the_window(qtbot, filled_spool):
    config, _ = filled_spool
    window = QMainWindow()
    qtbot.addWidget(window)
    study = QDockWidget("Studies", window)
    study.setObjectName("studyDock")
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, study)
    opened = []
    window.open_paths = opened.extend  # what MainWindow.open_paths receives
    browser = install_pacs_dock(window, config)
    assert window.tabifiedDockWidgets(study) == [window.findChild(QDockWidget, "pacsDock")]
    browser.worklist_tree.itemActivated.emit(browser.worklist_tree.topLevelItem(1), 0)
    assert len(opened) == 1 and opened[0].endswith(".dcm")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    if shutil.which("Orthanc") is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)")
    server, process = start_orthanc(tmp_path_factory.mktemp("orthanc"), {
        "RADASSIST": ("127.0.0.1", free_port()), TEST_SCU_AET: ("127.0.0.1", free_port())})
    yield server
    stop(process)


def test_query_and_retrieve_from_orthanc(qtbot, orthanc, shared_data, tmp_path):
    source = chest_copies(shared_data / CHEST_DICOM, tmp_path / "src", 1)[0]
    original = pydicom.dcmread(source)
    peer = Peer("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)
    store_to_peer(peer, [source], TEST_SCU_AET)
    config = PacsConfig(spool=tmp_path / "spool", peers=(peer,))
    browser = PacsBrowser(config)
    qtbot.addWidget(browser)
    browser.patient_id.setText(str(original.PatientID))
    browser.search_button.click()
    wait_for(lambda: (qtbot.wait(50), browser.results_tree.topLevelItemCount())[1] > 0, timeout=30)
    uids = [browser.results_tree.topLevelItem(i).data(0, Qt.ItemDataRole.UserRole + 1)
            for i in range(browser.results_tree.topLevelItemCount())]
    assert original.StudyInstanceUID in uids
    browser.results_tree.setCurrentItem(browser.results_tree.topLevelItem(uids.index(original.StudyInstanceUID)))
    with qtbot.waitSignal(browser.open_requested, timeout=30000) as opened:
        browser.retrieve_button.click()
    assert pydicom.dcmread(opened.args[0]).SOPInstanceUID == original.SOPInstanceUID


def test_signed_reading_goes_back_as_a_final_sr(qtbot, orthanc, filled_spool, tmp_path):
    """The radiologist's signed reading of a worklist image: a final SR with the reader as observer, filed in
    the original study on Orthanc; the worklist row says signed."""
    config, worklist = filled_spool
    entry = next(e for e in worklist.entries() if e.ai_status is AIStatus.READ)
    peer = Peer("orthanc", "RADASSIST", "127.0.0.1", orthanc.dicom_port)
    config = replace(config, ae_title="RADASSIST", results=ResultsDestination(peer=replace(peer, ae_title="ORTHANC")))
    original = pydicom.dcmread(entry.spool_path)
    store_to_peer(replace(peer, ae_title="ORTHANC"), [Path(entry.spool_path)], TEST_SCU_AET)
    state = signed_state(entry.priority_label)
    browser = PacsBrowser(config, current_reading=lambda: (entry.spool_path, state, "Reader^Test"))
    qtbot.addWidget(browser)
    assert browser.send_button.isEnabled()
    browser.send_button.click()
    qtbot.waitUntil(lambda: browser.status.text() == "Signed reading sent to PACS.", timeout=30000)
    assert worklist.get(entry.sop_instance_uid).reading_status is ReadingStatus.SIGNED

    found = orthanc.post("/tools/lookup", original.StudyInstanceUID.encode())
    study_id = next(item["ID"] for item in found if item["Type"] == "Study")
    series = [s for s in orthanc.get(f"/studies/{study_id}/series") if s["MainDicomTags"]["Modality"] == "SR"]
    assert len(series) == 1
    with urllib.request.urlopen(f"{orthanc.url}/instances/{series[0]['Instances'][0]}/file", timeout=30) as answer:
        sr = pydicom.dcmread(BytesIO(answer.read()))
    assert sr.StudyInstanceUID == original.StudyInstanceUID and sr.PreliminaryFlag == "FINAL"
    assert "Reader^Test" in str(sr.ContentSequence[1:4])  # the person observer


def signed_state(label: str):
    from radassist.feedback.state import FindingState, SessionState

    state = SessionState(session_id="reading-1", reader_id="Reader^Test", model_id="radassist-cxr-classifier",
                         model_sha256="0" * 64, signed_text="FINDINGS: opacity.\n\nIMPRESSION: pneumonia.\n",
                         signed_utc="2026-12-06T00:00:00+00:00")
    state.findings[label] = FindingState(label, label, ai_probability=0.9, ai_threshold=0.5, ai_positive=True,
                                         decision="present")
    return state
