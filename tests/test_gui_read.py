"""The viewer with the real model: the AI read on a worker thread, findings, overlay, decisions, report
editing and sign-off, recorded in a real SQLite feedback store (radassist.feedback) under a private
RADASSIST_DATA_DIR. Offscreen Qt, real widgets, real DICOM.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QThreadPool
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest

from radassist.gui.ai_panel import COLUMN_ZONE
from radassist.gui.report_editor import SENTENCE_ID
from radassist.inference.engine import load_model

NIH_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
ABDOMEN_SCOUT = "dicom/nhsx_nccid_test_data/sample.dcm"
READ_TIMEOUT_MS = 120_000


def rgb(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    array = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return array[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)


def image_area(pane) -> tuple[slice, slice]:
    x, y, w, h = pane.view_geometry().covered_rect(pane.view.image.coded.shape)
    return slice(y + 2, y + h - 2), slice(x + 2, x + w - 2)


def colourful(pixels: np.ndarray) -> float:
    """Share of clearly coloured pixels (a grey radiograph has none)."""
    return float((pixels.max(axis=2) - pixels.min(axis=2) > 40).mean())


@pytest.fixture()
def read_window(qtbot, make_window, test_data):
    """The viewer after opening a real chest DICOM and running the real model on it."""
    win = make_window()
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as finished:
        win.open_paths([test_data / NIH_DICOM])
    assert finished.args == [True], win.panel.status.text()
    return win


def test_findings_are_shown_before_the_report_and_decisions_wait_for_it(qtbot, make_window, test_data):
    win = make_window()
    seen: dict = {}

    def at_findings() -> None:
        seen["rows"] = win.panel.table.rowCount()
        seen["accept_enabled"] = win.panel.accept_button.isEnabled()
        seen["report"] = win.panel.findings_report.text()
        seen["overlay"] = win.viewer.overlay.current_map() is not None
        seen["finished"] = win.result is not None

    win.findings_shown.connect(at_findings)
    with qtbot.waitSignals([win.findings_shown, win.read_finished], order="strict", timeout=READ_TIMEOUT_MS):
        win.open_paths([test_data / NIH_DICOM])
    assert seen["rows"] == len(win.result.findings) and seen["overlay"]
    assert not seen["accept_enabled"] and seen["report"] == "" and not seen["finished"]
    assert win.panel.accept_button.isEnabled() and win.panel.findings_report.text()
    assert 0 < win.first_result_ms


def test_read_shows_findings_overlay_and_draft_report(qtbot, read_window):
    win, result = read_window, read_window.result
    panel, state = win.panel, read_window.reading.state
    assert result.findings and result.saliency and result.report is not None
    assert panel.table.rowCount() == len(result.findings)
    assert any(f.zone for f in result.findings) and any(not f.zone for f in result.findings)
    for row, finding in enumerate(result.findings):
        assert finding.display_name in panel.table.item(row, 0).text()
        assert panel.table.item(row, 1).text().startswith(f"{finding.probability:.2f}")
        zone_cell = panel.table.item(row, COLUMN_ZONE)  # the zone, or "—" with the reason in its tooltip
        assert zone_cell.text() == (finding.zone or "—")
        assert (f"Zone: {finding.zone}" if finding.zone else "no side is named") in zone_cell.toolTip()
    assert panel.overlay_combo.count() == len(result.saliency)
    assert state.model_id == result.model_id and set(state.findings) == {f.label for f in result.findings}
    assert panel.findings_report.text() == " ".join(result.report.section_text("FINDINGS").split())
    assert panel.impression_report.text() == " ".join(result.report.section_text("IMPRESSION").split())

    plain, saliency = win.viewer.panes()
    area = image_area(plain)
    win.viewer.ctr.show(None)  # the cardiothoracic ratio lines are coloured too (tests/test_ctr_overlay.py)
    assert colourful(rgb(plain)[area]) == 0.0
    assert colourful(rgb(saliency)[area]) > 0.005, "the saliency overlay is drawn"
    QTest.keyClick(win, Qt.Key.Key_O)  # overlay off
    assert not win.viewer.overlay.visible and colourful(rgb(saliency)[area]) == 0.0
    QTest.keyClick(win, Qt.Key.Key_O)
    assert colourful(rgb(saliency)[area]) > 0.005
    first = win.viewer.overlay.label
    # a finding in the lungs shows the anatomy model's lesion output, one outside them (the heart) the
    # classifier's CAM: selecting a finding of the other kind redraws the overlay with its map
    in_lungs = {label.id for label in load_model("classifier").card.labels if label.restrict_to_lungs}
    other_row = next(r for r, f in enumerate(result.findings) if (f.label in in_lungs) != (first in in_lungs))
    before = rgb(saliency)[area]
    panel.table.selectRow(other_row)
    assert win.viewer.overlay.label == result.findings[other_row].label
    assert np.abs(rgb(saliency)[area] - before).mean() > 0.05, "the overlay follows the selected finding"
    panel.opacity_slider.setValue(0)
    assert colourful(rgb(saliency)[area]) == 0.0
    QTest.keyClick(win, Qt.Key.Key_T)  # single pane: the plain pane goes
    assert win.viewer.single_pane and saliency.isVisible()


def test_keyboard_decisions_are_recorded_and_undoable(qtbot, read_window):
    win = read_window
    panel, reading = win.panel, win.reading
    findings = win.result.findings[:3]
    panel.table.selectRow(0)
    win.viewer.plain_pane.setFocus()
    for key in (Qt.Key.Key_A, Qt.Key.Key_R, Qt.Key.Key_U)[: len(findings)]:
        QTest.keyClick(win, key)
    # A agrees with the AI's call, R disagrees with it, U is uncertain
    agreed, disagreed, uncertain = findings
    expected = {agreed.label: "present" if agreed.positive else "absent",
                disagreed.label: "absent" if disagreed.positive else "present",
                uncertain.label: "uncertain"}
    assert {label: reading.state.findings[label].decision for label in expected} == expected
    assert panel.table.item(0, 3).text() == f"✓ agree: {expected[findings[0].label]}"
    assert panel.table.item(1, 3).text().startswith("✗ disagree")
    last = findings[-1].label
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert reading.state.findings[last].decision is None
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert reading.state.findings[last].decision == expected[last]
    QTest.keyClick(win, Qt.Key.Key_J)
    QTest.keyClick(win, Qt.Key.Key_K)
    assert panel.selected_label() is not None


def test_regions_and_added_findings_are_recorded_for_the_selected_finding(qtbot, read_window):
    win = read_window
    reading, panel = win.reading, win.panel
    label = win.result.findings[-1].label
    panel.select_label(label)
    plain = win.viewer.plain_pane
    QTest.keyClick(win, Qt.Key.Key_B)  # box tool
    centre = QPointF(plain.width() / 2, plain.height() / 2)
    QTest.mousePress(plain, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    QTest.mouseMove(plain, (centre + QPointF(40, 30)).toPoint())
    QTest.mouseRelease(plain, Qt.MouseButton.LeftButton, pos=(centre + QPointF(40, 30)).toPoint())
    (region,) = reading.state.regions.values()
    assert region.label == label and region.geometry["kind"] == "rectangle"
    win.add_finding("Rib fracture")
    added = reading.state.findings["rib_fracture"]
    assert added.added_by_reader and added.decision == "present"
    assert panel.table.item(panel.table.rowCount() - 1, 0).text() == "Rib fracture"
    QTest.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "rib_fracture" not in reading.state.findings and panel.finding("rib_fracture") is None


def test_report_edits_are_marked_recorded_and_signed(qtbot, read_window):
    win = read_window
    section = win.panel.findings_report
    edit = section.edit
    ai_ids = [sid for sid in section.texts() if section.is_untouched(sid)]
    assert ai_ids, "the draft report has AI sentences"
    sentence_id = ai_ids[0]
    start, end = section._ranges(sentence_id)[0]
    tooltip = section.provenance_at(start)
    assert "not yet touched" in tooltip and sentence_id in tooltip
    cursor = QTextCursor(edit.document())
    cursor.setPosition(end - 1)  # before the sentence's final full stop
    edit.setTextCursor(cursor)
    edit.setFocus()
    QTest.keyClicks(edit, ", reviewed")
    qtbot.waitUntil(lambda: not section.is_untouched(sentence_id), timeout=5000)
    fragment_format = QTextCursor(edit.document())
    fragment_format.setPosition(start + 1)
    assert fragment_format.charFormat().property(SENTENCE_ID) == sentence_id
    assert fragment_format.charFormat().background().style() == Qt.BrushStyle.NoBrush  # no longer tinted
    assert "edited by you" in section.provenance_at(start)
    win.viewer.plain_pane.setFocus()  # leaving the editor reports the edit
    qtbot.waitUntil(lambda: ", reviewed" in win.reading.state.sentences[sentence_id].text, timeout=5000)
    for label in win.reading.state.undecided_ai_calls():  # flagged findings are decided before signing
        win.reading.agree(label)
    QTest.keyClick(win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    state = win.reading.state
    assert state.signed and ", reviewed" in state.signed_text and not state.signed_ai_draft_unchanged
    assert edit.isReadOnly() and not win.panel.accept_button.isEnabled()


def test_cancel_drops_the_read_and_the_window_stays_responsive(qtbot, make_window, test_data):
    win = make_window()
    with qtbot.waitSignal(win.image_shown, timeout=READ_TIMEOUT_MS):
        win.open_paths([test_data / NIH_DICOM])
    with qtbot.waitSignal(win.read_finished, timeout=5000) as finished:
        QTest.keyClick(win, Qt.Key.Key_Escape)
    assert finished.args == [False] and "cancelled" in win.panel.status.text()
    QThreadPool.globalInstance().waitForDone(READ_TIMEOUT_MS)  # let the abandoned read end ...
    qtbot.wait(50)
    assert win.result is None and win.panel.table.rowCount() == 0  # ... its result is not shown
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as again:
        QTest.keyClick(win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    assert again.args == [True] and win.panel.table.rowCount() > 0


def test_a_non_chest_image_is_refused_with_a_reason(qtbot, make_window, test_data):
    win = make_window()
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as finished:
        win.open_paths([test_data / ABDOMEN_SCOUT])
    assert finished.args == [False]
    assert win.panel.status.text().startswith("Not read:") and len(win.panel.status.text()) > 20
    assert win.panel.table.rowCount() == 0 and win.viewer.overlay.current_map() is None
    plain = win.viewer.plain_pane
    drag_to = QPointF(plain.width() / 2 + 40, plain.height() / 2)
    QTest.mouseClick(plain, Qt.MouseButton.LeftButton, pos=drag_to.toPoint())  # still interactive


def test_a_missing_model_is_a_readable_message(qtbot, make_window, test_data, tmp_path, monkeypatch):
    monkeypatch.setenv("RADASSIST_MODELS_DIR", str(tmp_path / "no-models"))  # an installation without models
    win = make_window()
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as finished:
        win.open_paths([test_data / NIH_DICOM])
    assert finished.args == [False]
    assert "card" in win.panel.status.text() and "missing" in win.panel.status.text()
    assert "please report" not in win.panel.status.text()  # a ModelError, not an unexpected failure
    assert win.panel.run_button.isEnabled()
