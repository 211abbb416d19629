"""Answering the viewer's question boxes in GUI tests (the `make_window` fixture in conftest.py uses them)."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QMessageBox

from radassist.gui.main_window import MainWindow


def close_answering_yes(win: MainWindow) -> None:
    """Close the window; if it asks about an unsigned reading, quit anyway (the draft is kept)."""
    if win.isVisible() and win.reading is not None and not win.signed and win.reading.state.has_reader_work:
        answer(win, "confirmQuitUnsigned", QMessageBox.StandardButton.Yes)
    win.close()


def answer(win: MainWindow, name: str, button: QMessageBox.StandardButton, seen: list | None = None,
           tries: int = 500) -> None:
    """Click `button` of the window's question box `name` as soon as it is open (it runs its own loop);
    gives up after `tries` looks 20 ms apart."""
    def click(left: int = tries) -> None:
        box = next((b for b in win.findChildren(QMessageBox, name) if b.isVisible()), None)
        if box is None:
            if left:
                QTimer.singleShot(20, lambda: click(left - 1))
            return
        if seen is not None:
            seen.append(box.text())
        box.button(button).click()

    QTimer.singleShot(0, click)
