"""Packaging beyond what pyproject.toml can say: the read-only data folders ride inside the wheel.

The repository keeps models/, ui/ and resources/ at its top level (the design's layout). A wheel ships
them as the data-only package radassist/_data/{models,ui,resources}, found at run time through
importlib.resources (radassist.paths.install_root), so `pip install --target DIR` and any installation
prefix work and no other installation's models can be picked up. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

# data package -> (source folder in the checkout, files shipped from it)
DATA_PACKAGES = {
    "radassist._data.models": ("models", ["*.onnx", "*.card.json", "*.md"]),
    "radassist._data.ui": ("ui", ["*.ui", "*.md"]),
    "radassist._data.resources": ("resources", ["icons/*", "knowledge/*", "samples/*", "templates/*", "theme/*"]),
}

setup(
    packages=[*find_packages(include=["radassist", "radassist.*"]), *DATA_PACKAGES],
    package_dir={name: folder for name, (folder, _) in DATA_PACKAGES.items()},
    package_data={"radassist": ["py.typed"], **{name: files for name, (_, files) in DATA_PACKAGES.items()}},
    include_package_data=False,
)
