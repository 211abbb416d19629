"""The CTR lines in the real viewer (offscreen Qt): drawn on the image, dragged with the mouse, the
correction recorded in a real SQLite feedback store as a measurement_corrected event, and drawn again from
the reading when the image comes back (next image and back, undo/redo, a new window after a crash)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from gui_windows import close_answering_yes
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from radassist.feedback.events import EventType
from radassist.feedback.store import EventStore
from radassist.gui.main_window import MainWindow
from radassist.imaging.ctr import CardiothoracicRatio, ctr_from_masks
from radassist.imaging.lungs import LEFT_LUNG, RIGHT_LUNG
from radassist.results import MeasurementKind

ANATOMY = Path(__file__).parent / "data" / "anatomy"
FILM = "JPCNN004.png"


def scr_ctr_measurement():
    from PIL import Image

    def mask(organ: str) -> np.ndarray:
        return np.asarray(Image.open(ANATOMY / "masks" / organ / FILM).convert("L")) > 127

    labels = np.zeros((512, 512), dtype=np.uint8)
    labels[mask("right_lung")] = RIGHT_LUNG
    labels[mask("left_lung")] = LEFT_LUNG
    return ctr_from_masks(labels, mask("heart")).as_measurement()


def send(widget, kind: QEvent.Type, position: QPointF, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
    QApplication.sendEvent(widget, QMouseEvent(kind, position, widget.mapToGlobal(position), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))


@pytest.fixture()
def window(qtbot, data_dir):
    win = MainWindow(EventStore(data_dir / "feedback.sqlite"), reader_id="dr-ctr", auto_read=False)
    win.resize(1400, 900)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.image_shown, timeout=30_000):
        win.open_paths([ANATOMY / "images" / FILM])
    yield win
    close_answering_yes(win)  # a correction is reader work: quitting asks first


def drag(pane, start: QPointF, end: QPointF) -> None:
    """A left-button drag in five moves, as a hand does it."""
    send(pane, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    for step in range(1, 6):
        send(pane, QEvent.Type.MouseMove, start + (end - start) * (step / 5), Qt.MouseButton.NoButton,
             Qt.MouseButton.LeftButton)
    send(pane, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)


def test_ctr_lines_are_drawn_dragged_and_the_correction_is_recorded(qtbot, window):
    measurement = scr_ctr_measurement()
    pane = window.viewer.saliency_pane
    before_pixels = pane.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    window.viewer.ctr.show(measurement)
    after_pixels = pane.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert before_pixels != after_pixels  # the lines are painted

    heart_right = window.viewer.ctr.handles()[("heart", "right")]
    start = pane.to_pane(heart_right)
    drag(pane, start, start + QPointF(25, 0))  # widen the heart line by dragging its right end outwards

    corrected = window.viewer.ctr.ctr
    assert corrected.heart.right > int(heart_right.x()) + 5
    assert corrected.thorax == CardiothoracicRatio.from_measurement(measurement).thorax  # untouched
    assert corrected.ratio > measurement.value
    assert window.viewer.annotations.measurements == []  # the drag moved the CTR, it did not draw a ruler
    events = [e for e in window.store.events(window.reading.session_id)
              if e.type is EventType.MEASUREMENT_CORRECTED]
    (event,) = events
    assert event.payload["kind"] == MeasurementKind.CARDIOTHORACIC_RATIO.value
    assert event.payload["before"]["value"] == pytest.approx(measurement.value)
    assert event.payload["after"]["value"] == pytest.approx(corrected.ratio, abs=1e-4)
    assert event.payload["after"]["points"][1][1] == corrected.heart.right


def test_a_press_away_from_the_handles_does_not_move_the_lines(qtbot, window):
    measurement = scr_ctr_measurement()
    window.viewer.ctr.show(measurement)
    pane = window.viewer.saliency_pane
    far = pane.to_pane(QPointF(5.0, 5.0))  # image corner, far from every handle
    send(pane, QEvent.Type.MouseButtonPress, far, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    send(pane, QEvent.Type.MouseMove, far + QPointF(30, 30), Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
    send(pane, QEvent.Type.MouseButtonRelease, far + QPointF(30, 30), Qt.MouseButton.LeftButton,
         Qt.MouseButton.NoButton)
    assert window.viewer.ctr.ctr.as_measurement() == measurement
    assert not [e for e in window.store.events(window.reading.session_id) if e.type is EventType.MEASUREMENT_CORRECTED]


READ_TIMEOUT_MS = 180_000  # a real read on two shared cores


def read_done(qtbot, win: MainWindow, action) -> None:
    with qtbot.waitSignal(win.read_finished, timeout=READ_TIMEOUT_MS) as finished:
        action()
    assert finished.args == [True]


def test_a_corrected_ctr_comes_back_after_the_next_image_undo_and_a_crash(qtbot, data_dir, tmp_path):
    """Real reads (the bundled models) on two JSRT films; the CTR of the first is dragged, then the
    viewer moves on and back, undoes and redoes, and a second window opens the store as after a crash."""
    films = tmp_path / "films"
    films.mkdir()
    for name in (FILM, "JPCLN006.png"):
        shutil.copy(ANATOMY / "images" / name, films / name)
    windows: list[MainWindow] = []

    def new_window() -> MainWindow:
        win = MainWindow(EventStore(data_dir / "feedback.sqlite"), reader_id="dr-ctr")
        win.resize(1400, 900)
        win.show()
        qtbot.waitExposed(win)
        windows.append(win)
        return win

    try:
        win = new_window()
        read_done(qtbot, win, lambda: win.open_paths([films / FILM, films / "JPCLN006.png"]))
        assert win.loaded.radiograph.name == FILM
        ai = win.viewer.ctr.ctr
        assert ai is not None  # the read measured the CTR of this film
        pane = win.viewer.saliency_pane
        start = pane.to_pane(win.viewer.ctr.handles()[("heart", "right")])
        drag(pane, start, start + QPointF(30, 0))
        corrected = win.viewer.ctr.ctr
        assert corrected != ai and corrected.ratio > ai.ratio
        assert win.action("actionUndo").isEnabled()  # the correction is an action of the reading

        # J / K: to the other film of the study list (whichever side the list sorted it to) and back
        away, back = (("actionNextImage", "actionPreviousImage") if win.browser.neighbour(1) is not None
                      else ("actionPreviousImage", "actionNextImage"))
        read_done(qtbot, win, lambda: win.action(away).trigger())
        assert win.loaded.radiograph.name == "JPCLN006.png"
        read_done(qtbot, win, lambda: win.action(back).trigger())
        assert win.loaded.radiograph.name == FILM
        assert win.viewer.ctr.ctr == corrected  # the reader's lines, not the AI's again

        win.action("actionUndo").trigger()
        assert win.viewer.ctr.ctr == ai
        win.action("actionRedo").trigger()
        assert win.viewer.ctr.ctr == corrected

        # The crash path: this window is never closed; a new one opens the store and the film again.
        again = new_window()
        at_open: list = []  # what the new window draws as the image appears, before its read is back
        again.image_shown.connect(lambda _path: at_open.append(again.viewer.ctr.ctr))
        read_done(qtbot, again, lambda: again.open_paths([films / FILM]))
        assert again.reading.session_id == win.reading.session_id
        assert at_open == [corrected]
        assert again.viewer.ctr.ctr == corrected  # and still after the read
    finally:
        for made in windows:
            close_answering_yes(made)
