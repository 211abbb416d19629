"""The Slicer module refuses a tampered model exactly like `radassist read`: the Logic's read raises the
engine's ModelError (the Widget's guarded() shows its text in the status label; the Widget itself needs
the Slicer application, not available here), and no overlay is added to the scene."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from radassist.errors import ModelError
from radassist.paths import models_dir


def test_logic_refuses_a_tampered_classifier_like_read(radassist_module, scene, repo_root, tmp_path, monkeypatch):
    tampered = tmp_path / "models"
    tampered.mkdir()
    for path in models_dir().iterdir():
        if path.is_file() and path.name.endswith((".onnx", ".card.json")):
            shutil.copy(path, tampered / path.name)
    model = tampered / "cxr_classifier.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0x40
    model.write_bytes(bytes(data))
    sample = repo_root / "resources" / "samples" / "pediatric_normal.png"
    env = {**os.environ, "RADASSIST_MODELS_DIR": str(tampered), "RADASSIST_DATA_DIR": str(tmp_path / "data")}
    cli = subprocess.run([sys.executable, "-m", "radassist.cli", "read", str(sample)], capture_output=True,
                         text=True, env=env, timeout=240)
    assert cli.returncode == 2

    monkeypatch.setenv("RADASSIST_MODELS_DIR", str(tampered))
    logic = radassist_module.RadAssistModuleLogic()
    logic.loadRadiograph(str(sample))
    with pytest.raises(ModelError) as refused:
        logic.runRead()
    assert cli.stderr.strip().endswith(str(refused.value))
    assert "does not match its model card" in str(refused.value)
    assert logic.saliencyNode is None and logic.lungMaskNode is None
