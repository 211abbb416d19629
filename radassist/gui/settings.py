"""Viewer settings (window layout, recent files, overlay choices) in an INI file in the user-data folder.

Not QSettings' native store (the Windows registry, macOS plists): one file under RADASSIST_DATA_DIR can be
isolated by tests, backed up with the feedback store, and deleted to reset the viewer.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from radassist.paths import user_data_dir

RECENT_LIMIT = 12


def viewer_settings() -> QSettings:
    return QSettings(str(user_data_dir() / "viewer.ini"), QSettings.Format.IniFormat)


def recent_paths(settings: QSettings) -> list[str]:
    value = settings.value("recent/paths", [])
    if isinstance(value, str):  # QSettings returns a bare string for a one-item list
        return [value]
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def remember_recent(settings: QSettings, path: str | Path) -> list[str]:
    """Put `path` first in the recent list (no duplicates, at most RECENT_LIMIT) and return the list."""
    path = str(Path(path).resolve())
    paths = [path] + [p for p in recent_paths(settings) if p != path]
    paths = paths[:RECENT_LIMIT]
    settings.setValue("recent/paths", paths)
    return paths
