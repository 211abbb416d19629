"""The desktop viewer's real widgets, offscreen, on real DICOM and PNG radiographs (no AI read here:
tests/test_gui_read.py runs the real model). Readings go to a real SQLite feedback store in the test's
folder, settings to a private RADASSIST_DATA_DIR.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from gui_windows import close_answering_yes
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from radassist.feedback.store import EventStore
from radassist.gui.main_window import MainWindow
from radassist.gui.study_index import StudyIndex

NIH_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"
PNG_SAMPLE = "samples/pediatric_normal.png"
OPEN_TIMEOUT_MS = 30_000


# ----------------------------------------------------------------------------------------- helpers
def grey(widget) -> np.ndarray:
    """What the widget shows, as 8-bit grey (rendered through its real paintEvent)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_Grayscale8)
    array = np.frombuffer(image.constBits(), dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    return array[:, : image.width()].copy()


def image_area(pane) -> tuple[slice, slice]:
    """Rows and columns of the pane that show the radiograph (not the black margins or corner text)."""
    x, y, w, h = pane.view_geometry().covered_rect(pane.view.image.coded.shape)
    return slice(y + 2, y + h - 2), slice(x + 2, x + w - 2)


def send_mouse(widget, kind: QEvent.Type, position: QPointF, button: Qt.MouseButton,
               buttons: Qt.MouseButton) -> None:
    event = QMouseEvent(kind, position, widget.mapToGlobal(position), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget, start: QPointF, end: QPointF, button=Qt.MouseButton.LeftButton, steps: int = 8,
         via: list[QPointF] | None = None) -> None:
    """Press at start, move through `via` (or a straight line) to end, release."""
    send_mouse(widget, QEvent.Type.MouseButtonPress, start, button, button)
    points = via or [start + (end - start) * (i / steps) for i in range(1, steps + 1)]
    for point in points:
        send_mouse(widget, QEvent.Type.MouseMove, point, Qt.MouseButton.NoButton, button)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, end, button, Qt.MouseButton.NoButton)


def centre(widget) -> QPointF:
    return QPointF(widget.width() / 2.0, widget.height() / 2.0)


@pytest.fixture()
def window(qtbot, data_dir):
    win = MainWindow(EventStore(data_dir / "feedback.sqlite"), reader_id="dr-viewer", auto_read=False)
    win.resize(1400, 900)  # not qtbot.addWidget: pytest-qt would close it before an unsigned-reading prompt
    win.show()
    qtbot.waitExposed(win)
    yield win
    for box in win.findChildren(QMessageBox):
        box.close()
    close_answering_yes(win)


def open_and_wait(qtbot, win: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(win.image_shown, timeout=OPEN_TIMEOUT_MS):
        win.open_paths([path])


def dicom_copy(source: Path, target: Path, **attributes) -> Path:
    """A copy of a real DICOM with some header attributes set (the pixels stay as they are)."""
    ds = pydicom.dcmread(source)
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target)
    return target


# ----------------------------------------------------------------------------------------- opening
def test_opens_a_real_dicom_and_shows_it_in_both_panes(qtbot, window, test_data):
    open_and_wait(qtbot, window, test_data / NIH_DICOM)
    plain, saliency = window.viewer.panes()
    area = image_area(plain)
    shown = grey(plain)[area]
    assert shown.shape[0] > 200 and shown.shape[1] > 200
    assert shown.std() > 25, "the radiograph's anatomy should be visible, not a flat field"
    assert np.array_equal(shown, grey(saliency)[area]), "without an AI result both panes show the same picture"
    assert [e.type.value for e in window.store.events(window.reading.session_id)] == ["study_opened"]
    assert "Covid0000" in window.browser.tree.topLevelItem(0).text(0)
    assert window.last_open_ms is not None and window.last_open_ms > 0
    assert window.windowTitle().endswith(Path(NIH_DICOM).name)


def test_right_drag_sets_window_level_on_both_panes(qtbot, window, test_data):
    open_and_wait(qtbot, window, test_data / NIH_DICOM)
    plain, saliency = window.viewer.panes()
    view = window.viewer.view
    area = image_area(plain)
    before_pixels, before = grey(plain)[area], (view.window_center, view.window_width)
    drag(plain, centre(plain), centre(plain) + QPointF(120, 80), button=Qt.MouseButton.RightButton)
    assert view.window_width > before[1] and view.window_center > before[0]  # right = wider, down = higher
    after_pixels = grey(plain)[area]
    assert np.mean(np.abs(after_pixels.astype(int) - before_pixels.astype(int))) > 5
    assert np.array_equal(after_pixels, grey(saliency)[area]), "the other pane follows the same window"


def test_wheel_zoom_and_pan_are_synchronised_and_fit_restores(qtbot, window, test_data):
    open_and_wait(qtbot, window, test_data / NIH_DICOM)
    plain, saliency = window.viewer.panes()
    view = window.viewer.view
    fitted = view.zoom
    wheel = QWheelEvent(centre(plain), plain.mapToGlobal(centre(plain)), QPoint(), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(plain, wheel)
    assert view.zoom == pytest.approx(fitted * 1.44)
    drag(saliency, centre(saliency), centre(saliency) + QPointF(50, 0), button=Qt.MouseButton.MiddleButton)
    assert plain.view_geometry() == saliency.view_geometry()
    area = image_area(plain)
    assert np.array_equal(grey(plain)[area], grey(saliency)[area])
    window.action("actionFit").trigger()
    assert view.zoom == pytest.approx(fitted)
    window.action("actionActualSize").trigger()
    assert view.zoom == pytest.approx(1.0 / plain.devicePixelRatioF())


def test_invert_and_window_presets(qtbot, window, test_data):
    open_and_wait(qtbot, window, test_data / NIH_DICOM)
    plain = window.viewer.plain_pane
    inside = image_area(plain)
    normal = grey(plain)[inside].astype(int)
    window.action("actionInvert").trigger()
    inverted = grey(plain)[inside].astype(int)
    assert np.max(np.abs(normal + inverted - 255)) <= 2
    window.action("actionInvert").trigger()
    presets = window.findChild(type(window.menuBar().actions()[0].menu()), "menuWindowPresets").actions()
    assert [a.shortcut().toString() for a in presets][:2] == ["Ctrl+1", "Ctrl+2"]
    presets[-1].trigger()  # full range
    assert window.viewer.view.preset_name == "full range"
    window.action("actionReset").trigger()
    assert window.viewer.view.preset_name == window.loaded.presets[0].name


def test_ruler_measures_millimetres_from_pixel_spacing(qtbot, window, test_data, tmp_path):
    path = dicom_copy(test_data / NIH_DICOM, tmp_path / "spaced.dcm", PixelSpacing=[0.2, 0.25])
    open_and_wait(qtbot, window, path)
    plain = window.viewer.plain_pane
    window.action("actionRulerTool").trigger()
    start, end = centre(plain), centre(plain) + QPointF(90, 120)
    drag(plain, start, end)
    (measurement,) = window.viewer.annotations.measurements
    a, b = plain.to_image(start), plain.to_image(end)
    expected = float(np.hypot((b.x() - a.x()) * 0.25, (b.y() - a.y()) * 0.2))
    assert measurement.length_mm((0.2, 0.25)) == pytest.approx(expected, rel=1e-6)
    assert measurement.label(window.loaded.radiograph.meta.pixel_spacing_mm) == f"{expected:.1f} mm"
    window.action("actionClearMarks").trigger()
    assert not window.viewer.annotations.measurements


def test_box_and_freehand_regions_are_recorded_and_undoable(qtbot, window, test_data):
    open_and_wait(qtbot, window, test_data / NIH_DICOM)
    plain = window.viewer.plain_pane
    window.action("actionBoxTool").trigger()
    drag(plain, centre(plain), centre(plain) + QPointF(60, 40))
    (box,) = window.reading.state.regions.values()
    assert box.label == "other"  # no finding selected: the region is the reader's own
    geometry = box.geometry
    assert geometry["kind"] == "rectangle" and geometry["x1"] - geometry["x0"] > 10
    window.action("actionFreehandTool").trigger()
    c = centre(plain)
    outline = [c + QPointF(dx, dy) for dx, dy in ((30, 0), (30, 30), (0, 30), (-10, 10))]
    drag(plain, c, outline[-1], via=outline)
    polygon = list(window.reading.state.regions.values())[-1].geometry
    assert polygon["kind"] == "polygon" and len(polygon["points"]) >= 4
    assert len(window.viewer.annotations.regions) == 2

    def last_event() -> str:
        return window.store.events(window.reading.session_id)[-1].type.value

    window.action("actionUndo").trigger()
    assert len(window.viewer.annotations.regions) == 1 and last_event() == "undo"
    window.action("actionRedo").trigger()
    assert len(window.viewer.annotations.regions) == 2 and last_event() == "redo"


def test_a_box_dragged_past_the_edge_is_clipped_to_the_image(qtbot, window, resources):
    open_and_wait(qtbot, window, resources / PNG_SAMPLE)
    window.action("actionFit").trigger()
    plain = window.viewer.plain_pane
    window.action("actionBoxTool").trigger()
    drag(plain, centre(plain), QPointF(-80.0, -80.0))  # past the pane's top-left corner (the mouse is grabbed)
    (region,) = window.reading.state.regions.values()
    rows, columns = window.loaded.radiograph.shape
    geometry = region.geometry
    assert geometry["x0"] == 0.0 and geometry["y0"] == 0.0  # not negative: clipped at the image's corner
    assert 0 < geometry["x1"] <= columns and 0 < geometry["y1"] <= rows
    shown = window.viewer.annotations.regions[0].points
    assert min(p.x() for p in shown) == 0.0 and min(p.y() for p in shown) == 0.0  # drawn as stored


def test_compressed_dicom_decodes_in_a_helper_process_and_shows_a_preview_first(qtbot, window, test_data,
                                                                                tmp_path):
    from pydicom.uid import JPEG2000Lossless

    ds = pydicom.dcmread(test_data / NIH_DICOM)  # 1024 x 1024, recompressed losslessly as JPEG 2000
    ds.compress(JPEG2000Lossless)
    path = tmp_path / "chest_j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    with qtbot.waitSignals([window.preview_shown, window.image_shown], order="strict", timeout=60_000):
        window.open_image(path)
    assert window._decoder._pool is not None, "decoded in the helper process, not on a thread of the viewer"
    assert not window.loaded.is_preview and window.loaded.coded.shape == (1024, 1024)
    assert window.last_open_ms <= window.full_open_ms
    area = image_area(window.viewer.plain_pane)
    assert grey(window.viewer.plain_pane)[area].std() > 25


def test_decoder_helper_is_started_ahead_and_decodes_the_first_compressed_image(qtbot, window, test_data,
                                                                                tmp_path):
    from pydicom.uid import JPEG2000Lossless

    window.start_decoder()  # what run_viewer does once the window is shown
    pool = window._decoder._pool
    assert pool is not None
    qtbot.waitUntil(lambda: any(p.is_alive() for p in pool._processes.values()), timeout=30_000)
    helpers = set(pool._processes)
    ds = pydicom.dcmread(test_data / NIH_DICOM)
    ds.compress(JPEG2000Lossless)
    path = tmp_path / "chest_j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    with qtbot.waitSignal(window.image_shown, timeout=60_000):
        window.open_image(path)
    assert window._decoder._pool is pool and set(pool._processes) == helpers  # no second process was spawned


def test_models_are_loaded_in_the_background_at_start(qtbot, window):
    from radassist.inference import engine

    engine._cache.clear()  # sessions other tests built would make this pass without the warm-up
    window.prepare_read()  # what run_viewer does once the window is shown (with auto-read on)
    qtbot.waitUntil(lambda: not window._jobs, timeout=120_000)
    assert {s.card.data["task"] for s in engine._cache.values()} >= {"classification", "lung_segmentation"}


# ----------------------------------------------------------------------------------------- study browser
def test_dicomdir_folder_is_listed_by_patient_study_series(qtbot, window, test_data, tmp_path):
    from pydicom.fileset import FileSet

    source = dicom_copy(test_data / NIH_DICOM, tmp_path / "src" / "a.dcm", StudyDate="20200102",
                        StudyTime="101500", StudyID="1", SeriesNumber=3, InstanceNumber=7)
    file_set = FileSet()
    file_set.add(source)
    media = tmp_path / "media"
    file_set.write(media)
    index = StudyIndex()
    found = index.add_paths([media])
    assert len(found) == 1 and found[0].parent != source.parent  # the DICOMDIR's copy, not the source
    open_and_wait(qtbot, window, media)
    study = window.browser.tree.topLevelItem(0)
    assert "Covid0000" in study.text(0) and study.text(1) == "2020-01-02"
    series = study.child(0)
    assert series.text(0) == "Series 3 (1)" and series.text(2) == "DX"  # DICOMDIR series records: no description
    assert series.child(0).text(0).startswith("#7")


def test_folder_of_mixed_files_lists_images_and_opens_the_next_one(qtbot, window, test_data, resources, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(test_data / NIH_DICOM, folder / "chest.dcm")
    shutil.copy(resources / PNG_SAMPLE, folder / "child.png")
    (folder / "notes.txt").write_text("not an image")
    open_and_wait(qtbot, window, folder)
    assert sorted(p.name for p in window.browser.images()) == ["chest.dcm", "child.png"]
    first = Path(window.loaded.radiograph.meta.source_path).name
    with qtbot.waitSignal(window.image_shown, timeout=OPEN_TIMEOUT_MS):
        window.action("actionNextImage").trigger()
    second = Path(window.loaded.radiograph.meta.source_path).name
    assert {first, second} == {"chest.dcm", "child.png"}


def test_drag_and_drop_opens_files(qtbot, window, resources):
    """The window's drag handlers, called with real events (Qt dispatches drops only during a real drag)."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(resources / PNG_SAMPLE))])
    enter = QDragEnterEvent(QPoint(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted() and window.acceptDrops()
    drop = QDropEvent(QPointF(200, 200), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.image_shown, timeout=OPEN_TIMEOUT_MS):
        window.dropEvent(drop)
    assert window.loaded.radiograph.name == "pediatric_normal.png"


def test_recent_list_and_window_layout_are_remembered(qtbot, data_dir, resources):
    first = MainWindow(EventStore.scratch(), reader_id="dr-viewer", auto_read=False)
    qtbot.addWidget(first)
    first.show()
    open_and_wait(qtbot, first, resources / PNG_SAMPLE)
    first.action("actionSinglePane").trigger()
    first.viewer.overlay.set_opacity(0.65)
    first.close()
    assert (data_dir / "viewer.ini").is_file()
    second = MainWindow(EventStore.scratch(), reader_id="dr-viewer", auto_read=False)
    qtbot.addWidget(second)
    assert second.viewer.single_pane and second.action("actionSinglePane").isChecked()
    assert second.viewer.overlay.opacity == pytest.approx(0.65)
    assert second.browser.recent.item(0).data(Qt.ItemDataRole.UserRole) == str((resources / PNG_SAMPLE).resolve())


# ----------------------------------------------------------------------------------------- errors and contracts
def test_an_unreadable_file_gives_a_message_and_the_viewer_goes_on(qtbot, window, test_data, tmp_path):
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00abc")
    with qtbot.waitSignal(window.image_failed, timeout=OPEN_TIMEOUT_MS) as failure:
        window.open_image(broken)
    assert "broken.dcm" in failure.args[0]
    message = window.findChild(QMessageBox, "failureMessage")
    assert message is not None and message.isVisible() and "broken.dcm" in message.text()
    open_and_wait(qtbot, window, test_data / NIH_DICOM)  # still usable


def test_an_empty_report_is_not_signed(qtbot, window, resources):
    open_and_wait(qtbot, window, resources / PNG_SAMPLE)
    window.action("actionSignReport").trigger()
    assert "report is empty" in window.panel.status.text()
    events = [e.type.value for e in window.store.events(window.reading.session_id)]
    assert "report_signed" not in events and not window.signed


def test_every_shortcut_is_unique():
    from radassist.gui.app import application

    application()
    win = MainWindow(EventStore.scratch(), reader_id="dr-viewer", auto_read=False)
    shortcuts = [a.shortcut().toString() for a in win.findChildren(type(win.action("actionFit")))
                 if a.objectName().startswith("action") and not a.shortcut().isEmpty()]
    assert len(shortcuts) >= 25
    assert len(shortcuts) == len(set(shortcuts)), sorted(shortcuts)
    win.deleteLater()


@pytest.fixture(scope="session")
def resources(repo_root) -> Path:
    return repo_root / "resources"
