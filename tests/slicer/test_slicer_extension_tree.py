"""The Slicer extension repository generated from this checkout (installer/slicer/make_extension_repository.py):
a SlicerRadAssist tree with the CMakeLists at its root, that passes the ExtensionsIndex checks that run
offline (installer/slicer/check_extension_repository.py), whose CMake lists name every file (configured
with real CMake against a stand-in SDK), and whose module follows Slicer's conventions. Where a Slicer
source checkout and CMake >= 3.31 are at hand (RADASSIST_SLICER_SOURCE, RADASSIST_CMAKE), Slicer's own
Utilities/Scripts/package_python_extension.py packages it and the package is inspected.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import jsonschema
import pytest
import tomllib
from extension_layout import (
    CATALOG_SCHEMA,
    CHECKER,
    GENERATOR,
    MODULE_DIR,
    MODULE_SOURCE,
    PANEL_FORM,
    REPO_ROOT,
)
from PIL import Image

# Python modules a Slicer installation bundles, the only third-party imports allowed at file scope.
SLICER_BUNDLED = {"slicer", "vtk", "qt", "ctk", "numpy"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("extension")
    run = subprocess.run([sys.executable, str(GENERATOR), str(out), "--owner", "radassist", "--revision", "main"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    tree = Path(run.stdout.strip())
    assert tree == out / "SlicerRadAssist"
    return tree


def _cmake_text(path: Path) -> str:
    return "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())


def _cmake_set(text: str, variable: str) -> list[str]:
    """Items of set(VARIABLE item item ...) or the quoted string of set(VARIABLE "value")."""
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, flags=re.DOTALL)
    assert match, f"set({variable} ...) not found"
    body = match.group(1).strip()
    if body.startswith('"'):
        return [body.strip('"')]
    return body.split()


def _module_lists(tree: Path) -> tuple[list[str], list[str]]:
    text = _cmake_text(tree / "RadAssistModule" / "CMakeLists.txt")
    return _cmake_set(text, "MODULE_PYTHON_SCRIPTS"), _cmake_set(text, "MODULE_PYTHON_RESOURCES")


def test_generated_tree_passes_the_index_checks_that_run_offline(generated: Path):
    run = subprocess.run([sys.executable, str(CHECKER), str(generated), "--schema", str(CATALOG_SCHEMA)],
                         capture_output=True, text=True, timeout=120)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RadAssist: 9 checks passed, 0 failed" in run.stdout


@pytest.mark.parametrize(("breakage", "failed_check"), [
    (lambda tree: (tree / "LICENSE").unlink(), "licence file"),
    (lambda tree: _rewrite(tree / "CMakeLists.txt", "project(RadAssist)", "project(RadAssistX)"), "CMakeLists.txt content"),
    (lambda tree: _rewrite(tree / "RadAssist.json", "SlicerRadAssist.git", "RadAssist.git"), "git repository name"),
    (lambda tree: _rewrite(tree / "RadAssist.json", '"tier": 1', '"tier": 1, "scm_revison": "x"'), "JSON schema"),
    (lambda tree: (tree / "Screenshots" / "RadAssistPanel.png").write_bytes(b"not a png"), "CMakeLists.txt content"),
    (lambda tree: (tree / "RadAssistModule" / "radassist" / "extra.py").write_text(""), "module file lists"),
])
def test_the_checker_catches_each_broken_rule(generated: Path, tmp_path: Path, breakage, failed_check):
    broken = tmp_path / "SlicerRadAssist"
    shutil.copytree(generated, broken)
    breakage(broken)
    run = subprocess.run([sys.executable, str(CHECKER), str(broken)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert f"FAIL  {failed_check}:" in run.stdout, run.stdout


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_generated_tree_carries_the_core_data_and_form_but_no_qt_viewer_or_training(generated: Path):
    module = generated / "RadAssistModule"
    scripts, resources = _module_lists(generated)
    assert "radassist/pipeline/read.py" in scripts and "RadAssistModule.py" in scripts
    assert "Resources/UI/radassist_panel.ui" in resources
    assert (module / "Resources" / "UI" / PANEL_FORM.name).read_bytes() == PANEL_FORM.read_bytes()
    for shipped in ("radassist/_data/models/cxr_classifier.onnx", "radassist/_data/models/lungseg.card.json",
                    "radassist/_data/resources/knowledge/cxr.ttl", "radassist/_data/ui/radassist_panel.ui"):
        assert shipped in resources, shipped
    assert not any(name.startswith(("radassist/gui/", "radassist/training/")) for name in scripts + resources)
    assert not any("__pycache__" in name for name in scripts + resources)
    entry = json.loads((generated / "RadAssist.json").read_text(encoding="utf-8"))
    jsonschema.validate(entry, json.loads(CATALOG_SCHEMA.read_text(encoding="utf-8")))
    assert entry["scm_url"] == "https://github.com/radassist/SlicerRadAssist.git"


def test_module_follows_slicer_scripted_module_conventions(generated: Path):
    text = _cmake_text(generated / "RadAssistModule" / "CMakeLists.txt")
    name = _cmake_set(text, "MODULE_NAME")[0]
    assert MODULE_SOURCE.name == f"{name}.py" == f"{MODULE_DIR.name}.py"
    macro = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, flags=re.DOTALL).group(1).split()
    assert macro[:2] == ["NAME", "${MODULE_NAME}"]
    assert {"SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS"} <= set(macro)
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in text

    classes = {node.name: [b.id for b in node.bases if isinstance(b, ast.Name)]
               for node in ast.parse(MODULE_SOURCE.read_text(encoding="utf-8")).body
               if isinstance(node, ast.ClassDef)}
    assert classes[name] == ["ScriptedLoadableModule"]
    assert classes[f"{name}Widget"][0] == "ScriptedLoadableModuleWidget"
    assert classes[f"{name}Logic"] == ["ScriptedLoadableModuleLogic"]
    assert classes[f"{name}Test"] == ["ScriptedLoadableModuleTest"]
    icon = Image.open(MODULE_DIR / "Resources" / "Icons" / "RadAssist.png")
    assert icon.size == (128, 128)


def test_file_scope_imports_are_only_what_slicer_bundles():
    for source in [MODULE_SOURCE, *sorted((MODULE_DIR / "RadAssistModuleLib").glob("*.py"))]:
        for node in ast.parse(source.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                roots = {node.module.split(".")[0]}
            else:
                continue
            allowed = SLICER_BUNDLED | set(sys.stdlib_module_names) | {"__future__", "RadAssistModuleLib"}
            assert roots <= allowed, f"{source.name} imports {roots - allowed} at file scope"


def test_slicer_requirements_follow_pyproject_without_qt_torch_or_bundled_packages():
    sys.path.insert(0, str(MODULE_DIR))
    try:
        from RadAssistModuleLib import Dependencies
    finally:
        sys.path.remove(str(MODULE_DIR))
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    core = {Dependencies.normalizedName(Dependencies.distributionName(r)): r.replace(" ", "")
            for r in pyproject["project"]["dependencies"]}
    slicer = {Dependencies.normalizedName(Dependencies.distributionName(r)): r.replace(" ", "")
              for r in Dependencies.readRequirements(MODULE_DIR / "Resources" / "requirements.txt")}
    assert set(Dependencies.PROVIDED_BY_SLICER) <= set(core), "PROVIDED_BY_SLICER names a package the core dropped"
    expected = {name: spec for name, spec in core.items() if name not in Dependencies.PROVIDED_BY_SLICER}
    assert slicer == expected
    assert not {"torch", "onnxruntime-gpu", "pyside6", "pyside6-essentials"} & set(slicer)
    assert "onnxruntime" in slicer


def test_cmake_configures_the_generated_tree_with_every_file_listed(generated: Path, tmp_path: Path):
    """Real CMake against a STAND-IN Slicer SDK (cmake_standin/: Slicer's variables, and a macro that
    fails on a listed file that does not exist and records what it was given)."""
    cmake = shutil.which("cmake")
    if cmake is None or shutil.which("c++") is None:
        pytest.skip("cmake or a C++ compiler (which project() probes for) is not installed")
    build = tmp_path / "build"
    run = subprocess.run([cmake, "-S", str(generated), "-B", str(build),
                          f"-DSlicer_DIR={Path(__file__).parent / 'cmake_standin'}"],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    recorded = json.loads((build / "RadAssistModule" / "standin-scripted-module.json").read_text(encoding="utf-8"))
    module = generated / "RadAssistModule"
    on_disk = {p.relative_to(module).as_posix() for p in module.rglob("*") if p.is_file() and p.name != "CMakeLists.txt"}
    assert recorded["name"] == "RadAssistModule" and recorded["generic_tests"] is True
    assert set(recorded["scripts"]) | set(recorded["resources"]) == on_disk


def test_slicer_package_python_extension_packages_it(generated: Path, tmp_path: Path):
    """Slicer's Utilities/Scripts/package_python_extension.py (needs a Slicer source checkout and CMake >= 3.31)."""
    slicer_source = os.environ.get("RADASSIST_SLICER_SOURCE")
    cmake = os.environ.get("RADASSIST_CMAKE") or shutil.which("cmake")
    script = Path(slicer_source or "/nonexistent") / "Utilities" / "Scripts" / "package_python_extension.py"
    if not script.is_file() or cmake is None:
        pytest.skip("set RADASSIST_SLICER_SOURCE to a Slicer checkout with Utilities/Scripts/package_python_extension.py")
    source = tmp_path / "SlicerRadAssist"
    shutil.copytree(generated, source)
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "gen"]):
        subprocess.run(["git", *command], cwd=source, check=True, capture_output=True)
    out = tmp_path / "packages"
    run = subprocess.run([sys.executable, str(script), "--ext-src", str(source), "--slicer-src", slicer_source,
                          "--cmake", cmake, "--output-dir", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    (package,) = out.glob("*RadAssist*.tar.gz")
    names = tarfile.open(package).getnames()
    for wanted in ("qt-scripted-modules/RadAssistModule.py", "qt-scripted-modules/Resources/UI/radassist_panel.ui",
                   "qt-scripted-modules/radassist/_data/models/cxr_classifier.onnx",
                   "qt-scripted-modules/radassist/pipeline/read.py", "RadAssist.s4ext"):
        assert any(name.endswith(wanted) or f"/{wanted}" in name for name in names), wanted
