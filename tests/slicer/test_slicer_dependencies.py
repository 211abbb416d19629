"""First-use installation inside Slicer: which packages are missing, where they come from (PyPI or an
offline wheelhouse), and the pip arguments, proven with a real offline `pip install` from a wheelhouse."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
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
    assert Dependencies.missingRequirements(requirements) == ["radassist-surely-not-installed-probe==1.0"]


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
    missing = Dependencies.missingRequirements(["radassist-wheelhouse-probe==0.1"])
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
