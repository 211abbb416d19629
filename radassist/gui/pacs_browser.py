"""The viewer's PACS source: the listener's worklist sorted by AI priority, and query / retrieve on a peer.

A dock beside the study browser with two tabs:
- Worklist: what `radassist listen` received (its SQLite worklist, refreshed every few seconds), flagged
  studies first then by calibrated priority, with status icons for the AI pre-read, the results sent back and
  the reading. Patient name and accession come from the spooled DICOM headers (the worklist holds none).
  Double-click (or Enter) opens the image.
- Query: find studies on a configured peer (C-FIND) or DICOMweb server (QIDO-RS) by patient, date or
  accession; Retrieve moves the study to the listener (C-MOVE, which pre-reads it) or fetches it into the
  spool (C-GET / WADO-RS) and opens it.
"Send reading to PACS" sends the radiologist's signed reading as a final SR the same way the listener sends
its pre-reads. Network calls run as background jobs; nothing connects until the user asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QDate, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from radassist.gui.jobs import Job
from radassist.pacs.config import PacsConfig
from radassist.pacs.worklist import AIStatus, ReadingStatus, ResultsStatus, WorklistEntry

REFRESH_MS = 5000
_PATH_ROLE = Qt.ItemDataRole.UserRole
_UID_ROLE = Qt.ItemDataRole.UserRole + 1  # worklist: SOP Instance UID; query results: Study Instance UID
WORKLIST_COLUMNS = ("AI", "Priority", "Patient", "Finding", "Accession", "Study date", "Results", "Reading")
DOCK_WIDTH = 520  # logical px: room for priority, patient and finding beside the image
QUERY_COLUMNS = ("Patient", "Patient ID", "Study date", "Accession", "Description", "Modalities", "Images")


@dataclass(frozen=True)
class StatusLook:
    colour: QColor
    text: str  # tooltip and accessible text


AI_LOOK = {
    AIStatus.RECEIVED: StatusLook(QColor(140, 140, 140), "waiting for the AI pre-read"),
    AIStatus.REFUSED: StatusLook(QColor(90, 90, 90), "AI refused the image (input QA)"),
    AIStatus.FAILED: StatusLook(QColor(225, 120, 70), "AI pre-read failed"),
}
FLAGGED_LOOK = StatusLook(QColor(220, 60, 60), "AI: likely abnormal (at or above the operating threshold)")
NOT_FLAGGED_LOOK = StatusLook(QColor(80, 170, 110), "AI: below the operating threshold")
RESULTS_TEXT = {ResultsStatus.NOT_SENT: "—", ResultsStatus.QUEUED: "… queued", ResultsStatus.SENT: "✓ sent",
                ResultsStatus.FAILED: "⚠ not sent"}
READING_TEXT = {ReadingStatus.UNREAD: "unread", ReadingStatus.OPENED: "● opened", ReadingStatus.SIGNED: "✓ signed"}


def _dot(colour: QColor, size: int = 12) -> QIcon:
    pixmap = QPixmap(QSize(size, size))
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(colour)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return QIcon(pixmap)


def ai_look(entry: WorklistEntry) -> StatusLook:
    if entry.ai_status is AIStatus.READ:
        return FLAGGED_LOOK if entry.flagged else NOT_FLAGGED_LOOK
    return AI_LOOK[entry.ai_status]


@dataclass(frozen=True)
class HeaderFields:
    patient: str
    accession: str
    study_date: str


def _header_fields(path: str) -> HeaderFields:
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=["PatientName", "AccessionNumber", "StudyDate"])
    except Exception:  # a spooled file that cannot be read: the row still shows
        return HeaderFields("?", "", "")
    date = str(ds.get("StudyDate", "") or "")
    return HeaderFields(str(ds.get("PatientName", "") or ""), str(ds.get("AccessionNumber", "") or ""),
                        f"{date[:4]}-{date[4:6]}-{date[6:]}" if len(date) == 8 else date)


def _finding_text(entry: WorklistEntry) -> str:
    """The worklist's Finding column: the lead finding, else the priority label when flagged, else the status."""
    if entry.priority is None:
        return "" if entry.ai_status is AIStatus.RECEIVED else entry.ai_status.value
    if entry.lead_finding or entry.flagged:
        return (entry.lead_finding or entry.priority_label).replace("_", " ")
    return "none flagged"


class PacsBrowser(QWidget):
    open_requested = Signal(str)  # a spooled or retrieved image to open

    def __init__(self, config: PacsConfig, *, current_reading: Callable[[], tuple[str, object, str] | None]
                 | None = None, parent: QWidget | None = None):
        """current_reading: () -> (image path, signed SessionState, reader name) of the image on screen, or
        None; enables "Send reading to PACS"."""
        super().__init__(parent)
        self.config = config
        self.current_reading = current_reading
        self._headers: dict[str, HeaderFields] = {}
        self._jobs: set[Job] = set()
        self.tabs = QTabWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._build_worklist_tab(), "Worklist")
        self.tabs.addTab(self._build_query_tab(), "Query")
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.refresh)
        self._timer.start(REFRESH_MS)
        self.refresh()

    # ----- worklist
    def _build_worklist_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        self.worklist_tree = QTreeWidget(tab)
        self.worklist_tree.setObjectName("pacsWorklist")
        self.worklist_tree.setRootIsDecorated(False)
        self.worklist_tree.setHeaderLabels(list(WORKLIST_COLUMNS))
        self.worklist_tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.worklist_tree.itemActivated.connect(self._open_item)
        layout.addWidget(self.worklist_tree)
        buttons = QHBoxLayout()
        refresh = QPushButton("Refresh", tab)
        refresh.clicked.connect(self.refresh)
        self.send_button = QPushButton("Send reading to PACS", tab)
        self.send_button.setToolTip("Send the signed reading of the image on screen as a final SR "
                                    "to the results destination")
        self.send_button.clicked.connect(self.send_reading)
        self.send_button.setEnabled(self.current_reading is not None and self.config.results.enabled)
        buttons.addWidget(refresh)
        buttons.addStretch(1)
        buttons.addWidget(self.send_button)
        layout.addLayout(buttons)
        return tab

    def worklist_path(self) -> Path:
        from radassist.pacs.listener import WORKLIST_FILE

        return self.config.spool_dir() / WORKLIST_FILE

    def refresh(self) -> None:
        """Re-read the worklist (cheap: one SQLite query; headers are read once per instance)."""
        from radassist.pacs.worklist import Worklist

        path = self.worklist_path()
        if not path.is_file():
            self.worklist_tree.clear()
            self.status.setText(f"No worklist yet: start `radassist listen` (spool {path.parent}).")
            return
        entries = Worklist(path).entries()
        selected = self._selected_uid()
        self.worklist_tree.clear()
        for entry in entries:
            item = self._worklist_item(entry)
            self.worklist_tree.addTopLevelItem(item)
            if entry.sop_instance_uid == selected:
                self.worklist_tree.setCurrentItem(item)
        flagged = sum(1 for e in entries if e.flagged)
        waiting = sum(1 for e in entries if e.ai_status is AIStatus.RECEIVED)
        self.status.setText(f"{len(entries)} image(s): {flagged} flagged by the AI, {waiting} waiting for it.")

    def _selected_uid(self) -> str | None:
        item = self.worklist_tree.currentItem()
        return item.data(0, _UID_ROLE) if item else None

    def _worklist_item(self, entry: WorklistEntry) -> QTreeWidgetItem:
        header = self._headers.get(entry.sop_instance_uid)
        if header is None:
            header = self._headers[entry.sop_instance_uid] = _header_fields(entry.spool_path)
        look = ai_look(entry)
        priority = "" if entry.priority is None else f"{entry.priority:.0%}"
        finding = _finding_text(entry)
        item = QTreeWidgetItem(["", priority, header.patient, finding, header.accession, header.study_date,
                                RESULTS_TEXT[entry.results_status], READING_TEXT[entry.reading_status]])
        item.setIcon(0, _dot(look.colour))
        item.setToolTip(0, look.text)
        item.setData(0, Qt.ItemDataRole.AccessibleTextRole, look.text)
        if entry.results_error:
            item.setToolTip(6, entry.results_error)
        if entry.ai_reason:
            item.setToolTip(3, entry.ai_reason)
        item.setData(0, _PATH_ROLE, entry.spool_path)
        item.setData(0, _UID_ROLE, entry.sop_instance_uid)
        return item

    def _open_item(self, item: QTreeWidgetItem) -> None:
        path = item.data(0, _PATH_ROLE)
        uid = item.data(0, _UID_ROLE)
        if path:
            if uid:
                from radassist.pacs.worklist import Worklist

                entry = Worklist(self.worklist_path()).get(uid)
                if entry is not None and entry.reading_status is ReadingStatus.UNREAD:
                    Worklist(self.worklist_path()).set_reading(uid, ReadingStatus.OPENED)
            self.open_requested.emit(path)

    # ----- query / retrieve
    def _build_query_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        form = QFormLayout()
        self.source = QComboBox(tab)
        for peer in self.config.peers:
            self.source.addItem(f"{peer.name} (DICOM {peer.ae_title}@{peer.host}:{peer.port})", ("dicom", peer.name))
        for server in self.config.dicomweb:
            self.source.addItem(f"{server.name} (DICOMweb)", ("dicomweb", server.name))
        self.patient_id = QLineEdit(tab)
        self.patient_name = QLineEdit(tab)
        self.patient_name.setPlaceholderText("DOE^JOHN or DOE*")
        self.accession = QLineEdit(tab)
        self.date_from, self.date_to = QDateEdit(tab), QDateEdit(tab)
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setSpecialValueText("any")
            edit.setMinimumDate(QDate(1900, 1, 1))
            edit.setDate(edit.minimumDate())
        form.addRow("Source", self.source)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Accession", self.accession)
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow("Study date", dates)
        layout.addLayout(form)
        self.search_button = QPushButton("Search", tab)
        self.search_button.clicked.connect(self.search)
        layout.addWidget(self.search_button)
        self.results_tree = QTreeWidget(tab)
        self.results_tree.setObjectName("pacsQueryResults")
        self.results_tree.setRootIsDecorated(False)
        self.results_tree.setHeaderLabels(list(QUERY_COLUMNS))
        self.results_tree.itemActivated.connect(lambda _item: self.retrieve())
        layout.addWidget(self.results_tree)
        self.retrieve_button = QPushButton("Retrieve and open", tab)
        self.retrieve_button.clicked.connect(self.retrieve)
        layout.addWidget(self.retrieve_button)
        has_source = self.source.count() > 0
        for widget in (self.search_button, self.retrieve_button):
            widget.setEnabled(has_source)
        if not has_source:
            self.results_tree.setHeaderLabels(["No PACS peer configured: see the README's PACS section"])
        return tab

    def study_query(self):
        from radassist.pacs.query import StudyQuery

        def day(edit: QDateEdit) -> str:
            return "" if edit.date() == edit.minimumDate() else edit.date().toString("yyyyMMdd")

        return StudyQuery(patient_id=self.patient_id.text().strip(), patient_name=self.patient_name.text().strip(),
                          date_from=day(self.date_from), date_to=day(self.date_to),
                          accession_number=self.accession.text().strip())

    def search(self) -> None:
        kind, name = self.source.currentData()
        query, config = self.study_query(), self.config

        def find(_context):
            from radassist.pacs import query as q

            if kind == "dicom":
                return q.find_studies(config.peer(name), query, config.ae_title)
            return q.qido_studies(config.dicomweb_peer(name), query)

        self._run(Job(find, "PACS query"), self._show_matches)

    def _show_matches(self, matches) -> None:
        self.results_tree.clear()
        for match in matches:
            item = QTreeWidgetItem([match.patient_name, match.patient_id, match.study_date, match.accession_number,
                                    match.description, match.modalities,
                                    "" if match.instances is None else str(match.instances)])
            item.setData(0, _UID_ROLE, match.study_instance_uid)
            self.results_tree.addTopLevelItem(item)
        self.status.setText(f"{len(matches)} stud{'y' if len(matches) == 1 else 'ies'} found.")

    def retrieve(self) -> None:
        item = self.results_tree.currentItem()
        if item is None or not item.data(0, _UID_ROLE):
            self.status.setText("Select a study to retrieve.")
            return
        kind, name = self.source.currentData()
        study_uid, config = item.data(0, _UID_ROLE), self.config

        def fetch(_context):
            from radassist.pacs import query as q
            from radassist.pacs.spool import Spool

            spool = Spool(config.spool_dir())
            if kind == "dicom":
                return q.get_study(config.peer(name), study_uid, spool, config.ae_title)
            return q.wado_study(config.dicomweb_peer(name), study_uid, spool)

        self._run(Job(fetch, "PACS retrieve"), self._retrieved)

    def _retrieved(self, paths: list[Path]) -> None:
        self.status.setText(f"{len(paths)} image(s) retrieved.")
        if paths:
            self.open_requested.emit(str(paths[0]))

    # ----- results back
    def send_reading(self) -> None:
        reading = self.current_reading() if self.current_reading else None
        if reading is None:
            self.status.setText("Open and sign a reading first.")
            return
        image_path, state, reader = reading
        if not getattr(state, "signed", False):
            self.status.setText("Sign the report first: only a signed reading goes back to PACS.")
            return
        config = self.config

        def send(_context):
            from io import BytesIO

            from pydicom import dcmread

            from radassist.errors import InputRefused
            from radassist.pacs.results import signed_reading_sr
            from radassist.pacs.sender import send as send_objects
            from radassist.pacs.spool import Spool, atomic_write

            original = dcmread(image_path, stop_before_pixels=True)
            if "SOPInstanceUID" not in original or "StudyInstanceUID" not in original:
                raise InputRefused("only DICOM images from PACS can have their reading sent back")
            buffer = BytesIO()
            signed_reading_sr(original, state, reader).save_as(buffer, enforce_file_format=True)
            path = Spool(config.spool_dir()).outbox(str(original.SOPInstanceUID)) / "reading-sr.dcm"
            atomic_write(path, buffer.getvalue())  # kept if sending fails, like the pre-read results
            send_objects(config.results, [path], config.ae_title)
            path.unlink()
            return str(original.SOPInstanceUID)

        self._run(Job(send, "Send reading to PACS"), self._reading_sent)

    def _reading_sent(self, sop_instance_uid: str) -> None:
        from radassist.pacs.worklist import Worklist

        if self.worklist_path().is_file():
            Worklist(self.worklist_path()).set_reading(sop_instance_uid, ReadingStatus.SIGNED)
        self.refresh()
        self.status.setText("Signed reading sent to PACS.")

    # ----- jobs
    def _run(self, job: Job, on_success: Callable[[object], None]) -> None:
        self.status.setText(f"{job.name}…")
        job.succeeded.connect(on_success)
        job.failed.connect(lambda message, _expected: self.status.setText(message))
        job.finished.connect(lambda: self._jobs.discard(job))
        self._jobs.add(job)
        job.start()


def install_pacs_dock(window: QMainWindow, config: PacsConfig) -> PacsBrowser:
    """Add the PACS source to the viewer's main window as a dock tabbed with the study browser; opening an
    image from it goes through the window's usual open path."""

    def current_reading():
        reading, loaded = getattr(window, "reading", None), getattr(window, "loaded", None)
        if reading is None or loaded is None:
            return None
        return str(loaded.radiograph.meta.source_path), reading.state, reading.reader_id

    browser = PacsBrowser(config, current_reading=current_reading)
    dock = QDockWidget("PACS", window)
    dock.setObjectName("pacsDock")
    dock.setWidget(browser)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    study_dock = window.findChild(QDockWidget, "studyDock")
    if study_dock is not None:
        window.tabifyDockWidget(study_dock, dock)
    dock.raise_()
    window.resizeDocks([dock], [DOCK_WIDTH], Qt.Orientation.Horizontal)
    browser.open_requested.connect(lambda path: window.open_paths([path]))
    return browser
