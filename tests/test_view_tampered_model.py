"""`radassist view` refuses a tampered or truncated model exactly like `read`: the AI panel shows the
refusal (the model is never loaded) and a screenshot run exits 2 with the same one-line error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from radassist.paths import models_dir, resources_dir

SAMPLE = resources_dir() / "samples" / "pediatric_normal.png"


def tampered_models(folder: Path, how: str) -> Path:
    """A copy of the bundled models with the classifier's file damaged (its card unchanged)."""
    folder.mkdir()
    for path in models_dir().iterdir():
        if path.is_file() and path.name.endswith((".onnx", ".card.json")):
            shutil.copy(path, folder / path.name)
    model = folder / "cxr_classifier.onnx"
    data = bytearray(model.read_bytes())
    if how == "flipped":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) // 2]
    model.write_bytes(bytes(data))
    return folder


def cli(*args: str, models: Path, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RADASSIST_MODELS_DIR": str(models), "RADASSIST_DATA_DIR": str(home / "data"),
           "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "radassist.cli", *args], capture_output=True, text=True,
                          timeout=240, env=env, cwd=home)


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_view_refuses_a_tampered_model_like_read(tmp_path: Path, how: str):
    models = tampered_models(tmp_path / "models", how)
    read = cli("read", str(SAMPLE), models=models, home=tmp_path)
    shot = tmp_path / "view.png"
    view = cli("view", str(SAMPLE), "--screenshot", str(shot), models=models, home=tmp_path)
    assert read.returncode == 2 and "does not match its model card" in read.stderr
    assert view.returncode == 2, view.stdout + view.stderr
    error_lines = [line for line in view.stderr.splitlines() if line.startswith("radassist: error: ")]
    assert error_lines == [read.stderr.strip().splitlines()[-1]]  # the very same refusal
    with Image.open(shot) as image:  # the window was still saved: it shows the refusal in the AI panel
        assert image.size[0] > 0


def test_view_with_intact_models_exits_0(tmp_path: Path):
    shot = tmp_path / "view.png"
    view = cli("view", str(SAMPLE), "--screenshot", str(shot), models=models_dir(), home=tmp_path)
    assert view.returncode == 0, view.stderr
    assert "radassist: error" not in view.stderr
