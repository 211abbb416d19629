"""The extension tree is consistent: CMake file lists = files on disk, Slicer's naming conventions, the
ExtensionsIndex catalog entry validates against Slicer's JSON schema and passes the index checker's rules.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import tomllib
from extension_layout import (
    CATALOG_ENTRY,
    CATALOG_SCHEMA,
    EXTENSION_DIR,
    MODULE_DIR,
    MODULE_SOURCE,
    PANEL_FORM,
    REPO_ROOT,
)
from PIL import Image

RAW_URL_PREFIX = re.compile(r"^https://raw\.githubusercontent\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^/]+)/")

# Categories ExtensionsIndex's checker accepts (scripts/check_description_files.py,
# ACCEPTED_EXTENSION_CATEGORIES, as of 2025); the ones a chest X-ray reader could sensibly use.
ACCEPTED_CATEGORIES_SUBSET = {"Analysis", "Quantification", "Segmentation", "Informatics", "DICOM", "Utilities"}

# Python modules a Slicer installation bundles, the only third-party imports allowed at file scope.
SLICER_BUNDLED = {"slicer", "vtk", "qt", "ctk", "numpy"}


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


def _module_lists() -> tuple[list[str], list[str]]:
    text = _cmake_text(MODULE_DIR / "CMakeLists.txt")
    name = _cmake_set(text, "MODULE_NAME")[0]

    def expand(items):
        return [item.replace("${MODULE_NAME}", name) for item in items]

    return expand(_cmake_set(text, "MODULE_PYTHON_SCRIPTS")), expand(_cmake_set(text, "MODULE_PYTHON_RESOURCES"))


def _files_under(folder: Path, suffixes: set[str] | None = None) -> set[str]:
    return {
        p.relative_to(MODULE_DIR).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and (suffixes is None or p.suffix in suffixes)
    }


def test_cmake_scripts_and_resources_match_the_files_on_disk():
    scripts, resources = _module_lists()
    for listed in scripts + resources:
        assert (MODULE_DIR / listed).is_file(), f"CMake lists {listed}, which does not exist"
    assert _files_under(MODULE_DIR, {".py"}) == set(scripts), "every module .py must be in SCRIPTS (and nothing else)"
    # Resources/UI is filled at build time from ui/ (configure_file), so it must not exist in the tree.
    assert not (MODULE_DIR / "Resources" / "UI").exists()
    assert _files_under(MODULE_DIR / "Resources") == set(resources)


def test_module_follows_slicer_scripted_module_conventions():
    text = _cmake_text(MODULE_DIR / "CMakeLists.txt")
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


def test_top_level_cmakelists_declares_the_extension():
    text = _cmake_text(EXTENSION_DIR / "CMakeLists.txt")
    assert re.search(r"cmake_minimum_required\(VERSION [\d.]+", text)
    assert re.search(r"^project\(RadAssist\)", text, flags=re.MULTILINE)
    for variable in ("EXTENSION_HOMEPAGE", "EXTENSION_CATEGORY", "EXTENSION_CONTRIBUTORS", "EXTENSION_DESCRIPTION",
                     "EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS", "EXTENSION_DEPENDS"):
        assert _cmake_set(text, variable)[0], variable
    assert _cmake_set(text, "EXTENSION_DEPENDS") == ["NA"]
    assert "find_package(Slicer REQUIRED)" in text
    assert "include(${Slicer_USE_FILE})" in text
    assert f"add_subdirectory({MODULE_DIR.name})" in text
    assert "include(${Slicer_EXTENSION_CPACK})" in text


def test_catalog_entry_validates_against_slicer_schema():
    schema = json.loads(CATALOG_SCHEMA.read_text(encoding="utf-8"))
    entry = json.loads(CATALOG_ENTRY.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(entry, schema)
    assert entry["$schema"].split("/")[-1].rstrip("#") == CATALOG_SCHEMA.name
    # The schema is strict (additionalProperties: false): a misspelt key is caught.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**entry, "scm_revison": "main"}, schema)


def test_catalog_entry_meets_the_index_checker_rules():
    """The rules of ExtensionsIndex's scripts/check_description_files.py that can be checked offline."""
    entry = json.loads(CATALOG_ENTRY.read_text(encoding="utf-8"))
    top = _cmake_text(EXTENSION_DIR / "CMakeLists.txt")
    project = re.search(r"project\s*\(\s*([^\s)]+)", top, flags=re.IGNORECASE).group(1)
    assert CATALOG_ENTRY.stem == project  # JSON file name = CMake project() name
    assert entry["category"] in ACCEPTED_CATEGORIES_SUBSET
    assert entry["category"] == _cmake_set(top, "EXTENSION_CATEGORY")[0]
    assert entry["scm_url"].startswith("https://")
    assert (REPO_ROOT / "LICENSE").is_file()
    assert "Apache License" in (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")[:400]

    owner_repo = entry["scm_url"].removeprefix("https://github.com/").removesuffix(".git")
    assert _cmake_set(top, "EXTENSION_HOMEPAGE")[0].startswith(f"https://github.com/{owner_repo}/")
    image_urls = _cmake_set(top, "EXTENSION_ICONURL") + _cmake_set(top, "EXTENSION_SCREENSHOTURLS")[0].split()
    for url in image_urls:
        match = RAW_URL_PREFIX.match(url)
        assert match, f"{url} is not a raw GitHub URL"
        assert f"{match['owner']}/{match['repo']}" == owner_repo
        assert match["ref"] == entry["scm_revision"]
        local = REPO_ROOT / url[match.end():]
        assert local.is_file(), f"{url} names {local}, which is not in the repository"
        assert Image.open(local).format == "PNG"


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


def test_cmake_copies_the_shared_form_and_core_into_the_module(tmp_path):
    """Configure the extension with real CMake against a STAND-IN Slicer SDK (cmake_standin/): the
    stand-in only defines the Slicer variables/macros; the copy steps under test are the extension's own."""
    cmake = shutil.which("cmake")
    if cmake is None or shutil.which("c++") is None:
        pytest.skip("cmake or a C++ compiler (which project() probes for) is not installed")
    build = tmp_path / "build"
    run = subprocess.run(
        [cmake, "-S", str(EXTENSION_DIR), "-B", str(build),
         f"-DSlicer_DIR={Path(__file__).parent / 'cmake_standin'}"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    module_output = build / "lib" / "Slicer-standin" / "qt-scripted-modules"
    copied_form = module_output / "Resources" / "UI" / PANEL_FORM.name
    assert copied_form.read_bytes() == PANEL_FORM.read_bytes()
    assert (module_output / "radassist" / "__init__.py").is_file()
    assert (module_output / "radassist" / "pipeline" / "read.py").is_file()
    assert not (module_output / "radassist" / "gui").exists()  # no PySide6 code inside Slicer
    assert not (module_output / "radassist" / "training").exists()  # no torch code inside Slicer
    assert (module_output / "resources").is_dir()
    # What the stand-in macro received is exactly the module's lists (it checks each file exists).
    scripts, resources = _module_lists()
    received = json.loads((build / "RadAssistModule" / "standin-scripted-module.json").read_text())
    assert received == {"name": "RadAssistModule", "scripts": scripts, "resources": resources,
                        "generic_tests": True}
