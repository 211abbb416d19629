"""`radassist view --screenshot` and `radassist demo` as a user runs them (separate processes, real model)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from PIL import Image

NIH_DICOM = "dicom/nhsx_nccid_test_data/1.3.6.1.4.1.11129.5.5.110503645592756492463169821050252582267888.dcm"


def radassist(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "radassist.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def overlay_share(path) -> float:
    """Share of coloured pixels in the right-hand (saliency) pane; the window is 1600 px wide with the
    study list (left) and the AI panel (right) at their default widths, so the panes span ~17-74 %."""
    picture = np.asarray(Image.open(path).convert("RGB")).astype(int)
    height, width, _ = picture.shape
    panes = picture[height // 8: height * 7 // 8, int(width * 0.17): int(width * 0.74)]
    saliency_pane = panes[:, panes.shape[1] // 2:]
    return float((saliency_pane.max(axis=2) - saliency_pane.min(axis=2) > 60).mean())


def test_view_screenshot_renders_the_read(test_data, tmp_path):
    out = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RADASSIST_DATA_DIR": str(tmp_path / "data")}
    done = radassist("view", str(test_data / NIH_DICOM), "--screenshot", str(out), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"screenshot written to {out}" in done.stdout
    assert Image.open(out).size == (1600, 1000)
    assert overlay_share(out) > 0.003, "the screenshot shows the AI overlay (focal: the lesion output)"


def test_demo_without_a_display_renders_offscreen_and_says_where(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["RADASSIST_DATA_DIR"] = str(data)
    done = radassist("demo", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no display found" in done.stdout
    shot = data / "demo-screenshot.png"
    assert f"screenshot written to {shot}" in done.stdout and shot.is_file()
    assert overlay_share(shot) > 0.001  # the focal lesion overlay on the adult sample (0.0029 measured; none: 0)
    # a screenshot run reads into a scratch store deleted on exit: the user's feedback store is not touched
    assert not (data / "feedback" / "feedback.sqlite").is_file()


def test_view_refuses_a_missing_file_with_one_line(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RADASSIST_DATA_DIR": str(tmp_path / "data")}
    done = radassist("view", str(tmp_path / "nothing.dcm"), env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"radassist: error: {tmp_path / 'nothing.dcm'} does not exist"


def test_view_screenshot_of_a_dicomdir_listing_nothing_ends_at_once_with_one_line(tmp_path):
    """A real (empty) DICOMDIR: the run says there is nothing to open instead of waiting for a read that
    never starts (it waited for the 180 s read timeout before)."""
    from pydicom.fileset import FileSet

    (tmp_path / "media").mkdir()
    FileSet().write(tmp_path / "media")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RADASSIST_DATA_DIR": str(tmp_path / "data")}
    done = radassist("view", str(tmp_path / "media" / "DICOMDIR"), "--screenshot", str(tmp_path / "shot.png"),
                     env=env, timeout=60)
    assert done.returncode == 2
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("radassist: error:")]
    assert len(error_lines) == 1 and "No image RadAssist can read was found there" in error_lines[0]
