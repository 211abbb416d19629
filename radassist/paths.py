"""Where RadAssist finds its read-only files (models, resources) and writes user data.

Read-only files live beside the package in a source checkout, inside the PyInstaller bundle, or inside
the installed package (radassist/_data) for a wheel install;
user data (feedback store, settings, fine-tuned models) lives in the platform's user-data folder,
overridable with RADASSIST_DATA_DIR so tests and sites can point it elsewhere.
"""

from __future__ import annotations

import os
import sys
from importlib.resources import files
from pathlib import Path

APP_NAME = "RadAssist"
PACKAGED_DATA = "_data"  # inside the installed package: models/, ui/, resources/ (see setup.py)
# The read-only folders of a checkout and the files of each that an installation ships (as package data
# in the wheel, setup.py; inside the Slicer extension, installer/slicer/make_extension_repository.py).
SHIPPED_DATA: dict[str, tuple[str, ...]] = {
    "models": ("*.onnx", "*.card.json", "*.md"),
    "ui": ("*.ui", "*.md"),
    "resources": ("icons/*", "knowledge/*", "samples/*", "templates/*", "theme/*"),
}


def install_root() -> Path:
    """The folder holding models/, resources/ and ui/.

    The frozen bundle's root; else the source checkout (also an editable install); else, for a wheel
    install (any prefix, also `pip install --target`), the package's own data folder radassist/_data,
    where setup.py puts the checkout's models/, ui/ and resources/, found through importlib.resources.
    """
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path(str(files("radassist") / PACKAGED_DATA))


def models_dir() -> Path:
    """Bundled, read-only model files and their cards (RADASSIST_MODELS_DIR overrides)."""
    return Path(os.environ.get("RADASSIST_MODELS_DIR") or install_root() / "models")


def resources_dir() -> Path:
    """Bundled, read-only resources: knowledge graph, templates, theme, icons, samples."""
    return install_root() / "resources"


def ui_dir() -> Path:
    """Qt Designer forms shared by the desktop viewer and the Slicer module."""
    return install_root() / "ui"


def user_data_dir(create: bool = True) -> Path:
    """Writable per-user folder (feedback store, settings, fine-tuned model versions). `create=False` for
    a caller that only reads from it: a plain read works where the folder cannot be created."""
    override = os.environ.get("RADASSIST_DATA_DIR")
    if override:
        path = Path(override)
    else:
        from platformdirs import user_data_dir as platform_user_data_dir

        path = Path(platform_user_data_dir(APP_NAME, appauthor=False))
    if not create:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # read-only or full disk, no permission, a file in the way: one clear line
        from radassist.errors import RadAssistError

        raise RadAssistError(f"the data folder {path} cannot be created ({exc.strerror or exc}); "
                             "set RADASSIST_DATA_DIR to a writable folder") from None
    return path


def user_log_dir() -> Path:
    """Where the viewer keeps its rotating log (not created here): RADASSIST_LOG_DIR, else logs/ in
    RADASSIST_DATA_DIR when that is set (a site's or a test's own folder), else the platform's log folder."""
    override = os.environ.get("RADASSIST_LOG_DIR")
    if override:
        return Path(override)
    data_override = os.environ.get("RADASSIST_DATA_DIR")
    if data_override:
        return Path(data_override) / "logs"
    from platformdirs import user_log_dir as platform_user_log_dir

    return Path(platform_user_log_dir(APP_NAME, appauthor=False))


def site_config_dir() -> Path:
    """Settings shared by every user of this workstation (e.g. the site pseudonym key); read-only here."""
    from platformdirs import site_config_dir as platform_site_config_dir

    return Path(platform_site_config_dir(APP_NAME, appauthor=False))
