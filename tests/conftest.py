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


@pytest.fixture(autouse=True)
def _root_logging_restored():
    """A command run in-process (radassist.cli.main, a training command) configures the root logger with the
    stream pytest captured for that test; later tests must not log into that closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
