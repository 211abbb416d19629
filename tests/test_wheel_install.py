"""A wheel of this checkout, installed into a FRESH virtual environment (dependencies from the package
index, no source checkout anywhere near), passes `radassist --selftest`; so does the same wheel
installed with `pip install --target DIR` and run from DIR. Both find the models, forms and resources
as package data inside the installed package (radassist/_data), never a checkout's or another
installation's. Slow (a fresh venv: ~1-2 min with a warm pip cache); CI runs it with the suite.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# What a wheel is built from: the build files and the folders it ships (no tests, no .venv, no .git).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "THIRD_PARTY_NOTICES")
SHIPPED_FOLDERS = ("radassist", "models", "ui", "resources")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "ablation", "*.egg-info")


def run(command: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600
        ) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=timeout,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, repo_root: Path) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        shutil.copy(repo_root / name, source / name)
    for folder in SHIPPED_FOLDERS:
        shutil.copytree(repo_root / folder, source / folder, ignore=IGNORED)
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(source)], cwd=source)
    (built,) = out.glob("radassist-*.whl")
    return built


def selftest_env(home: Path) -> dict[str, str]:
    """A user's environment: fresh home, nothing pointing back at the checkout."""
    return {"HOME": str(home), "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": "", "RADASSIST_DATA_DIR": "",
            "RADASSIST_MODELS_DIR": "", "XDG_DATA_HOME": str(home / ".local" / "share")}


def clean_env(env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RADASSIST_", "PYTHON", "VIRTUAL_ENV"))}
    return {**base, **{k: v for k, v in env.items() if v}}


def test_wheel_holds_the_data_and_the_licences(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in ("radassist/_data/models/cxr_classifier.onnx", "radassist/_data/models/lungseg.card.json",
                     "radassist/_data/ui/viewer_main.ui", "radassist/_data/resources/knowledge/cxr.ttl",
                     "radassist/_data/resources/theme/dark.qss", "radassist/cli/__init__.py",
                     "radassist/cli/__main__.py", "radassist/cli/read.py"):
        assert expected in names, expected
    licences = {name.rsplit("/", 1)[-1] for name in names if ".dist-info/licenses/" in name}
    assert licences == {"LICENSE", "THIRD_PARTY_NOTICES"}
    assert not any(name.startswith(("share/", "tests/")) or "/data/share/" in name for name in names)


def test_wheel_in_a_fresh_venv_and_with_pip_target_passes_the_selftest(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path, env={"PIP_NO_INPUT": "1"},
        timeout=900)
    home = tmp_path / "home"
    home.mkdir()
    installed = run([str(venv / "bin" / "radassist"), "--selftest"], cwd=home,
                    env=clean_env(selftest_env(home)))
    print(installed.stdout)
    site_data = next(venv.glob("lib/python*/site-packages/radassist/_data"))
    assert f"installation at {site_data}" in installed.stdout
    assert "torch" not in run([str(python), "-m", "pip", "list"], cwd=tmp_path).stdout.split()

    target = tmp_path / "target"
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        cwd=tmp_path)
    env = clean_env({**selftest_env(home), "PYTHONPATH": str(target)})
    from_target = run([str(python), "-m", "radassist.cli", "--selftest"], cwd=home, env=env)
    print(from_target.stdout)
    assert f"installation at {target / 'radassist' / '_data'}" in from_target.stdout
