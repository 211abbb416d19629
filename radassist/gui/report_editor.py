"""One section (FINDINGS or IMPRESSION) of the report in a QPlainTextEdit, sentence-aware: a view of
the reading's sentences (radassist.feedback.reading).

Each sentence is inserted with a character format that carries its sentence id, so the text the
radiologist types inside it inherits the id and the sentence can be followed through any edit.
AI sentences are tinted while they still say what the AI drafted (a radiologist must see at a glance
what they have not yet read or changed); hovering a sentence shows where it came from (model output,
probability band, knowledge-graph node). Edits leave as (sentence id, before, after) when the
radiologist pauses, leaves the editor, opens another image, undoes or signs; text typed outside any AI
sentence is the reader's own sentence of that section.

The editor keeps no undo history of its own: Ctrl+Z / Ctrl+Shift+Z go to the window's actions, which
undo through the reading and then show the section again from the reading's state, so a sentence
brought back by undo comes back with its provenance (and its AI tint when it is AI text again).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QTimer, Signal
from PySide6.QtGui import (
    QBrush,
    QHelpEvent,
    QKeyEvent,
    QKeySequence,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import QPlainTextEdit, QToolTip

from radassist.feedback.reading import reader_sentence_id
from radassist.feedback.state import SentenceState
from radassist.gui.theme import AI_TEXT_BACKGROUND
from radassist.vocabulary import Section

SENTENCE_ID = QTextFormat.Property.UserProperty + 1
EDIT_PAUSE_MS = 1500  # an edit is reported after this much typing pause


class ReportSection(QObject):
    sentence_edited = Signal(str, object, str, str)  # sentence id, Section, before, after

    def __init__(self, edit: QPlainTextEdit, section: Section):
        super().__init__(edit)
        self.edit, self.section = edit, Section(section)
        edit.setUndoRedoEnabled(False)  # undo is the reading's (see the module docstring)
        edit.setTabChangesFocus(True)  # Tab moves on to the next control, as everywhere else in the panel
        self._sentences: dict[str, SentenceState] = {}
        self._reported: dict[str, str] = {}  # sentence id -> the text the feedback store last received
        self._touched: set[str] = set()
        self._loading = False
        self._pause = QTimer(self, singleShot=True, interval=EDIT_PAUSE_MS, timeout=self.flush)
        self._restyle = QTimer(self, singleShot=True, interval=0, timeout=self._after_typing)
        edit.document().contentsChange.connect(self._on_change)
        edit.viewport().installEventFilter(self)
        edit.installEventFilter(self)

    # ----- content
    def load(self, sentences: list[SentenceState]) -> None:
        """Show the reading's sentences of this section as they read now; AI sentences that still say
        what the AI drafted are tinted. A deleted sentence is not shown (undo brings it back in place)."""
        self._pause.stop()
        self._loading = True
        try:
            own = reader_sentence_id(self.section)
            self._sentences = {s.sentence_id: s for s in sentences if s.sentence_id != own}
            self._reported = {s.sentence_id: s.text for s in sentences}
            self._reported.setdefault(own, "")
            self._touched = {s.sentence_id for s in sentences if not s.untouched_ai_text}
            self.edit.clear()
            cursor = QTextCursor(self.edit.document())
            shown = [s for s in sentences if s.text]
            for position, sentence in enumerate(shown):
                if position:
                    cursor.insertText(" ", QTextCharFormat())
                fmt = QTextCharFormat()
                fmt.setProperty(SENTENCE_ID, sentence.sentence_id)
                if sentence.untouched_ai_text:
                    fmt.setBackground(AI_TEXT_BACKGROUND)
                cursor.insertText(sentence.text, fmt)
            cursor.insertText(" ", QTextCharFormat())  # typing at the end starts the reader's own text
        finally:
            self._loading = False

    def texts(self) -> dict[str, str]:
        """Current text per sentence id (AI sentences and the reader's own text of this section)."""
        reader = reader_sentence_id(self.section)
        parts: dict[str, list[str]] = {sid: [] for sid in self._sentences}
        parts[reader] = []
        for fragment in self._fragments():
            parts.setdefault(fragment.charFormat().property(SENTENCE_ID) or reader, []).append(fragment.text())
        return {sid: " ".join("".join(chunks).split()) for sid, chunks in parts.items()}

    def text(self) -> str:
        return " ".join(self.edit.toPlainText().split())

    def is_untouched(self, sentence_id: str) -> bool:
        return sentence_id in self._sentences and sentence_id not in self._touched

    def set_read_only(self, read_only: bool) -> None:
        self.edit.setReadOnly(read_only)

    # ----- reporting edits
    def flush(self) -> None:
        """Report every sentence whose text differs from what the store last received."""
        self._pause.stop()
        for sid, now in self.texts().items():
            before = self._reported.get(sid, "")
            if now != before:
                self._reported[sid] = now
                self.sentence_edited.emit(sid, self.section, before, now)

    def _on_change(self, position: int, removed: int, added: int) -> None:
        if not self._loading:  # our own re-tinting runs with _loading set
            self._restyle.start()
            self._pause.start()

    def _after_typing(self) -> None:
        """Claim new free text for the reader's sentence and untint AI sentences that were touched."""
        reader = reader_sentence_id(self.section)
        claims = [(f.position(), f.position() + f.length()) for f in self._fragments()
                  if not f.charFormat().property(SENTENCE_ID) and f.text().strip()]
        current = self.texts()
        newly = {sid for sid, sentence in self._sentences.items()
                 if sid not in self._touched and current.get(sid) != sentence.draft_text}
        self._touched |= newly
        self._loading = True
        try:
            for start, end in claims:
                self._merge(start, end, SENTENCE_ID, reader)
            for sid in newly:
                for start, end in self._ranges(sid):
                    fmt = QTextCharFormat()
                    fmt.setBackground(QBrush())
                    self._merge_format(start, end, fmt)
        finally:
            self._loading = False

    def _merge(self, start: int, end: int, key: int, value) -> None:
        fmt = QTextCharFormat()
        fmt.setProperty(key, value)
        self._merge_format(start, end, fmt)

    def _merge_format(self, start: int, end: int, fmt: QTextCharFormat) -> None:
        cursor = QTextCursor(self.edit.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        cursor.mergeCharFormat(fmt)

    def _fragments(self):
        block = self.edit.document().begin()
        while block.isValid():
            iterator = block.begin()
            while not iterator.atEnd():
                yield iterator.fragment()
                iterator += 1
            block = block.next()

    def _ranges(self, sentence_id: str) -> list[tuple[int, int]]:
        """Document positions of the fragments that belong to `sentence_id`."""
        return [(f.position(), f.position() + f.length()) for f in self._fragments()
                if f.charFormat().property(SENTENCE_ID) == sentence_id]

    # ----- provenance on hover, flush on leaving the editor
    def provenance_at(self, position: int) -> str | None:
        cursor = QTextCursor(self.edit.document())
        cursor.setPosition(min(position + 1, self.edit.document().characterCount() - 1))
        sid = cursor.charFormat().property(SENTENCE_ID)
        sentence = self._sentences.get(sid) if sid else None
        if sentence is None:
            return None
        state = "AI text, not yet touched" if self.is_untouched(sid) else "AI text, edited by you"
        lines = [f"<b>{state}</b>"]
        if sentence.source_label:
            probability = f" p = {sentence.probability:.2f}" if sentence.probability is not None else ""
            band = f", wording '{sentence.band}'" if sentence.band else ""
            lines.append(f"From model output <i>{sentence.source_label}</i>{probability}{band}")
        else:
            lines.append("Standard wording (no model output)")
        if sentence.kg_node:
            lines.append(f"Knowledge-graph node: {sentence.kg_node.rsplit('/', 1)[-1].rsplit('#', 1)[-1]}")
        lines.append(f"Sentence id: {sid}")
        return "<br>".join(lines)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        # Test the event type before touching the editor: during teardown the editor is half destroyed.
        kind = event.type()
        if kind == QEvent.Type.ToolTip and watched is self.edit.viewport():
            help_event: QHelpEvent = event  # type: ignore[assignment]
            text = self.provenance_at(self.edit.cursorForPosition(help_event.pos()).position())
            if text:
                QToolTip.showText(help_event.globalPos(), text, self.edit)
            else:
                QToolTip.hideText()
            return True
        if kind == QEvent.Type.FocusOut and watched is self.edit:
            self.flush()
        if kind == QEvent.Type.ShortcutOverride and watched is self.edit:
            key: QKeyEvent = event  # type: ignore[assignment]
            if key.matches(QKeySequence.StandardKey.Undo) or key.matches(QKeySequence.StandardKey.Redo):
                event.ignore()  # not the editor's: the window's Undo / Redo actions take it
                return True
        return False
