"""Where the Slicer extension's files are, for the tests in this folder (imported by them and conftest.py)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXTENSION_DIR = REPO_ROOT / "installer" / "slicer" / "RadAssist"
MODULE_DIR = EXTENSION_DIR / "RadAssistModule"
MODULE_SOURCE = MODULE_DIR / "RadAssistModule.py"
PANEL_FORM = REPO_ROOT / "ui" / "radassist_panel.ui"
GENERATOR = REPO_ROOT / "installer" / "slicer" / "make_extension_repository.py"
CHECKER = REPO_ROOT / "installer" / "slicer" / "check_extension_repository.py"
CATALOG_SCHEMA = Path(__file__).resolve().parent / "slicer-extension-catalog-entry-schema-v1.0.2.json"
