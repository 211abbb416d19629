"""The study browser dock: the StudyIndex as a tree (patient/study -> series -> image) plus the recent list.

It owns no widgets of its own: the tree and the list come from ui/viewer_main.ui. Opening a file is a
request (`open_requested`); the main window decides what loading means. Each image shows its reading
status (unread / read / signed, from the feedback store) in the second column.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtWidgets import QHeaderView, QListWidget, QListWidgetItem, QTreeWidget, QTreeWidgetItem

from radassist.feedback.reading import StudyStatus
from radassist.gui.settings import recent_paths, remember_recent
from radassist.gui.study_index import StudyIndex

_PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_COLUMN = 1
STATUS_TEXT = {StudyStatus.UNREAD: "unread", StudyStatus.READ: "● read", StudyStatus.SIGNED: "✓ signed"}


class StudyBrowser(QObject):
    open_requested = Signal(str)  # an image file to open
    reopen_requested = Signal(str)  # a recent file or folder to add and open again

    def __init__(self, tree: QTreeWidget, recent: QListWidget, settings: QSettings):
        super().__init__(tree)
        self.tree, self.recent, self.settings = tree, recent, settings
        self.index = StudyIndex()
        self._current: Path | None = None
        self._statuses: dict[str, StudyStatus] = {}
        header = tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        tree.itemActivated.connect(self._activated)
        recent.itemActivated.connect(lambda item: self.reopen_requested.emit(item.data(_PATH_ROLE)))
        self._show_recent(recent_paths(settings))

    # ----- content
    def merge(self, index: StudyIndex) -> None:
        """Add what a background indexing job found and redraw the tree."""
        self.index.merge(index)
        self._rebuild()

    def remember(self, path: str | Path) -> None:
        self._show_recent(remember_recent(self.settings, path))

    def images(self) -> list[Path]:
        return [instance.path for instance in self.index.instances()]

    def show_statuses(self, statuses: dict[str, StudyStatus]) -> None:
        """Read / unread / signed per image ({absolute path: status})."""
        self._statuses = dict(statuses)
        for item in self._leaves():
            self._show_status(item)

    def status_of(self, path: str | Path) -> StudyStatus:
        return self._statuses.get(os.path.abspath(path), StudyStatus.UNREAD)

    def _show_status(self, item: QTreeWidgetItem) -> None:
        status = self.status_of(item.data(0, _PATH_ROLE))
        item.setText(STATUS_COLUMN, STATUS_TEXT[status])
        item.setToolTip(STATUS_COLUMN, f"Reading status: {status.value}")

    def _leaves(self) -> list[QTreeWidgetItem]:
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        leaves = []
        while stack:
            item = stack.pop()
            if item.data(0, _PATH_ROLE):
                leaves.append(item)
            stack += [item.child(i) for i in range(item.childCount())]
        return leaves

    def mark_current(self, path: Path) -> None:
        """Highlight the open image so Page Up/Down continue from it."""
        self._current = Path(path).resolve()
        item = self._item_for(self._current)
        if item is not None:
            self.tree.blockSignals(True)
            self.tree.setCurrentItem(item)
            self.tree.blockSignals(False)

    def neighbour(self, step: int) -> Path | None:
        images = [p.resolve() for p in self.images()]
        if not images:
            return None
        if self._current not in images:
            return images[0]
        position = images.index(self._current) + step
        return images[position] if 0 <= position < len(images) else None

    # ----- drawing
    def _rebuild(self) -> None:
        self.tree.clear()
        for study in self.index.studies.values():
            patient = study.patient_name or "(no name)"
            if study.patient_id:
                patient += f"  [{study.patient_id}]"
            title = f"{patient} — {study.description}" if study.description else patient
            study_item = QTreeWidgetItem([title, study.date, ""])
            self.tree.addTopLevelItem(study_item)
            for series in study.series:
                caption = f"Series {series.number}" if series.number is not None else "Series"
                if series.description:
                    caption += f": {series.description}"
                series_item = QTreeWidgetItem([f"{caption} ({len(series.instances)})", "", series.modality])
                study_item.addChild(series_item)
                for instance in series.instances:
                    leaf = QTreeWidgetItem([instance.name, "", ""])
                    leaf.setData(0, _PATH_ROLE, str(instance.path))
                    leaf.setToolTip(0, str(instance.path))
                    self._show_status(leaf)
                    series_item.addChild(leaf)
        self.tree.expandAll()
        if self._current is not None:
            self.mark_current(self._current)

    def _item_for(self, path: Path) -> QTreeWidgetItem | None:
        return next((item for item in self._leaves() if Path(item.data(0, _PATH_ROLE)).resolve() == path), None)

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        path = item.data(0, _PATH_ROLE)
        if path:
            self.open_requested.emit(path)

    def _show_recent(self, paths: list[str]) -> None:
        self.recent.clear()
        for path in paths:
            item = QListWidgetItem(Path(path).name or path)
            item.setData(_PATH_ROLE, path)
            item.setToolTip(path)
            self.recent.addItem(item)
