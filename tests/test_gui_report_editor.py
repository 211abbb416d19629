"""The sentence-aware report editor on a real QPlainTextEdit: AI sentences tinted until touched,
provenance on hover, edits reported per sentence, the reader's own text kept as its own sentence.
The sentences are the reading's (radassist.feedback.state.SentenceState, plain data, no model needed).
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QPlainTextEdit

from radassist.feedback.reading import reader_sentence_id
from radassist.feedback.state import SentenceState
from radassist.gui.report_editor import ReportSection
from radassist.vocabulary import Section

OPACITY = "Patchy opacity in the right lower zone."
DRAFT = [
    SentenceState("s0", Section.FINDINGS, OPACITY, OPACITY, "opacity", 0.81, "likely", "http://radassist/kg#Opacity"),
    SentenceState("s1", Section.FINDINGS, "No pleural effusion.", "No pleural effusion."),
]


@pytest.fixture()
def section(qtbot):
    edit = QPlainTextEdit()
    qtbot.addWidget(edit)
    edit.show()
    editor = ReportSection(edit, Section.FINDINGS)
    editor.load(DRAFT)
    edits: list[tuple[str, str, str, str]] = []
    editor.sentence_edited.connect(lambda *args: edits.append(args))
    editor.edits = edits
    return editor


def type_at(section: ReportSection, position: int, text: str) -> None:
    cursor = QTextCursor(section.edit.document())
    cursor.setPosition(position)
    section.edit.setTextCursor(cursor)
    section.edit.setFocus()
    QTest.keyClicks(section.edit, text)


def tinted(section: ReportSection, position: int) -> bool:
    cursor = QTextCursor(section.edit.document())
    cursor.setPosition(position + 1)
    return cursor.charFormat().background().style() != Qt.BrushStyle.NoBrush


def test_draft_is_shown_tinted_with_provenance(section):
    assert section.text() == "Patchy opacity in the right lower zone. No pleural effusion."
    assert tinted(section, 0) and section.is_untouched("s0") and section.is_untouched("s1")
    provenance = section.provenance_at(3)
    assert "not yet touched" in provenance and "opacity" in provenance and "p = 0.81" in provenance
    assert "likely" in provenance and "Opacity" in provenance
    assert "Standard wording" in section.provenance_at(len("Patchy opacity in the right lower zone. ") + 2)


def test_typing_in_a_sentence_untints_it_and_reports_one_edit(qtbot, section):
    start, end = section._ranges("s0")[0]
    type_at(section, end - 1, ", unchanged")
    qtbot.waitUntil(lambda: not section.is_untouched("s0"), timeout=3000)
    assert not tinted(section, start) and tinted(section, section._ranges("s1")[0][0])
    section.flush()
    assert section.edits == [("s0", Section.FINDINGS, "Patchy opacity in the right lower zone.",
                              "Patchy opacity in the right lower zone, unchanged.")]
    section.flush()
    assert len(section.edits) == 1, "nothing new, nothing reported"


def test_reader_text_and_deletions(qtbot, section):
    document_end = section.edit.document().characterCount() - 1
    type_at(section, document_end, "Heart size normal.")
    qtbot.waitUntil(lambda: bool(section._ranges(reader_sentence_id(Section.FINDINGS))), timeout=3000)
    start, end = section._ranges("s1")[0]
    cursor = QTextCursor(section.edit.document())
    cursor.setPosition(start)
    cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
    cursor.removeSelectedText()
    section.flush()
    reported = {sid: (before, after) for sid, _, before, after in section.edits}
    assert reported["reader-findings"] == ("", "Heart size normal.")
    assert reported["s1"] == ("No pleural effusion.", "")
    # Shown again from the reading (as after an undo of the deletion): back in its place, tinted, unreported.
    section.load([DRAFT[0], DRAFT[1], SentenceState("reader-findings", Section.FINDINGS, "", "Heart size normal.")])
    assert section.text() == "Patchy opacity in the right lower zone. No pleural effusion. Heart size normal."
    assert section.is_untouched("s1") and tinted(section, section._ranges("s1")[0][0])
    assert not tinted(section, section._ranges("reader-findings")[0][0])
    section.flush()
    assert len(section.edits) == 2


def test_the_editor_keeps_no_undo_of_its_own(qtbot, section):
    type_at(section, 0, "Left ")
    assert not section.edit.document().isUndoAvailable()  # undo is the reading's (the window's actions)


def test_read_only_after_signing(section):
    section.set_read_only(True)
    before = section.text()
    type_at(section, 0, "x")
    assert section.text() == before
