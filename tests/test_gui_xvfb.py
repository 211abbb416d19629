"""One real window on a real X server (Xvfb): `radassist view --screenshot` reads the window back from the
X server and the picture must show the radiograph and the AI overlay. Skipped only if Xvfb is missing.

A separate process, because a Qt process picks its platform (offscreen for the other GUI tests, xcb here)
once, when the application starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.xvfb

SAMPLE = "samples/adult_covid19_hannover.png"


@pytest.fixture(scope="module")
def x_display():
    executable = shutil.which("Xvfb")
    if executable is None:
        pytest.skip("Xvfb is not installed (apt-get install xvfb)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen([executable, "-displayfd", str(write_end), "-screen", "0", "1920x1200x24",
                               "-nolisten", "tcp"], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as handle:
        number = handle.readline().strip()  # Xvfb writes its display number once it accepts clients
    if not number:
        server.kill()
        pytest.fail("Xvfb did not start")
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


def test_real_window_shows_radiograph_and_overlay(x_display, repo_root, tmp_path):
    out = tmp_path / "window.png"
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb", "RADASSIST_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, "-m", "radassist.cli", "view", str(repo_root / "resources" / SAMPLE),
                           "--screenshot", str(out), "--no-record"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    picture = np.asarray(Image.open(out).convert("RGB")).astype(int)
    height, width, _ = picture.shape
    assert width >= 1200 and height >= 800, "the whole window, read back from the X server"
    # The two panes sit between the study list (left) and the AI panel (right).
    panes = picture[height // 8: height * 7 // 8, int(width * 0.17): int(width * 0.74)]
    half = panes.shape[1] // 2
    plain, overlay = panes[:, :half], panes[:, half:]
    grey_plain = plain.mean(axis=2)
    assert grey_plain.std() > 30, "the radiograph is visible in the plain pane"
    colourful = lambda part: (part.max(axis=2) - part.min(axis=2) > 60).mean()  # noqa: E731
    assert colourful(plain) < 0.0005, "the plain pane is grey: no overlay there"
    # the overlay is the focal lesion map: 0.29 % of the pane on the adult sample
    assert colourful(overlay) > 0.0015, "the saliency overlay is visible in the other pane"
