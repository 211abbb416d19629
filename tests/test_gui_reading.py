"""The viewer as a view of the reading (issue 17): real main window (offscreen), the real model on the
bundled samples, a real SQLite store. Moving between images, quitting and reopening come back to the
same reading; signing follows the rules; undo brings AI text back with its provenance; the keyboard
reaches every control.
"""

from __future__ import annotations

import shutil

import pytest
from gui_windows import answer
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QTableWidget

from radassist.gui.main_window import MainWindow
from radassist.paths import resources_dir
from radassist.vocabulary import Section

READ_TIMEOUT_MS = 180_000
PNEUMONIA = "pediatric_viral_pneumonia.png"
NORMAL = "pediatric_normal.png"


@pytest.fixture()
def samples(tmp_path):
    """The two pediatric samples in a folder of their own (the study list shows exactly them)."""
    folder = tmp_path / "worklist"
    folder.mkdir()
    for name in (PNEUMONIA, NORMAL):
        shutil.copy(resources_dir() / "samples" / name, folder / name)
    return folder


def read(qtbot, win: MainWindow, action) -> None:
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as finished:
        action()
    assert finished.args == [True], win.panel.status.text()


def events(win: MainWindow) -> list[str]:
    return [e.type.value for e in win.store.events(win.reading.session_id)]


def decision_column(win: MainWindow) -> list[str]:
    return [win.panel.table.item(row, 3).text() for row in range(win.panel.table.rowCount())]


def type_into(edit, position: int, text: str) -> None:
    cursor = QTextCursor(edit.document())
    cursor.setPosition(position)
    edit.setTextCursor(cursor)
    edit.setFocus()
    QTest.keyClicks(edit, text)


def test_moving_between_images_and_quitting_keep_the_reading(qtbot, make_window, samples):
    win = make_window()
    read(qtbot, win, lambda: win.open_paths([samples]))
    first = win.loaded.radiograph.name
    win.panel.table.selectRow(0)
    win.viewer.plain_pane.setFocus()
    QTest.keyClick(win, Qt.Key.Key_A)
    QTest.keyClick(win, Qt.Key.Key_B)  # box tool
    plain = win.viewer.plain_pane
    centre = QPointF(plain.width() / 2, plain.height() / 2)
    QTest.mousePress(plain, Qt.MouseButton.LeftButton, pos=centre.toPoint())
    QTest.mouseMove(plain, (centre + QPointF(50, 40)).toPoint())
    QTest.mouseRelease(plain, Qt.MouseButton.LeftButton, pos=(centre + QPointF(50, 40)).toPoint())
    findings_edit = win.panel.findings_report.edit
    type_into(findings_edit, findings_edit.document().characterCount() - 1, "Heart size normal.")
    win.viewer.plain_pane.setFocus()  # leaving the editor records the edit
    left = (decision_column(win), win.panel.findings_report.text(), win.reading.state.regions)
    assert "Heart size normal." in left[1] and len(left[2]) == 1 and left[0][0].startswith("✓ agree")

    read(qtbot, win, lambda: QTest.keyClick(win, Qt.Key.Key_PageDown))  # the next image ...
    assert win.loaded.radiograph.name != first and win.panel.findings_report.text() != left[1]
    statuses = {win.browser.tree.topLevelItem(0).child(0).child(i).text(0):
                win.browser.tree.topLevelItem(0).child(0).child(i).text(1) for i in range(2)}
    assert statuses[first] == "● read"
    read(qtbot, win, lambda: QTest.keyClick(win, Qt.Key.Key_PageUp))  # ... and back
    assert win.loaded.radiograph.name == first
    assert (decision_column(win), win.panel.findings_report.text(), win.reading.state.regions) == left
    assert len(win.viewer.annotations.regions) == 1

    asked: list[str] = []
    answer(win, "confirmQuitUnsigned", QMessageBox.StandardButton.Cancel, asked)
    win.close()
    assert asked and "not signed" in asked[0] and win.isVisible()  # Cancel: still reading
    answer(win, "confirmQuitUnsigned", QMessageBox.StandardButton.Yes)
    win.close()
    assert not win.isVisible()

    again = make_window()  # the viewer started again
    read(qtbot, again, lambda: again.open_paths([samples / first]))
    assert (decision_column(again), again.panel.findings_report.text(), again.reading.state.regions) == left


def test_signing_rules_in_the_viewer(qtbot, make_window, samples):
    win = make_window()
    read(qtbot, win, lambda: win.open_paths([samples / PNEUMONIA]))
    undecided = win.reading.state.undecided_ai_calls()
    assert undecided, "the AI flags the pneumonia sample"
    asked: list[str] = []
    answer(win, "confirmUnchangedDraft", QMessageBox.StandardButton.Cancel, asked)
    QTest.keyClick(win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert asked and not win.signed and "report_signed" not in events(win)
    assert "Not signed" in win.panel.status.text()

    answer(win, "confirmUnchangedDraft", QMessageBox.StandardButton.Yes)
    win.action("actionSignReport").trigger()  # Ctrl+Enter's action (offscreen, the key goes astray after a modal box)
    assert win.signed and win.reading.state.signed_ai_draft_unchanged, (
        win.panel.status.text(), [b.text() for b in win.findChildren(QMessageBox)])
    QTest.keyClick(win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # a second signature: nothing
    assert events(win).count("report_signed") == 1
    session = win.reading.session_id
    win.close()

    again = make_window()
    read(qtbot, again, lambda: again.open_paths([samples / PNEUMONIA]))
    assert again.reading.session_id == session and again.signed
    assert again.windowTitle().endswith("(signed)") and not again.panel.accept_button.isEnabled()
    assert again.panel.findings_report.edit.isReadOnly()
    item = again.browser.tree.topLevelItem(0).child(0).child(0)
    assert item.text(1) == "✓ signed"
    again.panel.table.selectRow(0)
    QTest.keyClick(again, Qt.Key.Key_A)
    QTest.keyClick(again, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert events(again).count("report_signed") == 1 and events(again)[-1] == "report_signed"


def test_undo_of_a_text_edit_brings_the_ai_sentence_back_with_its_tint(qtbot, make_window, samples):
    win = make_window()
    read(qtbot, win, lambda: win.open_paths([samples / NORMAL]))
    section = win.panel.findings_report
    sentence = next(s for s in win.reading.state.sentences.values()
                    if s.section is Section.FINDINGS and s.untouched_ai_text)
    start, end = section._ranges(sentence.sentence_id)[0]
    cursor = QTextCursor(section.edit.document())
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    section.edit.setTextCursor(cursor)
    section.edit.setFocus()
    QTest.keyClicks(section.edit, "B.")
    win.viewer.plain_pane.setFocus()
    assert win.reading.state.sentences[sentence.sentence_id].text == "B."

    section.edit.setFocus()  # Ctrl+Z in the editor is the reading's undo, not the editor's own
    QTest.keyClick(section.edit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.reading.state.sentences[sentence.sentence_id].text == sentence.draft_text
    assert section.text().startswith(sentence.draft_text) or sentence.draft_text in section.text()
    assert section.is_untouched(sentence.sentence_id)
    start, _ = section._ranges(sentence.sentence_id)[0]
    tinted = QTextCursor(section.edit.document())
    tinted.setPosition(start + 1)
    assert tinted.charFormat().background().style() != Qt.BrushStyle.NoBrush  # the AI tint is back
    assert "not yet touched" in section.provenance_at(start)

    QTest.keyClick(section.edit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert win.reading.state.sentences[sentence.sentence_id].text == "B." and "B." in section.text()


def test_tab_leaves_the_findings_table_and_e_reaches_the_report(qtbot, make_window, samples):
    win = make_window()
    read(qtbot, win, lambda: win.open_paths([samples / NORMAL]))
    table = win.panel.table
    table.setFocus()
    table.selectRow(0)
    QTest.keyClick(table, Qt.Key.Key_Tab)
    assert not isinstance(QApplication.focusWidget(), QTableWidget)
    win.viewer.plain_pane.setFocus()
    QTest.keyClick(win, Qt.Key.Key_E)
    assert QApplication.focusWidget() is win.panel.findings_report.edit
    before = win.panel.findings_report.edit.toPlainText()
    QTest.keyClick(win.panel.findings_report.edit, Qt.Key.Key_Tab)  # Tab moves on; it types nothing
    assert QApplication.focusWidget() is not win.panel.findings_report.edit
    assert win.panel.findings_report.edit.toPlainText() == before
    assert win.panel.accept_button.text().startswith("Agree") and win.panel.reject_button.text().startswith("Disagree")
