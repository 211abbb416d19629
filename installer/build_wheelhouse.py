#!/usr/bin/env python3
"""Build an offline wheelhouse: every RUNTIME wheel RadAssist needs, for one target platform.

Why: reading-room workstations are often offline and locked down. On a machine WITH network, run

    python3.11 installer/build_wheelhouse.py --out wheelhouse       # this platform and Python (Linux/macOS)
    py -3.11 installer/build_wheelhouse.py --out wheelhouse          # the same on Windows
    python3.11 installer/build_wheelhouse.py --out wh --platform manylinux_2_28_x86_64 --python-version 3.12

copy the folder to the workstation and install with installer/install_offline.sh (no network used):

    pip install --no-index --find-links wheelhouse radassist

The runtime set is pyproject.toml's [project.dependencies] (never the train/dev/gpu extras, so no torch).
For another platform, pip downloads that platform's binary wheels, and pure-Python wheels built here
serve every platform. A dependency published only as source WITH compiled parts cannot be built for a
foreign platform: pyradiomics-bhklab is one (PyPI has only its sdist; pip compiles it locally, which is
why the Linux wheelhouse holds a `linux_x86_64` wheel of it). For Windows and macOS, run this script ON
the target (with its C compiler: MSVC Build Tools / Xcode command line tools) without --platform.
pip also evaluates environment markers only partly for a foreign target.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
PURE_WHEEL = re.compile(r"-(py2\.py3|py3|py\d+)-none-any\.whl$")


def runtime_requirements(pyproject: Path) -> list[str]:
    """The requirement strings of [project.dependencies]: what a workstation needs to run RadAssist."""
    return list(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])


def requirement_name(requirement: str) -> str:
    """Normalised project name of a requirement string (PEP 503), e.g. 'PySide6-Essentials>=6' -> 'pyside6-essentials'."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not name:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(1)).lower()


def wheel_name(wheel: Path) -> str:
    """Normalised project name of a wheel file name."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def missing_requirements(requirements: list[str], wheels: list[Path]) -> list[str]:
    """Runtime requirements with no wheel in the wheelhouse (empty when the wheelhouse is complete)."""
    present = {wheel_name(w) for w in wheels}
    return [r for r in requirements if requirement_name(r) not in present]


def _pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def build(out: Path, platform: str | None, python_version: str | None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    if platform is None and python_version is None:
        # This machine is the target: pip resolves, downloads binary wheels and builds the rest.
        _pip("wheel", "--wheel-dir", str(out), str(REPO))
    else:
        # Pure-Python wheels (radassist itself, source-only dependencies) come from a local resolve...
        host = out / ".host"
        _pip("wheel", "--wheel-dir", str(host), str(REPO))
        for wheel in host.glob("*.whl"):
            if PURE_WHEEL.search(wheel.name):
                shutil.copy2(wheel, out / wheel.name)
        shutil.rmtree(host)
        # ...and the target's binary wheels from the index, resolved for that platform and Python.
        target = ["--only-binary=:all:", "--implementation", "cp"]
        if platform:
            target += ["--platform", platform]
        if python_version:
            target += ["--python-version", python_version]
        radassist_wheel = next(out.glob("radassist-*.whl"))
        _pip("download", "--dest", str(out), "--find-links", str(out), *target, str(radassist_wheel))
    wheels = sorted(out.glob("*.whl"))
    pins = sorted(f"{wheel_name(w)}=={w.name.split('-')[1]}" for w in wheels)
    (out / "requirements.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    return wheels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist" / "wheelhouse", help="wheelhouse folder")
    parser.add_argument("--platform", help="target platform tag, e.g. win_amd64, macosx_11_0_arm64, "
                                           "manylinux_2_28_x86_64 (default: this machine)")
    parser.add_argument("--python-version", help="target Python, e.g. 3.11 (default: the running Python)")
    parser.add_argument("--list", action="store_true", help="print the runtime requirements and exit")
    args = parser.parse_args(argv)
    requirements = runtime_requirements(REPO / "pyproject.toml")
    if args.list:
        print("\n".join(requirements))
        return 0
    try:
        wheels = build(args.out, args.platform, args.python_version)
    except subprocess.CalledProcessError:
        hint = (" (a source-only package with compiled parts, e.g. pyradiomics-bhklab, must be built on the "
                "target OS: run this script there without --platform)") if args.platform else ""
        print(f"build_wheelhouse: error: pip could not provide every wheel, see above{hint}", file=sys.stderr)
        return 2
    missing = missing_requirements(requirements, wheels)
    if missing:
        print(f"build_wheelhouse: error: no wheel for {', '.join(missing)}", file=sys.stderr)
        return 2
    size_mb = sum(w.stat().st_size for w in wheels) / 1e6
    print(f"wheelhouse {args.out}: {len(wheels)} wheels, {size_mb:.0f} MB; covers all {len(requirements)} "
          f"runtime requirements of pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
