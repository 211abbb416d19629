"""Shared fixtures. Qt runs offscreen unless a test asks for a real X server (see tests/test_gui_xvfb.py)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = REPO_ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def test_data() -> Path:
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo (present on developer machines and in CI)."""
    path = Path(os.environ.get("RADASSIST_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is not present")
    return path


@pytest.fixture()
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private user-data folder so no test touches the real one."""
    folder = tmp_path / "userdata"
    monkeypatch.setenv("RADASSIST_DATA_DIR", str(folder))
    return folder


@pytest.fixture()
def make_window(qtbot, data_dir):
    """A factory of real main windows (offscreen) on a real store in the test's data folder, each closed at
    the end answering the unsigned-reading prompt. Qt is imported here, not when every test starts."""
    from gui_windows import close_answering_yes
    from PySide6.QtWidgets import QMessageBox

    from radassist.feedback.store import EventStore
    from radassist.gui.main_window import MainWindow

    made = []

    def make(auto_read: bool = True) -> MainWindow:
        win = MainWindow(EventStore(data_dir / "feedback.sqlite"), reader_id="dr-gui", auto_read=auto_read)
        win.resize(1500, 950)  # closed below, answering the unsigned-reading prompt (not by qtbot)
        win.show()
        qtbot.waitExposed(win)
        made.append(win)
        return win

    yield make
    for win in made:
        for box in win.findChildren(QMessageBox):
            box.close()
        close_answering_yes(win)


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """A command run in-process (radassist.cli.main, a training command) configures the root logger with the
    stream pytest captured for that test; later tests must not log into that closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
