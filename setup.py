"""Packaging beyond what pyproject.toml can say: the read-only data folders ride inside the wheel.

The repository keeps models/, ui/ and resources/ at its top level (the design's layout). A wheel ships
them as the data-only package radassist/_data/{models,ui,resources}, found at run time through
importlib.resources (radassist.paths.install_root), so `pip install --target DIR` and any installation
prefix work and no other installation's models can be picked up. Everything else is in pyproject.toml.
"""

import sys
from pathlib import Path

from setuptools import find_packages, setup

sys.path.insert(0, str(Path(__file__).resolve().parent))
from radassist.paths import PACKAGED_DATA, SHIPPED_DATA  # noqa: E402  (stdlib-only module)

# data package (radassist._data.models, ...) -> the checkout folder it is made from
DATA_PACKAGES = {f"radassist.{PACKAGED_DATA}.{folder}": folder for folder in SHIPPED_DATA}

setup(
    packages=[*find_packages(include=["radassist", "radassist.*"]), *DATA_PACKAGES],
    package_dir=DATA_PACKAGES,
    package_data={"radassist": ["py.typed"],
                  **{package: list(SHIPPED_DATA[folder]) for package, folder in DATA_PACKAGES.items()}},
    include_package_data=False,
)
