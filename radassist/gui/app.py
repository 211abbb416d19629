"""Starting the Qt application: platform choice, HiDPI, theme, and the run-until-read mode for screenshots.

With no display (no DISPLAY / WAYLAND_DISPLAY on Linux) and no QT_QPA_PLATFORM, Qt would abort; the
viewer then renders offscreen instead, which is what `radassist demo` on a headless machine and the
screenshot mode need.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication

from radassist.errors import RadAssistError
from radassist.feedback.store import EventStore
from radassist.gui.main_window import MainWindow
from radassist.gui.theme import apply_dark_theme
from radassist.pacs.config import PacsConfig
from radassist.paths import resources_dir

SCREENSHOT_SIZE = (1600, 1000)
SCREENSHOT_TIMEOUT_S = 180.0


def headless() -> bool:
    """True when Qt has no display to open a window on and no platform was chosen."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return False
    if sys.platform.startswith("linux"):
        return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return False


def application(*, offscreen: bool = False) -> QApplication:
    """The one QApplication (created on first use) with the dark theme."""
    existing = QApplication.instance()
    if existing is not None:
        return existing  # type: ignore[return-value]
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    QCoreApplication.setApplicationName("RadAssist")
    app = QApplication(sys.argv[:1])
    app.setWindowIcon(QIcon(str(resources_dir() / "icons" / "app.svg")))
    apply_dark_theme(app)
    return app


NOT_RECORDED_READER = "not-recorded"


def run_viewer(paths: list[str], *, record: bool = True, store: str | None = None, reader: str | None = None,
               screenshot: str | None = None, auto_read: bool = True, pacs: PacsConfig | None = None) -> int:
    """Open the viewer on `paths`. With `screenshot`: wait for the read, save the window, exit.

    Readings go to the feedback store (`store`, default the user's), by `reader` (asked when the first
    image opens if None). Without `record`, and for a screenshot, they go to a scratch store that is
    deleted on exit, so nothing is asked and nothing is kept."""
    offscreen = headless()
    app = application(offscreen=offscreen)
    if record and screenshot is None:
        readings = EventStore(store)
    else:
        readings, reader = EventStore.scratch(), reader or NOT_RECORDED_READER
    window = MainWindow(readings, reader_id=reader, auto_read=auto_read)
    if pacs is not None:  # the PACS source (worklist, query/retrieve); nothing connects until the user asks
        from radassist.gui.pacs_browser import install_pacs_dock

        install_pacs_dock(window, pacs)
    if screenshot is not None or offscreen:
        window.resize(*SCREENSHOT_SIZE)
    window.show()
    if not paths:
        # Nothing to show yet: start the compressed-DICOM helper and load the models while the radiologist
        # picks a study. With an image to open they would only compete with it for the CPU (measured on 2
        # cores: the image 0.1-0.4 s later, and no earlier JPEG 2000 preview), and its read loads them anyway.
        window.start_decoder()
        if auto_read:
            window.prepare_read()
    if screenshot is None:
        if paths:
            window.open_paths(paths)
        return app.exec()
    return _screenshot_and_quit(app, window, paths, Path(screenshot))


def _screenshot_and_quit(app: QApplication, window: MainWindow, paths: list[str], out: Path) -> int:
    """Open, wait until the read ends (or the image fails), save the window, close."""
    outcome: dict[str, str] = {}

    def finish(error: str | None = None) -> None:
        if "done" in outcome:
            return
        outcome["done"] = "yes"
        if error:
            outcome["error"] = error
        app.processEvents()
        window.viewer.repaint()
        try:
            window.save_screenshot(out)
        except RadAssistError as exc:
            outcome["error"] = str(exc)
        window.close()
        app.quit()

    window.read_finished.connect(lambda _ok: QTimer.singleShot(200, finish))
    window.image_failed.connect(lambda message: finish(message))
    if not window.auto_read:
        window.image_shown.connect(lambda _path: QTimer.singleShot(200, finish))
    QTimer.singleShot(int(SCREENSHOT_TIMEOUT_S * 1000), lambda: finish("timed out waiting for the AI read"))
    if paths:
        window.open_paths(paths)
    else:
        QTimer.singleShot(0, finish)
    app.exec()
    if "error" in outcome:
        raise RadAssistError(f"{outcome['error']} (screenshot written to {out})" if out.exists()
                             else outcome["error"])
    return 0
