"""The viewer half of `radassist --selftest`: open a file in the real main window offscreen and wait for
its AI read. Lives in radassist/gui because it drives Qt; radassist/selftest.py stays Qt-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QSettings, QTimer

from radassist.errors import RadAssistError
from radassist.feedback.store import EventStore
from radassist.gui.app import NOT_RECORDED_READER, SCREENSHOT_SIZE, application, headless
from radassist.gui.main_window import MainWindow, capture_window


def read_in_viewer(path: Path, scratch: Path, screenshot: Path | None, timeout_s: int) -> tuple[Any, int, int, int]:
    """(ReadResult shown, window width, height, colours counted on a 16-px grid). The user's layout and
    feedback store are not touched (temporary settings in `scratch`, a scratch store)."""
    app = application(offscreen=headless())
    window = MainWindow(EventStore.scratch(), reader_id=NOT_RECORDED_READER,
                        settings=QSettings(str(scratch / "viewer.ini"), QSettings.Format.IniFormat))
    outcome: dict[str, Any] = {}
    loop, deadline = QEventLoop(), QTimer()
    window.read_finished.connect(lambda ok: (outcome.setdefault("read", ok), loop.quit()))
    window.image_failed.connect(lambda message: (outcome.setdefault("failed", message), loop.quit()))
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    try:
        window.resize(*SCREENSHOT_SIZE)
        window.show()
        window.open_image(path)
        deadline.start(timeout_s * 1000)
        loop.exec()
        deadline.stop()
        if "failed" in outcome:
            raise RadAssistError(f"the viewer could not open {path.name}: {outcome['failed']}")
        if "read" not in outcome:
            raise RadAssistError(f"the viewer's AI read did not finish within {timeout_s} s")
        if not outcome["read"] or window.result is None:
            raise RadAssistError("the viewer's AI read ended without a result (refused, failed or cancelled)")
        shown, picture = window.result, capture_window(window)
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
    if screenshot is not None and not picture.save(str(screenshot), "PNG"):
        raise RadAssistError(f"the screenshot could not be written to {screenshot}")
    colours = len({picture.pixel(x, y) for x in range(0, picture.width(), 16) for y in range(0, picture.height(), 16)})
    if colours < 16:
        raise RadAssistError(f"the window rendered {colours} colour(s): it looks blank")
    return shown, picture.width(), picture.height(), colours
