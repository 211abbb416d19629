"""Fast checks of installer/: the spec, the scripts and the wheelhouse's requirement list.

The slow parts (building the bundle, building and installing a wheelhouse) are not run here; they are
run by installer/build_bundle.sh and installer/install_offline.sh, whose results installer/README.md
quotes. These tests catch what breaks those builds silently: a folder the app reads but the spec does
not ship, a pixel codec whose metadata is not bundled, a runtime dependency the wheelhouse would miss.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from PIL import Image

from radassist import paths

INSTALLER = Path(__file__).resolve().parent.parent / "installer"
SPEC = INSTALLER / "pyinstaller" / "radassist.spec"
SHELL_SCRIPTS = [INSTALLER / "build_bundle.sh", INSTALLER / "install_offline.sh",
                 INSTALLER / "macos" / "build_app.sh"]


def spec_constant(name: str):
    """A module-level literal of the spec (the spec itself runs only inside PyInstaller)."""
    for node in ast.parse(SPEC.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not a literal in {SPEC.name}")


def spec_calls(function: str) -> set[str]:
    """First string arguments of every call to `function` in the spec, e.g. copy_metadata("pydicom")."""
    found = set()
    for node in ast.walk(ast.parse(SPEC.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == function and node.args:
            if isinstance(node.args[0], ast.Constant):
                found.add(node.args[0].value)
    return found


def spec_strings() -> set[str]:
    return {node.value for node in ast.walk(ast.parse(SPEC.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def load_wheelhouse_module():
    spec = importlib.util.spec_from_file_location("build_wheelhouse", INSTALLER / "build_wheelhouse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_ships_every_read_only_folder_the_app_reads(repo_root, monkeypatch):
    monkeypatch.delenv("RADASSIST_MODELS_DIR", raising=False)  # the folders as an installation has them
    folders = spec_constant("BUNDLED_FOLDERS")
    read_by_app = {paths.models_dir().name, paths.resources_dir().name, paths.ui_dir().name}
    assert read_by_app <= set(folders)
    for folder in folders:
        assert (repo_root / folder).is_dir(), f"the spec bundles {folder}/, which does not exist"
    assert (repo_root / "resources" / "knowledge" / "cxr.ttl").is_file()  # the knowledge graph rides along
    for script in ("radassist_cli.py", "radassist_viewer.py"):
        assert (SPEC.parent / script).is_file()


def test_spec_keeps_training_and_test_code_out():
    excluded = set(spec_constant("EXCLUDED_MODULES"))
    assert {"torch", "radassist.training", "scipy", "pytest"} <= excluded
    never_shipped = spec_constant("NEVER_SHIPPED")
    assert {"*.pt", "*.ckpt", "__pycache__"} <= set(never_shipped)


def test_spec_bundles_every_pixel_codec_and_the_metadata_that_finds_it():
    # pylibjpeg finds its decoders through entry points, so their distributions' metadata must ship;
    # take the list from what is installed here, not from a hand-written copy.
    decoder_distributions = {ep.dist.name for ep in importlib.metadata.entry_points(group="pylibjpeg.pixel_data_decoders")}
    assert decoder_distributions, "no pylibjpeg decoder plugin is installed in this environment"
    shipped_metadata = {name.lower() for name in spec_calls("copy_metadata")}
    assert {d.lower() for d in decoder_distributions} <= shipped_metadata
    codec_modules = {"libjpeg", "openjpeg", "rle", "jpeg_ls"}
    assert codec_modules <= spec_strings()
    assert "radiomics" in spec_calls("collect_data_files")  # pyradiomics' parameter schema


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_are_executable_and_parse(script):
    assert os.access(script, os.X_OK), f"{script.name} is not executable"
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_wheelhouse_script_is_executable_and_lists_exactly_the_runtime_dependencies(repo_root):
    script = INSTALLER / "build_wheelhouse.py"
    assert os.access(script, os.X_OK)
    listed = subprocess.run([sys.executable, str(script), "--list"], capture_output=True, text=True, check=True)
    project = tomllib.loads((repo_root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert listed.stdout.split("\n")[:-1] == project["dependencies"]
    extras_only = {name for group in project["optional-dependencies"].values() for name in group} - set(
        project["dependencies"])
    assert not extras_only & set(listed.stdout.split("\n")), "an extra (torch, test tools) leaked into the runtime set"


def test_wheelhouse_completeness_check_finds_a_missing_dependency(repo_root):
    wheelhouse = load_wheelhouse_module()
    requirements = wheelhouse.runtime_requirements(repo_root / "pyproject.toml")
    # wheel file names as pip writes them: original capitals, '-' and '.' turned into '_', version, tags
    complete = [Path(f"{re_split(r)}-1.0-py3-none-any.whl") for r in requirements]
    assert wheelhouse.missing_requirements(requirements, complete) == []
    without_onnxruntime = [w for w in complete if not w.name.startswith("onnxruntime-")]
    assert wheelhouse.missing_requirements(requirements, without_onnxruntime) == [
        r for r in requirements if r.startswith("onnxruntime")]
    assert wheelhouse.requirement_name("PySide6-Essentials>=6.6") == wheelhouse.wheel_name(
        Path("PySide6_Essentials-6.12.0-cp39-abi3-manylinux_2_34_x86_64.whl"))


def re_split(requirement: str) -> str:
    """'pyradiomics-bhklab>=3.1.4' -> 'pyradiomics_bhklab' (the distribution part of a wheel's file name)."""
    name = requirement.split(">")[0].split("=")[0].split("<")[0].split(";")[0].split("[")[0].strip()
    return name.replace("-", "_").replace(".", "_")


def test_offline_install_refuses_a_folder_without_the_radassist_wheel(tmp_path):
    result = subprocess.run(["bash", str(INSTALLER / "install_offline.sh"), str(tmp_path), str(tmp_path / "venv")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "holds no radassist wheel" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_windows_and_macos_files_are_present_marked_untested_and_point_at_real_files(repo_root):
    iss = INSTALLER / "windows" / "radassist.iss"
    for path in (iss, INSTALLER / "windows" / "build.ps1", INSTALLER / "macos" / "build_app.sh"):
        assert "UNTESTED HERE" in "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:2])
    for line in iss.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key in ("LicenseFile", "SetupIconFile"):
            assert (iss.parent / value.replace("\\", "/")).is_file(), line
    assert "radassist-viewer" in iss.read_text(encoding="utf-8")  # the windowed launcher the spec builds on Windows


def test_icons_hold_the_sizes_each_platform_asks_for():
    ico = Image.open(INSTALLER / "icons" / "radassist.ico")
    assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    icns = Image.open(INSTALLER / "icons" / "radassist.icns")
    assert icns.format == "ICNS" and icns.size == (1024, 1024)


def test_shipped_data_covers_every_file_the_app_reads(repo_root):
    """paths.SHIPPED_DATA (what setup.py puts in the wheel and the Slicer tree carries) covers each models/,
    ui/ and resources/ file the app reads; tests/test_wheel_install.py builds and installs a real wheel."""
    carried = {path.resolve() for folder, patterns in paths.SHIPPED_DATA.items() for pattern in patterns
               for path in (repo_root / folder).glob(pattern) if path.is_file()}
    read_by_app = [*(repo_root / "models").glob("*.onnx"), *(repo_root / "models").glob("*.card.json"),
                   *(repo_root / "ui").glob("*.ui"), *(p for p in (repo_root / "resources").rglob("*") if p.is_file())]
    missing = [str(path.relative_to(repo_root)) for path in read_by_app if path.resolve() not in carried]
    assert not missing, f"not in the wheel: {missing}"
    assert set(paths.SHIPPED_DATA) == {paths.models_dir().name, paths.ui_dir().name, paths.resources_dir().name}
    assert "SHIPPED_DATA" in (repo_root / "setup.py").read_text(encoding="utf-8")
