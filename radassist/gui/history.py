"""Undo/redo for the radiologist's recorded actions, kept in step with the feedback store.

The store's rule is the editor rule: undo takes back the newest action, redo re-applies the newest
undone one, a new action forgets the undone ones. QUndoStack follows the same rule, so pushing exactly
the recorded actions (decisions, added findings, regions, report edits) keeps the two stacks equal:
the first redo() records the action; later undo()/redo() replay it on screen and record an undo/redo.
An action the store refuses is taken back off the screen and dropped from the stack, so the screen
never shows a decision the store does not have.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from radassist.gui.events import EventSink


class RecordedAction(QUndoCommand):
    def __init__(self, text: str, sink: EventSink, *, record: Callable[[], None], apply: Callable[[], None],
                 revert: Callable[[], None], applied: bool = False, guard: Callable[[Callable[[], None]], bool]):
        """`applied`: the screen already shows the action (typed text, a drawn region).
        `guard` runs a sink call and turns a refusal into a message instead of an exception."""
        super().__init__(text)
        self._sink, self._record, self._apply, self._revert = sink, record, apply, revert
        self._skip_apply = applied
        self._recorded = False
        self._guard = guard

    def redo(self) -> None:
        if not self._skip_apply:
            self._apply()
        self._skip_apply = False
        if self._recorded:
            self._guard(self._sink.redo)
        elif self._guard(self._record):
            self._recorded = True
        else:
            self._revert()
            self.setObsolete(True)  # QUndoStack.push drops it

    def undo(self) -> None:
        self._revert()
        self._guard(self._sink.undo)
