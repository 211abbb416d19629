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


def installedVersion(name: str) -> str | None:
    """The installed version of a distribution in this Python, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


_SPECIFIER = re.compile(r"\s*(==|!=|<=|>=|<|>)\s*([0-9][0-9A-Za-z.+!-]*)\s*")
_PYTHON_MARKER = re.compile(r"""^\s*python_version\s*(==|!=|<=|>=|<|>)\s*['"]([0-9.]+)['"]\s*$""")
_COMPARE: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
}


def releaseNumbers(version: str, length: int = 4) -> tuple[int, ...]:
    """The numeric release part of a version, padded: '2.4.0rc1' -> (2, 4, 0, 0), '3' -> (3, 0, 0, 0).

    Stdlib only (Slicer's Python may lack `packaging` before the first install). Pre-releases compare
    like their release, which is enough for the minimum/maximum bounds of requirements.txt.
    """
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if not digits:
            break
        numbers.append(int(digits.group(0)))
    return tuple(numbers + [0] * (length - len(numbers)))[:length] if numbers else (0,) * length


def versionSatisfies(version: str, specifiers: str) -> bool:
    """Whether `version` meets every comma-separated specifier ('>=3.0,<4'); '' always does."""
    for specifier in filter(None, (s.strip() for s in specifiers.split(","))):
        match = _SPECIFIER.fullmatch(specifier)
        if not match:
            raise ValueError(f"unsupported version specifier {specifier!r}")
        operator, bound = match.groups()
        if not _COMPARE[operator](releaseNumbers(version), releaseNumbers(bound)):
            return False
    return True


def appliesToThisPython(requirement: str, pythonVersion: tuple[int, int] = sys.version_info[:2]) -> bool:
    """A requirement's environment marker, for the only kind requirements.txt uses (python_version)."""
    if ";" not in requirement:
        return True
    marker = requirement.split(";", 1)[1]
    match = _PYTHON_MARKER.fullmatch(marker)
    if not match:
        return True  # a marker this check cannot read: treat as needed, pip decides when installing
    operator, bound = match.groups()
    return _COMPARE[operator](releaseNumbers(".".join(map(str, pythonVersion))), releaseNumbers(bound))


def unmetRequirements(
    requirements: Iterable[str], versionOf: Callable[[str], str | None] = installedVersion
) -> list[str]:
    """The requirement lines this Python does not satisfy: the distribution is missing, or its installed
    version is outside the line's bounds (e.g. Slicer 5.8's pydicom 2.4 for 'pydicom>=3.0,<4')."""
    unmet = []
    for requirement in requirements:
        if not appliesToThisPython(requirement):
            continue
        name = distributionName(requirement)
        specifiers = requirement.split(";", 1)[0][len(name):].strip()
        specifiers = re.sub(r"^\[[^\]]*\]", "", specifiers).strip()  # extras are not versions
        version = versionOf(name)
        if version is None or not versionSatisfies(version, specifiers):
            unmet.append(requirement)
    return unmet


def describeUnmet(requirements: Iterable[str], versionOf: Callable[[str], str | None] = installedVersion) -> list[str]:
    """'pydicom>=3.0,<4 (2.4.4 installed)' / '... (not installed)', for the messages the user sees."""
    described = []
    for requirement in requirements:
        version = versionOf(distributionName(requirement))
        described.append(f"{requirement} ({version + ' installed' if version else 'not installed'})")
    return described


def slicerPackageManager(slicerModule: object) -> object | None:
    """Slicer's own version-aware package manager when this Slicer has one: slicer.pydeps (Slicer 5.11+,
    pip_ensure + load_requirements; the issue called it slicer.packaging), else None (then
    slicer.util.pip_install with the check above)."""
    for moduleName in ("pydeps", "packaging"):
        manager = getattr(slicerModule, moduleName, None)
        if callable(getattr(manager, "pip_ensure", None)) and callable(getattr(manager, "load_requirements", None)):
            return manager
    return None


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

    A built extension carries the core beside the module (installer/slicer/make_extension_repository.py
    puts it there, with models/, ui/ and resources/ in radassist/_data where ``radassist.paths``
    finds them, as in a wheel); a module loaded straight from a source checkout uses the checkout.
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
