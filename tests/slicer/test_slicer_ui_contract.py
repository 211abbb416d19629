"""The shared form ui/radassist_panel.ui against the Slicer module that loads it.

The module's Widget needs the Slicer application, which cannot run here; what can be checked is that the
form loads with a real QUiLoader (PySide6, offscreen), that every widget the module looks up exists with
the class it expects, and that the form stays loadable by Slicer's Qt (stock widgets, Qt5-readable enums).
"""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ET

import pytest
from extension_layout import MODULE_SOURCE, PANEL_FORM, REPO_ROOT

pytest.importorskip("PySide6")

from PySide6.QtCore import QFile, QIODevice  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

# Classes a stock Qt5 and Qt6 build both provide (no custom widgets, no plugins).
STOCK_QT_WIDGETS = {
    "QWidget", "QGroupBox", "QFrame", "QLabel", "QPushButton", "QToolButton", "QCheckBox", "QRadioButton",
    "QComboBox", "QSlider", "QSpinBox", "QDoubleSpinBox", "QLineEdit", "QPlainTextEdit", "QTextEdit",
    "QTableWidget", "QListWidget", "QTreeWidget", "QProgressBar", "QTabWidget", "QSplitter", "QScrollArea",
    "QStackedWidget", "QDialogButtonBox",
}


def _module_tree() -> ast.Module:
    return ast.parse(MODULE_SOURCE.read_text(encoding="utf-8"))


def _module_constant(name: str):
    for node in _module_tree().body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} is not defined in {MODULE_SOURCE.name}")


def _ui_attributes_used() -> set[str]:
    """Every NAME in `self.ui.NAME` anywhere in the module source."""
    used = set()
    for node in ast.walk(_module_tree()):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
                and node.value.attr == "ui" and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "self"):
            used.add(node.attr)
    return used


def _readme_contract() -> dict[str, str]:
    """object name -> class, from the table in ui/README.md."""
    text = (REPO_ROOT / "ui" / "README.md").read_text(encoding="utf-8")
    return dict(re.findall(r"^\|\s*`(\w+)`\s*\|\s*(Q\w+)\s*\|", text, flags=re.MULTILINE))


@pytest.fixture(scope="module")
def loaded_form(qapp):
    loader = QUiLoader()
    handle = QFile(str(PANEL_FORM))
    assert handle.open(QIODevice.OpenModeFlag.ReadOnly)
    try:
        form = loader.load(handle)
    finally:
        handle.close()
    assert form is not None, loader.errorString()
    yield form
    form.deleteLater()


def test_form_loads_with_quiloader_as_a_qwidget(loaded_form):
    assert type(loaded_form) is QWidget
    assert loaded_form.objectName() == "RadAssistPanel"


def test_every_widget_the_module_looks_up_exists_with_the_documented_class(loaded_form):
    names = _module_constant("PANEL_WIDGET_NAMES")
    contract = _readme_contract()
    assert names, "the module declares no widget names"
    for name in names:
        widget = loaded_form.findChild(QWidget, name)
        assert widget is not None, f"{name} is missing from {PANEL_FORM.name}"
        assert widget.metaObject().className() == contract[name], name


def test_module_uses_no_widget_it_does_not_declare():
    undeclared = _ui_attributes_used() - set(_module_constant("PANEL_WIDGET_NAMES"))
    assert not undeclared, f"self.ui.{undeclared} are used but not in PANEL_WIDGET_NAMES (so not checked)"


def test_readme_contract_matches_the_form(loaded_form):
    contract = _readme_contract()
    assert len(contract) >= 13
    for name, class_name in contract.items():
        widget = loaded_form.findChild(QWidget, name)
        assert widget is not None and widget.metaObject().className() == class_name, name


def test_form_is_stock_qt_and_readable_by_qt5():
    text = PANEL_FORM.read_text(encoding="utf-8")
    root = ET.fromstring(text)
    assert root.find("customwidgets") is None
    classes = {w.get("class") for w in root.iter("widget")}
    assert classes <= STOCK_QT_WIDGETS, classes - STOCK_QT_WIDGETS
    # Qt 6 Designer may write scoped enums (Qt::Orientation::Horizontal) that Qt 5's loader rejects.
    assert not re.search(r"Qt::\w+::\w+", text)
    assert _module_constant("PANEL_FORM_NAME") == PANEL_FORM.name


def test_panel_form_path_prefers_the_built_copy_then_the_checkout(radassist_module, tmp_path):
    built = tmp_path / "Resources" / "UI"
    assert radassist_module.panelFormPath(str(built)) == str(PANEL_FORM)  # loaded from the source tree
    built.mkdir(parents=True)
    (built / PANEL_FORM.name).write_bytes(PANEL_FORM.read_bytes())
    assert radassist_module.panelFormPath(str(built)) == str(built / PANEL_FORM.name)  # built extension
