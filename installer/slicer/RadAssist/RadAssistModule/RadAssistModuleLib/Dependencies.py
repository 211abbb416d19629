"""Where the RadAssist core and its third-party packages come from inside 3D Slicer.

Slicer ships its own Python with numpy, SimpleITK, VTK and Qt. Everything else the core needs is
installed into that Python on first use, after the user agrees, either from PyPI or, on machines
without internet access, from an offline wheelhouse folder (``--no-index --find-links``).

Stdlib only: this file is imported before any dependency exists, and is tested without Slicer.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

#: Environment variable naming an offline wheelhouse folder (highest priority after the module setting).
WHEELHOUSE_ENVIRONMENT_VARIABLE = "RADASSIST_WHEELHOUSE"
#: Slicer application setting (QSettings key) naming an offline wheelhouse folder.
WHEELHOUSE_SETTING_KEY = "RadAssist/WheelhouseDirectory"
#: Folder name searched beside the module (a packaged extension may ship its wheels there).
BUNDLED_WHEELHOUSE_NAME = "wheelhouse"
#: Folder inside a source checkout where installer/ scripts put the offline wheelhouse.
CHECKOUT_WHEELHOUSE = Path("installer") / "wheelhouse"

#: Requirements of the core that must NOT be pip-installed into Slicer, and why.
PROVIDED_BY_SLICER = {
    "numpy": "bundled with Slicer; replacing it breaks Slicer's compiled modules",
    "simpleitk": "bundled with Slicer (SimpleITK)",
    "pyside6-essentials": "Slicer brings its own Qt; the RadAssist core never imports Qt",
}

_NAME_PATTERN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalizedName(name: str) -> str:
    """PEP 503 normalisation, so 'PyDicom', 'pydicom' and 'py_dicom' compare equal."""
    return re.sub(r"[-_.]+", "-", name).lower()


def distributionName(requirement: str) -> str:
    """The distribution name of a requirement line such as 'pydicom>=3.0,<4'."""
    match = _NAME_PATTERN.match(requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return match.group(1)


def readRequirements(path: str | os.PathLike[str]) -> list[str]:
    """Requirement lines of a requirements file, without comments and blank lines."""
    lines = []
    for rawLine in Path(path).read_text(encoding="utf-8").splitlines():
        line = rawLine.split("#", 1)[0].strip()
        if line:
            lines.append(line)
    return lines


def isDistributionInstalled(name: str) -> bool:
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missingRequirements(
    requirements: Iterable[str], isInstalled: Callable[[str], bool] = isDistributionInstalled
) -> list[str]:
    """The requirement lines whose distribution is not installed in this Python.

    Presence only: version specifiers are left to pip, which sees them when it installs.
    """
    return [req for req in requirements if not isInstalled(distributionName(req))]


def _containsWheels(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.whl"))


def findWheelhouse(
    moduleDirectory: str | os.PathLike[str],
    settingValue: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Path | None:
    """The offline wheelhouse to install from, or None to install from PyPI.

    Order: the module setting, $RADASSIST_WHEELHOUSE, ``<module>/wheelhouse``, then
    ``<checkout>/installer/wheelhouse`` when the module runs from a source checkout. A folder
    counts only if it holds at least one .whl file. An explicitly configured folder (setting or
    environment) that holds no wheels is an error, not a silent fall-back to the internet.
    """
    for configured in (settingValue, environ.get(WHEELHOUSE_ENVIRONMENT_VARIABLE)):
        if configured:
            folder = Path(configured).expanduser()
            if not _containsWheels(folder):
                raise FileNotFoundError(f"the RadAssist wheelhouse {folder} holds no .whl files")
            return folder
    moduleDirectory = Path(moduleDirectory)
    candidates = [moduleDirectory / BUNDLED_WHEELHOUSE_NAME]
    checkout = findSourceCheckout(moduleDirectory)
    if checkout is not None:
        candidates.append(checkout / CHECKOUT_WHEELHOUSE)
    return next((folder for folder in candidates if _containsWheels(folder)), None)


def pipInstallArguments(requirements: Iterable[str], wheelhouse: Path | None) -> list[str]:
    """Arguments for ``slicer.util.pip_install`` (and ``pip install``): offline when a wheelhouse is given."""
    requirements = list(requirements)
    if not requirements:
        raise ValueError("nothing to install")
    if wheelhouse is None:
        return requirements
    return ["--no-index", "--find-links", str(wheelhouse), *requirements]


def _holdsCore(folder: Path) -> bool:
    return (folder / "radassist" / "__init__.py").is_file()


def findSourceCheckout(moduleDirectory: str | os.PathLike[str]) -> Path | None:
    """The RadAssist source checkout this module sits in (developer install), if any."""
    for folder in Path(moduleDirectory).resolve().parents:
        if _holdsCore(folder) and (folder / "pyproject.toml").is_file():
            return folder
    return None


def findCore(moduleDirectory: str | os.PathLike[str]) -> Path | None:
    """The folder to put on sys.path so ``import radassist`` finds the core.

    A built extension carries the core beside the module (CMake copies it there, with models/ and
    resources/, so ``radassist.paths.install_root()`` finds them); a module loaded straight from
    a source checkout uses the checkout.
    """
    moduleDirectory = Path(moduleDirectory).resolve()
    if _holdsCore(moduleDirectory):
        return moduleDirectory
    return findSourceCheckout(moduleDirectory)


def makeCoreImportable(moduleDirectory: str | os.PathLike[str]) -> Path | None:
    """Put the core's folder first on sys.path (once) and return it; None if it is nowhere to be found."""
    core = findCore(moduleDirectory)
    if core is not None and str(core) not in sys.path:
        sys.path.insert(0, str(core))
    return core
