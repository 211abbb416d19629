"""First-use installation inside Slicer: which packages are missing, where they come from (PyPI or an
offline wheelhouse), and the pip arguments, proven with a real offline `pip install` from a wheelhouse."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest
from extension_layout import MODULE_DIR, REPO_ROOT

sys.path.insert(0, str(MODULE_DIR))
try:
    from RadAssistModuleLib import Dependencies
finally:
    sys.path.remove(str(MODULE_DIR))


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _write_wheel(folder: Path, distribution: str, version: str) -> Path:
    """A minimal, valid pure-Python wheel (PEP 427) holding one module, built without network or build tools."""
    module = distribution.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    files = {
        f"{module}.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: radassist-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "\n".join([*(_record_line(n, d) for n, d in files.items()), f"{dist_info}/RECORD,,"]) + "\n"
    path = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return path


def test_requirement_names_are_parsed_and_normalised():
    assert Dependencies.distributionName("pydicom>=3.0,<4") == "pydicom"
    assert Dependencies.distributionName("pyradiomics-bhklab>=3.1.4") == "pyradiomics-bhklab"
    assert Dependencies.distributionName("pylibjpeg_libjpeg [extra] >= 2") == "pylibjpeg_libjpeg"
    assert Dependencies.normalizedName("PyLibJPEG_libjpeg") == Dependencies.normalizedName("pylibjpeg-libjpeg")
    with pytest.raises(ValueError):
        Dependencies.distributionName(">=1.0")


def test_missing_requirements_are_found_in_the_running_python():
    requirements = ["numpy>=1.0", "radassist-surely-not-installed-probe==1.0"]
    assert Dependencies.unmetRequirements(requirements) == ["radassist-surely-not-installed-probe==1.0"]


def test_installed_but_too_old_or_too_new_counts_as_unmet():
    """Slicer 5.8/5.10 bring pydicom 2.4: present, but the core's `pydicom.pixels` import needs 3.x."""
    versions = {"pydicom": "2.4.4", "onnxruntime": "1.18.0", "pillow": "12.0.0", "rdflib": "7.0.0rc1"}
    requirements = ["pydicom>=3.0,<4", "onnxruntime>=1.18", "pillow>=10,<12", "rdflib>=7.0", "tqdm>=4.66",
                    "tomli>=2.0; python_version < '3.11'"]
    unmet = Dependencies.unmetRequirements(requirements, versionOf=versions.get)
    expected = ["pydicom>=3.0,<4", "pillow>=10,<12", "tqdm>=4.66"]
    if sys.version_info < (3, 11):
        expected.append("tomli>=2.0; python_version < '3.11'")
    assert unmet == expected
    assert Dependencies.describeUnmet(unmet[:1], versionOf=versions.get) == ["pydicom>=3.0,<4 (2.4.4 installed)"]
    real = Dependencies.unmetRequirements([f"pydicom>={pydicom_version()}", "pydicom<1"])
    assert real == ["pydicom<1"]  # the running Python's own metadata


@pytest.mark.parametrize(("version", "specifiers", "ok"), [
    ("3.0.2", ">=3.0,<4", True), ("4.0", ">=3.0,<4", False), ("2.4.4", ">=3.0", False),
    ("6.11.3", ">=6.6,<6.12", True), ("6.12.0", "<6.12", False), ("1.32.0", "==1.32", True), ("1.0", "!=1.0.0", False),
    ("3.1.4.post1", ">=3.1.4", True), ("7.0.0rc1", ">=7.0", True), ("5", "", True),
])
def test_version_bounds(version, specifiers, ok):
    assert Dependencies.versionSatisfies(version, specifiers) is ok


def test_slicer_package_manager_is_used_only_when_complete():
    class Pydeps:
        def pip_ensure(self, requirements, requester=None): ...
        def load_requirements(self, path): ...

    assert Dependencies.slicerPackageManager(types.SimpleNamespace()) is None
    with_pydeps = types.SimpleNamespace(pydeps=Pydeps())
    assert Dependencies.slicerPackageManager(with_pydeps) is with_pydeps.pydeps
    assert Dependencies.slicerPackageManager(types.SimpleNamespace(pydeps=types.SimpleNamespace(pip_ensure=print))) is None


def pydicom_version() -> str:
    import importlib.metadata

    return importlib.metadata.version("pydicom")


def test_wheelhouse_precedence_and_refusal_of_an_empty_configured_folder(tmp_path):
    module_dir = tmp_path / "RadAssistModule"
    (module_dir / "wheelhouse").mkdir(parents=True)
    assert Dependencies.findWheelhouse(module_dir, environ={}) is None  # no wheels anywhere -> PyPI
    _write_wheel(module_dir / "wheelhouse", "probe", "1.0")
    assert Dependencies.findWheelhouse(module_dir, environ={}) == module_dir / "wheelhouse"

    configured = tmp_path / "site-wheels"
    configured.mkdir()
    with pytest.raises(FileNotFoundError, match="holds no .whl"):
        Dependencies.findWheelhouse(module_dir, environ={Dependencies.WHEELHOUSE_ENVIRONMENT_VARIABLE: str(configured)})
    _write_wheel(configured, "probe", "1.0")
    environ = {Dependencies.WHEELHOUSE_ENVIRONMENT_VARIABLE: str(configured)}
    assert Dependencies.findWheelhouse(module_dir, environ=environ) == configured
    setting = tmp_path / "setting-wheels"
    setting.mkdir()
    _write_wheel(setting, "probe", "1.0")
    assert Dependencies.findWheelhouse(module_dir, settingValue=str(setting), environ=environ) == setting


def test_source_checkout_and_core_are_found_from_the_module_folder(tmp_path):
    assert Dependencies.findSourceCheckout(MODULE_DIR) == REPO_ROOT
    assert Dependencies.findCore(MODULE_DIR) == REPO_ROOT
    built = tmp_path / "qt-scripted-modules"
    (built / "radassist").mkdir(parents=True)
    (built / "radassist" / "__init__.py").write_text("")
    assert Dependencies.findCore(built) == built  # a built extension carries the core beside the module
    assert Dependencies.findCore(tmp_path / "elsewhere") is None


def test_pip_arguments_are_offline_only_with_a_wheelhouse(tmp_path):
    assert Dependencies.pipInstallArguments(["scipy>=1.11"], None) == ["scipy>=1.11"]
    assert Dependencies.pipInstallArguments(["scipy>=1.11"], tmp_path) == [
        "--no-index", "--find-links", str(tmp_path), "scipy>=1.11"]
    with pytest.raises(ValueError):
        Dependencies.pipInstallArguments([], tmp_path)


def test_offline_wheelhouse_install_with_real_pip(tmp_path):
    """The exact arguments handed to slicer.util.pip_install, run through real pip (no network: --no-index)."""
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    _write_wheel(wheelhouse, "radassist-wheelhouse-probe", "0.1")
    target = tmp_path / "site"
    missing = Dependencies.unmetRequirements(["radassist-wheelhouse-probe==0.1"])
    arguments = Dependencies.pipInstallArguments(missing, Dependencies.findWheelhouse(tmp_path, str(wheelhouse)))
    run = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--target", str(target), *arguments],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    installed = subprocess.run(
        [sys.executable, "-c", "import radassist_wheelhouse_probe as p; print(p.VERSION)"],
        capture_output=True, text=True, env={"PYTHONPATH": str(target)}, timeout=60,
    )
    assert installed.stdout.strip() == "0.1", installed.stderr
