"""Loading Qt Designer forms from ui/ (shared with the 3D Slicer module) and finding widgets by name."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QDir, QObject
from PySide6.QtUiTools import QUiLoader
from PySide6.QtWidgets import QWidget

from radassist.errors import RadAssistError
from radassist.paths import ui_dir

T = TypeVar("T", bound=QObject)


class _IntoInstanceLoader(QUiLoader):
    """A QUiLoader that builds the form's top-level widget into an existing instance.

    This lets `MainWindow(QMainWindow)` be an ordinary subclass (own closeEvent, drag and drop) while
    its menus, docks and actions still come from the .ui file.
    """

    def __init__(self, instance: QWidget | None):
        super().__init__(instance)
        self._instance = instance

    def createWidget(self, class_name: str, parent: QWidget | None = None, name: str = "") -> QWidget:
        if parent is None and self._instance is not None:
            return self._instance
        return super().createWidget(class_name, parent, name)


def load_form(file_name: str, instance: QWidget | None = None, parent: QWidget | None = None) -> QWidget:
    """Build ui/<file_name>; into `instance` when given, else as a new widget (child of `parent`)."""
    path = ui_dir() / file_name
    if not path.is_file():
        raise RadAssistError(f"the viewer's form {path} is missing from this installation")
    loader = _IntoInstanceLoader(instance)
    loader.setWorkingDirectory(QDir(str(ui_dir())))  # icon paths in forms are relative to ui/
    widget = loader.load(str(path), parent)
    if widget is None:
        raise RadAssistError(f"the viewer's form {path} cannot be loaded ({loader.errorString()})")
    return widget


def child(root: QObject, kind: type[T], name: str) -> T:
    """The child called `name`; a missing one is a broken installation, said in plain words."""
    found = root.findChild(kind, name)
    if found is None:
        raise RadAssistError(f"the form {root.objectName()} has no {kind.__name__} named '{name}'")
    return found
