"""The viewer's main window: ties the study browser, the image panes and the AI panel together.

Menus, toolbar, docks and every action's shortcut come from ui/viewer_main.ui; this class gives the
actions their behaviour. Loading and the AI read run as background jobs (the window never waits on
disk or on the model); each job is tagged with the image it belongs to, so a result that arrives after
the radiologist moved on is dropped.

The window is a view of a Reading (radassist.feedback.reading): every decision, region, report edit,
undo, redo and signature is a call on the image's reading, which records it in the feedback store and
replays the store into its state; the window then draws that state. Opening an image opens its
reading from the store, so moving to another image and back, quitting and reopening, and a crash all
come back to what the store has. The reader's identity is asked once per viewer session.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QThreadPool, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMenu,
    QMessageBox,
    QToolBar,
    QTreeWidget,
    QWidget,
)

from radassist.errors import RadAssistError
from radassist.feedback.reading import Reading, study_statuses
from radassist.feedback.store import EventStore
from radassist.gui.ai_panel import AIPanel
from radassist.gui.annotations import Region
from radassist.gui.decode import DecoderProcess, is_compressed_dicom
from radassist.gui.forms import child, load_form
from radassist.gui.image_viewer import KEY_ZOOM_STEP, ImageViewer
from radassist.gui.jobs import Job, JobContext
from radassist.gui.settings import recent_paths, viewer_settings
from radassist.gui.study_browser import StudyBrowser
from radassist.gui.study_index import StudyIndex
from radassist.gui.view_state import LoadedImage, load_for_display
from radassist.image import Radiograph
from radassist.results import Measurement, MeasurementKind, ReadResult
from radassist.vocabulary import Agreement, Decision, Section

MAIN_FORM = "viewer_main.ui"
STATUS_MESSAGE_MS = 8000
JOB_DRAIN_MS = 60_000
DEFAULT_DOCK_WIDTHS = (270, 430)  # study browser, AI panel (logical px) until the user moves them
FOCUS_REPORT_SHORTCUT = "E"  # "edit": to the report's FINDINGS from anywhere (Tab / Shift+Tab move on from there)
READER_SETTING = "reader/last_id"


def capture_window(widget: QWidget) -> QImage:
    """What the window shows: read back from the display server when there is one, else rendered."""
    if QApplication.platformName() in ("offscreen", "minimal"):
        return widget.grab().toImage()
    return widget.screen().grabWindow(widget.winId()).toImage()


def _index_paths(paths: list[str]) -> tuple[StudyIndex, list[Path]]:
    index = StudyIndex()
    return index, index.add_paths(paths)


class MainWindow(QMainWindow):
    image_shown = Signal(str)  # path of the image now on screen
    preview_shown = Signal(str)  # path of an image whose reduced-resolution first picture is on screen
    image_failed = Signal(str)  # why an image could not be opened
    findings_shown = Signal()  # the read's findings and saliency are on screen; evidence and report follow
    read_finished = Signal(bool)  # True: an AI result is on screen; False: refused, failed or cancelled

    def __init__(self, store: EventStore, *, reader_id: str | None = None, auto_read: bool = True,
                 settings: QSettings | None = None):
        """store: where readings live (closed with the window); reader_id: who reads (None: asked when
        the first image opens)."""
        super().__init__()
        load_form(MAIN_FORM, self)
        self.store = store
        self.reader_id = reader_id
        self.reading: Reading | None = None
        self.auto_read = auto_read
        self.settings = settings or viewer_settings()
        self.viewer = ImageViewer()
        child(self, QWidget, "centralWidget").layout().addWidget(self.viewer)
        self.panel = AIPanel(child(self, QWidget, "aiPanelHost"), self.viewer.overlay)
        self.browser = StudyBrowser(child(self, QTreeWidget, "studyTree"), child(self, QListWidget, "recentList"),
                                    self.settings)
        self.loaded: LoadedImage | None = None
        self.result: ReadResult | None = None
        self.last_open_ms: float | None = None  # open request -> first picture painted (preview or full)
        self.full_open_ms: float | None = None  # open request -> full-resolution image on screen
        self.first_result_ms: float | None = None  # read start -> findings and saliency on screen
        self._image_serial = 0
        self._jobs: set[Job] = set()
        self._read_job: Job | None = None
        self._decoder = DecoderProcess()
        self._readout = QLabel()
        self.statusBar().addPermanentWidget(self._readout)
        self._wire()
        self._restore_settings()

    def prepare_read(self) -> None:
        """Load the models, pyradiomics and the knowledge graph in the background (the application does
        this at start-up), so the first AI read of the session is as fast as the others. A failure here
        is left for that read to report, in its own words."""
        def prepare(_context: JobContext) -> None:
            from radassist.pipeline.read import prepare_read

            prepare_read()

        self._start(Job(prepare, "Loading the AI models"))

    def start_decoder(self) -> None:
        """Start the compressed-DICOM helper process now (the application does this once the window is
        shown; tests that never open a compressed image leave it unstarted)."""
        self._decoder.start()

    @property
    def signed(self) -> bool:
        return self.reading is not None and self.reading.signed

    # ======================================================================= wiring
    def action(self, name: str) -> QAction:
        return child(self, QAction, name)

    def _add_focus_report_action(self) -> None:
        """A key to reach the report from anywhere (the form has no such action)."""
        action = QAction("Edit the report (FINDINGS)", self)
        action.setObjectName("actionFocusReport")
        action.setShortcut(QKeySequence(FOCUS_REPORT_SHORTCUT))
        self.addAction(action)
        child(self, QMenu, "menuPanels").addAction(action)
        action.triggered.connect(lambda: self.panel.findings_report.edit.setFocus())

    def _wire(self) -> None:
        a = self.action
        viewer, view, overlay = self.viewer, self.viewer.view, self.viewer.overlay
        handlers: dict[str, Callable[[], object]] = {
            "actionOpenFile": self._ask_files,
            "actionOpenFolder": self._ask_folder,
            "actionSaveScreenshot": self._ask_screenshot,
            "actionQuit": self.close,
            "actionUndo": self.undo,
            "actionRedo": self.redo,
            "actionNextColormap": lambda: self._status(f"Overlay colormap: {overlay.next_colormap()}"),
            "actionFit": view.fit,
            "actionActualSize": viewer.one_to_one,
            "actionZoomIn": lambda: viewer.zoom_by(KEY_ZOOM_STEP),
            "actionZoomOut": lambda: viewer.zoom_by(1.0 / KEY_ZOOM_STEP),
            "actionReset": view.reset,
            "actionClearMarks": viewer.annotations.clear_measurements,
            "actionRunRead": self.run_read,
            "actionCancel": self.cancel,
            "actionAccept": lambda: self.panel.accept_button.click(),  # Agree with the AI's call
            "actionReject": lambda: self.panel.reject_button.click(),  # Disagree with it
            "actionUncertain": lambda: self.panel.uncertain_button.click(),
            "actionNextFinding": lambda: self.panel.select_relative(1),
            "actionPreviousFinding": lambda: self.panel.select_relative(-1),
            "actionAddFinding": self._ask_added_finding,
            "actionSignReport": self.sign_report,
            "actionNextImage": lambda: self._open_neighbour(1),
            "actionPreviousImage": lambda: self._open_neighbour(-1),
            "actionShortcuts": self._show_shortcuts,
            "actionAbout": self._show_about,
        }
        for name, handler in handlers.items():
            a(name).triggered.connect(lambda _checked=False, h=handler: h())
        a("actionSinglePane").toggled.connect(viewer.set_single_pane)
        a("actionToggleOverlay").toggled.connect(overlay.set_visible)
        a("actionInvert").toggled.connect(view.set_invert)
        overlay.changed.connect(lambda: _set_checked(a("actionToggleOverlay"), overlay.visible))
        view.window_changed.connect(lambda: _set_checked(a("actionInvert"), view.invert))

        tools = QActionGroup(self)
        for tool, name in (("navigate", "actionNavigateTool"), ("ruler", "actionRulerTool"),
                           ("box", "actionBoxTool"), ("freehand", "actionFreehandTool")):
            action = a(name)
            tools.addAction(action)
            action.triggered.connect(lambda _checked=False, t=tool: viewer.annotations.set_tool(t))
        a("actionNavigateTool").setChecked(True)
        viewer.annotations.tool_changed.connect(self._tool_changed)
        viewer.annotations.region_finished.connect(self._region_drawn)
        viewer.ctr.corrected.connect(self._ctr_corrected)
        viewer.readout_changed.connect(self._readout.setText)

        a("actionUndo").setEnabled(False)
        a("actionRedo").setEnabled(False)
        a("actionAccept").setText("Agree with the AI's call")
        a("actionReject").setText("Disagree with the AI's call")
        self._add_focus_report_action()

        self.panel.run_requested.connect(self.run_read)
        self.panel.cancel_requested.connect(self.cancel)
        self.panel.sign_requested.connect(self.sign_report)
        self.panel.decision_requested.connect(self.decide)
        for section in self.panel.sections():
            section.sentence_edited.connect(self._sentence_edited)
        self.browser.open_requested.connect(self.open_image)
        self.browser.reopen_requested.connect(lambda path: self.open_paths([path]))

        panels = child(self, QMenu, "menuPanels")
        for dock_name in ("studyDock", "aiDock"):
            panels.addAction(child(self, QDockWidget, dock_name).toggleViewAction())
        panels.addAction(child(self, QToolBar, "mainToolBar").toggleViewAction())
        self._rebuild_recent_menu()

    # ======================================================================= opening images
    def open_paths(self, paths: Iterable[str | Path]) -> None:
        """Add files, folders or DICOMDIRs to the study list (in the background) and open the first image."""
        paths = [str(p) for p in paths]
        if not paths:
            return
        job = Job(lambda _ctx: _index_paths(paths), "Listing the images")
        job.succeeded.connect(lambda found: self._paths_indexed(paths, *found))
        job.failed.connect(lambda message, _expected: self._nothing_opened("Cannot open", message))
        self._start(job)
        self._status("Listing images…")

    def _paths_indexed(self, paths: list[str], index: StudyIndex, images: list[Path]) -> None:
        self.browser.merge(index)
        self._show_study_statuses()
        for path in paths:
            self.browser.remember(path)
        self._rebuild_recent_menu()
        if index.skipped:
            self._status(f"Not listed: {'; '.join(index.skipped[:3])}" + (" …" if len(index.skipped) > 3 else ""))
        if images:
            self.open_image(images[0])
        else:
            self._nothing_opened("Nothing to open", "No image RadAssist can read was found there.")

    def _nothing_opened(self, title: str, message: str) -> None:
        """Listing found no image, or failed: said on screen, and to whoever waits for an image (a screenshot run)."""
        self._report_failure(title, message)
        self.image_failed.emit(message)

    def open_image(self, path: str | Path) -> None:
        """Load one image in the background; when it is on screen, start the AI read (if auto_read).

        Compressed DICOMs decode in a helper process (decode.py explains why); a JPEG 2000 one shows a
        reduced-resolution picture first (radassist.io.preview) and the full image then replaces it in
        the same view."""
        path = Path(path)
        self._leave_current_study()
        self._image_serial += 1
        serial, started = self._image_serial, time.perf_counter()

        decoder = self._decoder

        def load(context: JobContext) -> LoadedImage:
            from radassist.io import read_image

            if not is_compressed_dicom(path):
                return load_for_display(read_image(path))
            preview = decoder.read_preview(path)
            if preview is not None and preview.scale > 1:
                context.deliver_partial(load_for_display(preview.image, preview.scale))
            return load_for_display(decoder.read_image(path))

        job = Job(load, f"Opening {path.name}")
        job.partial.connect(lambda preview: self._preview_loaded(serial, started, preview))
        job.succeeded.connect(lambda loaded: self._image_loaded(serial, started, loaded))
        job.failed.connect(lambda message, _expected: self._image_load_failed(serial, message))
        self.panel.show_busy(f"Opening {path.name}…")
        self._start(job)

    def _show_new_image(self, loaded: LoadedImage, started: float) -> None:
        self.loaded, self.result = loaded, None
        self.viewer.set_image(loaded)
        self.panel.set_result(None)
        self.viewer.repaint()  # paint now, so the time below is open-to-display, not open-to-decoded
        self.last_open_ms = (time.perf_counter() - started) * 1000.0
        self.setWindowTitle(f"RadAssist — {loaded.radiograph.name}")
        self.browser.mark_current(Path(loaded.radiograph.meta.source_path))
        self._rebuild_presets_menu()

    def _preview_loaded(self, serial: int, started: float, preview: LoadedImage) -> None:
        if serial != self._image_serial:
            return
        self._show_new_image(preview, started)
        self.preview_shown.emit(preview.radiograph.meta.source_path)
        self.panel.show_busy(f"Preview at 1/{preview.preview_factor} resolution; decoding the full image…")

    def _image_loaded(self, serial: int, started: float, loaded: LoadedImage) -> None:
        if serial != self._image_serial:
            return
        if self.loaded is not None and self.loaded.is_preview and self.loaded.radiograph.meta.source_path == \
                loaded.radiograph.meta.source_path:
            self.loaded = loaded
            self.viewer.replace_image(loaded)
            self._rebuild_presets_menu()
        else:
            self._show_new_image(loaded, started)
        self.full_open_ms = (time.perf_counter() - started) * 1000.0
        radiograph = loaded.radiograph
        self._open_reading(radiograph)
        notes = "; ".join(radiograph.meta.warnings)
        self._status(f"Opened {radiograph.name} ({radiograph.shape[1]} x {radiograph.shape[0]}) "
                     f"in {self.full_open_ms:.0f} ms" + (f" — {notes}" if notes else ""))
        self.image_shown.emit(radiograph.meta.source_path)
        if self.auto_read:
            self.run_read()
        else:
            self.panel.show_idle("Ready: Ctrl+R runs the AI read.", can_run=True)

    def _image_load_failed(self, serial: int, message: str) -> None:
        if serial != self._image_serial:
            return
        self.panel.show_error(message, can_run=self.loaded is not None)
        self._report_failure("Cannot open image", message)
        self.image_failed.emit(message)

    def _open_neighbour(self, step: int) -> None:
        path = self.browser.neighbour(step)
        if path is None:
            self._status("No further image in the study list.")
        else:
            self.open_image(path)

    def _leave_current_study(self) -> None:
        """Record pending edits of the image being left, close its reading (everything is in the store)
        and drop its read (its result would be stale)."""
        if self.reading is not None:
            if not self.signed:
                self.panel.flush_edits()
            self.reading.close()
            self.reading = None
            self._update_undo_actions()
        if self._read_job is not None:
            self._read_job.cancel()
            self._read_job = None

    def _open_reading(self, radiograph: Radiograph) -> None:
        """The image's reading from the store (as it was left, signed or not), or a new one."""
        if not self._ensure_reader():
            self._status("Not recorded: a reader id is needed to record decisions and sign.")
            return
        reader_id = self.reader_id or ""
        try:
            self.reading = Reading.open(self.store, radiograph, reader_id=reader_id)
        except RadAssistError as exc:
            self._report_failure("The reading cannot be recorded", str(exc))
            return
        self._render(report=False)
        self._show_study_statuses()

    def _ensure_reader(self) -> bool:
        """Ask who reads, once per viewer session (prefilled with the last answer, never the OS login)."""
        if self.reader_id:
            return True
        name, ok = QInputDialog.getText(self, "Reader", "Your reader id (recorded with each decision and the "
                                        "signature):", text=str(self.settings.value(READER_SETTING, "")))
        if ok and name.strip():
            self.reader_id = name.strip()
            self.settings.setValue(READER_SETTING, self.reader_id)
        return bool(self.reader_id)

    def _render(self, *, report: bool) -> None:
        """Draw the reading's state: decisions, added findings, regions, signed; the report with `report`."""
        if self.reading is None:
            return
        state = self.reading.state
        self.panel.show_reading(state, report=report and state.has_ai_result)
        self.viewer.annotations.show_regions(
            [Region.from_geometry(r.region_id, r.label, r.geometry) for r in state.regions.values()])
        self.viewer.show_ctr(self.reading.corrected_measurement(MeasurementKind.CARDIOTHORACIC_RATIO))
        self._update_undo_actions()
        if self.loaded is not None:
            self.setWindowTitle(f"RadAssist — {self.loaded.radiograph.name}" + (" (signed)" if state.signed else ""))

    def _update_undo_actions(self) -> None:
        state = self.reading.state if self.reading is not None else None
        self.action("actionUndo").setEnabled(bool(state and state.can_undo))
        self.action("actionRedo").setEnabled(bool(state and state.can_redo))

    def _show_study_statuses(self) -> None:
        try:
            self.browser.show_statuses(study_statuses(self.store, [str(p) for p in self.browser.images()]))
        except RadAssistError as exc:
            self._status(f"Study status not available: {exc}")

    # ======================================================================= the AI read
    def run_read(self) -> None:
        if self.loaded is None or (self._read_job is not None and not self._read_job.done):
            return
        radiograph, serial, started = self.loaded.radiograph, self._image_serial, time.perf_counter()

        def read(context: JobContext) -> ReadResult:
            from radassist.pipeline.read import ReadOptions, read_radiograph

            return read_radiograph(radiograph, ReadOptions(enforce_qa=False), on_findings=context.deliver_partial)

        job = Job(read, "The AI read")
        job.partial.connect(lambda partial: self._findings_ready(job, serial, started, partial))
        job.succeeded.connect(lambda result: self._read_done(job, serial, started, result))
        job.failed.connect(lambda message, expected: self._read_failed(job, serial, message, expected))
        self._read_job = job
        self.panel.show_busy("AI read running (Esc cancels)…")
        self._start(job)

    def _findings_ready(self, job: Job, serial: int, started: float, partial: ReadResult) -> None:
        """Findings and saliency first (about half the read); decisions wait for the complete result, so
        nothing the radiologist does is overwritten when it arrives."""
        if job is not self._read_job or serial != self._image_serial or not partial.qa.accepted:
            return
        self.first_result_ms = (time.perf_counter() - started) * 1000.0
        self.viewer.set_result(partial)
        self.panel.show_findings_first(partial)
        self._render(report=True)
        self.panel.lock_report(True)  # read-only until the complete result (the reading's draft) is in
        self.panel.show_busy(f"Findings in {self.first_result_ms:.0f} ms; radiomics evidence and draft report…")
        self.findings_shown.emit()

    def _read_done(self, job: Job, serial: int, started: float, result: ReadResult) -> None:
        if job is not self._read_job or serial != self._image_serial:
            return
        self._read_job = None
        elapsed = (time.perf_counter() - started) * 1000.0
        if not result.qa.accepted:
            self.result = None
            self.panel.set_result(None)
            self.panel.show_error(f"Not read: {result.qa.reason}", can_run=False)
            self.read_finished.emit(False)
            return
        self.result = result
        reading = self.reading
        if reading is not None:
            self._guarded(lambda: reading.show_ai_result(result))
        self.viewer.set_result(result)
        self.panel.set_result(result)
        self.panel.set_model_info(result)
        self._render(report=True)
        self.panel.show_idle("Signed: read-only." if self.signed else
                             f"Read in {elapsed:.0f} ms. A agree / R disagree / U uncertain, J / K move, "
                             "E edits the report, Ctrl+Enter signs.", can_run=True)
        self.read_finished.emit(True)

    def _read_failed(self, job: Job, serial: int, message: str, expected: bool) -> None:
        if job is not self._read_job or serial != self._image_serial:
            return
        self._read_job = None
        self.panel.show_error(message if expected else f"{message} — please report this.", can_run=True)
        self._status(message)
        self.read_finished.emit(False)

    def cancel(self) -> None:
        """Esc: stop waiting for the read; else drop the mark being drawn; else back to the navigate tool."""
        annotations = self.viewer.annotations
        if self._read_job is not None and not self._read_job.done:
            self._read_job.cancel()
            self._read_job = None
            self.panel.show_idle("Read cancelled. Ctrl+R runs it again.", can_run=True)
            self.read_finished.emit(False)
        elif annotations.draft is not None:
            annotations.cancel_draft()
        elif annotations.tool != "navigate":
            annotations.set_tool("navigate")

    # ======================================================================= radiologist actions
    def decide(self, label: str, call: Agreement) -> None:
        """Agree / disagree with the AI's call on a finding, or uncertain: recorded, shown; then the next."""
        reading = self.reading
        if reading is None or self.signed:
            return
        if call is Agreement.UNCERTAIN:
            done = self._guarded(lambda: reading.decide(label, Decision.UNCERTAIN))
        else:
            done = self._guarded(lambda: reading.agree(label) if call is Agreement.AGREE else reading.disagree(label))
        self._render(report=False)
        if done:
            self.panel.select_relative(1)

    def add_finding(self, display_name: str) -> None:
        """A finding the AI does not list, named by the radiologist."""
        display_name = display_name.strip()
        label = re.sub(r"[^a-z0-9]+", "_", display_name.lower()).strip("_")
        reading = self.reading
        if not label or reading is None or self.signed:
            return
        if label in self.panel.labels():
            self.panel.select_label(label)
            return
        self._guarded(lambda: reading.add_finding(label, display_name))
        self._render(report=False)
        self.panel.select_label(label)

    def _ctr_corrected(self, before: Measurement, after: Measurement) -> None:
        """The radiologist dragged the CTR lines: part of the reading (undone, redone and reopened like a
        decision); the lines are then drawn from the reading, so a refused correction springs back."""
        reading = self.reading
        if reading is not None and not self.signed and self._guarded(lambda: reading.correct_measurement(before,
                                                                                                         after)):
            self._status(f"Cardiothoracic ratio corrected: {before.value:.2f} -> {after.value:.2f}")
        self._render(report=False)
        if reading is None:
            self.viewer.show_ctr(None)

    def _region_drawn(self, region: Region) -> None:
        reading = self.reading
        if reading is None or self.signed:
            self._render(report=False)  # drops the drawn region: nothing is recorded on a signed reading
            if reading is None:
                self.viewer.annotations.show_regions([])
            return
        region.label = self.panel.selected_label() or "other"
        finding = self.panel.finding(region.label)
        name = finding.display_name if finding else region.label
        self._guarded(lambda: reading.draw_region(region.label, region.geometry()))
        self._render(report=False)
        self._status(f"Region marked for {name}. Select another finding first to mark a different one.")

    def _sentence_edited(self, sentence_id: str, section: Section, before: str, after: str) -> None:
        reading = self.reading
        if reading is None:
            return
        if not self._guarded(lambda: reading.edit_sentence(sentence_id, after, section=section)):
            self._render(report=True)  # show what the reading has, not what was refused
        else:
            self._update_undo_actions()

    def undo(self) -> None:
        self._step(lambda reading: reading.undo(), "Nothing to undo.")

    def redo(self) -> None:
        self._step(lambda reading: reading.redo(), "Nothing to redo.")

    def _step(self, step: Callable[[Reading], bool], nothing: str) -> None:
        reading = self.reading
        if reading is None or self.signed:
            return
        self.panel.flush_edits()  # typing not yet recorded is the newest action
        if not step(reading):
            self._status(nothing)
        self._render(report=True)

    def sign_report(self) -> None:
        reading = self.reading
        if reading is None or self.signed:
            return
        self.panel.flush_edits()
        state = reading.state
        if not (state.section_text(Section.FINDINGS) or state.section_text(Section.IMPRESSION)):
            self.panel.show_error("The report is empty: write FINDINGS or IMPRESSION before signing.",
                                  can_run=self.result is None)
            return
        undecided = [state.findings[label].display_name for label in state.undecided_ai_calls()]
        unchanged = False
        if undecided:
            if not self._confirm_unchanged_draft(undecided):
                self.panel.show_idle(f"Not signed: decide {', '.join(undecided)} first (A agree / R disagree).",
                                     can_run=True)
                return
            unchanged = True
        if self._guarded(lambda: reading.sign(ai_draft_unchanged=unchanged)):
            self._render(report=True)
            self.panel.show_idle("Report signed and stored: read-only now.", can_run=False)
            self._status("Report signed." + (" (AI draft signed unchanged, as you confirmed)" if unchanged else ""))
            self._show_study_statuses()

    def _confirm_unchanged_draft(self, undecided: list[str]) -> bool:
        return _asked_yes(self, "confirmUnchangedDraft", "Sign the AI draft unchanged?",
                          f"The AI flagged {', '.join(undecided)} and you have not decided on it.\n\n"
                          "Sign the AI draft unchanged? The signature records that you did, and the feedback "
                          "export marks it so that the model does not learn from its own output.",
                          "Sign the AI draft unchanged")

    def _confirm_quit_unsigned(self) -> bool:
        name = self.loaded.radiograph.name if self.loaded is not None else "this image"
        return _asked_yes(self, "confirmQuitUnsigned", "Quit with an unsigned reading?",
                          f"Your reading of {name} is not signed. Everything you did is stored and comes back "
                          "when you open the image again.\n\nQuit now?", "Quit (keep the draft)")

    def _guarded(self, call: Callable[[], object]) -> bool:
        """Run a reading call; a refusal (signed, the store is locked, ...) becomes a visible message."""
        try:
            call()
        except RadAssistError as exc:
            self._report_failure("Not recorded", str(exc))
            return False
        return True

    # ======================================================================= view helpers
    def _tool_changed(self, tool: str) -> None:
        name = {"navigate": "actionNavigateTool", "ruler": "actionRulerTool", "box": "actionBoxTool",
                "freehand": "actionFreehandTool"}[tool]
        self.action(name).setChecked(True)

    def _rebuild_presets_menu(self) -> None:
        menu = child(self, QMenu, "menuWindowPresets")
        menu.clear()
        if self.loaded is None:
            return
        for index, preset in enumerate(self.loaded.presets[:9]):
            action = menu.addAction(f"{preset.name}: W {preset.width:g} / L {preset.center:g}")
            action.setShortcut(f"Ctrl+{index + 1}")
            action.triggered.connect(lambda _checked=False, i=index: self.viewer.view.apply_preset(i))

    def _rebuild_recent_menu(self) -> None:
        menu = child(self, QMenu, "menuRecent")
        menu.clear()
        for path in recent_paths(self.settings):
            action = menu.addAction(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_paths([p]))
        menu.setEnabled(bool(menu.actions()))

    # ======================================================================= dialogs
    def _ask_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", "", "Images (*.dcm *.dicom DICOMDIR *.png *.jpg *.jpeg *.tif *.tiff *.nii "
            "*.nii.gz *.mha *.mhd *.nrrd);;All files (*)")
        self.open_paths(files)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder (a DICOMDIR in it is used)")
        if folder:
            self.open_paths([folder])

    def _ask_screenshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save screenshot", "radassist.png", "PNG (*.png)")
        if path:
            self.save_screenshot(path)

    def save_screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not capture_window(self).save(str(path), "PNG"):
            raise RadAssistError(f"the screenshot could not be written to {path}")
        self._status(f"Screenshot saved to {path}")
        return path

    def _ask_added_finding(self) -> None:
        name, ok = QInputDialog.getText(self, "Add finding", "Finding the AI does not list:")
        if ok:
            self.add_finding(name)

    def _show_shortcuts(self) -> None:
        rows = []
        for action in self.findChildren(QAction):
            shortcut = action.shortcut().toString()
            if shortcut and action.objectName().startswith("action"):
                rows.append(f"<tr><td><b>{html.escape(shortcut)}</b></td><td>"
                            f"{html.escape(action.text().replace('&', '').rstrip('…'))}</td></tr>")
        extra = ("<tr><td><b>Wheel</b></td><td>Zoom about the cursor</td></tr>"
                 "<tr><td><b>Right-drag</b></td><td>Window (left/right) and level (up/down)</td></tr>"
                 "<tr><td><b>Middle-drag</b></td><td>Pan</td></tr>"
                 "<tr><td><b>Ctrl+1…9</b></td><td>Window presets</td></tr>")
        box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts",
                          f"<table cellspacing=4>{''.join(sorted(rows))}{extra}</table>", parent=self)
        box.open()

    def _show_about(self) -> None:
        from radassist import __version__

        QMessageBox.about(self, "About RadAssist",
                          f"RadAssist {__version__}: a chest X-ray reading assistant.<br>"
                          "Research use only; not a medical device. The AI's output is a suggestion for a "
                          "radiologist, never a diagnosis.")

    def _report_failure(self, title: str, message: str) -> None:
        """A readable, non-blocking message (the reading session goes on)."""
        self._status(f"{title}: {message}")
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("failureMessage")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def _status(self, message: str) -> None:
        self.statusBar().showMessage(message, STATUS_MESSAGE_MS)

    # ======================================================================= jobs
    def _start(self, job: Job) -> None:
        self._jobs.add(job)
        job.finished.connect(lambda: self._jobs.discard(job))
        job.start()

    # ======================================================================= window state
    def _restore_settings(self) -> None:
        settings = self.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = settings.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        overlay = self.viewer.overlay
        overlay.set_opacity(float(settings.value("overlay/opacity", overlay.opacity)))
        overlay.set_threshold(float(settings.value("overlay/threshold", overlay.threshold)))
        colormap = str(settings.value("overlay/colormap", overlay.colormap))
        if colormap in ("jet", "inferno", "hot"):
            overlay.set_colormap(colormap)
        single = settings.value("view/single_pane", False)
        self.action("actionSinglePane").setChecked(single in (True, "true"))

    def save_settings(self) -> None:
        settings, overlay = self.settings, self.viewer.overlay
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("overlay/opacity", overlay.opacity)
        settings.setValue("overlay/threshold", overlay.threshold)
        settings.setValue("overlay/colormap", overlay.colormap)
        settings.setValue("view/single_pane", self.viewer.single_pane)
        settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        if self.reading is not None and not self.signed:
            self.panel.flush_edits()
            if self.reading.state.has_reader_work and not self._confirm_quit_unsigned():
                event.ignore()
                return
        self._leave_current_study()
        self.save_settings()
        for job in list(self._jobs):
            job.cancel()
        self._decoder.shutdown()
        QThreadPool.globalInstance().waitForDone(JOB_DRAIN_MS)
        self.store.close()
        super().closeEvent(event)

    # ======================================================================= drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)


def _asked_yes(parent: QWidget, name: str, title: str, text: str, yes_text: str) -> bool:
    """Ask a Yes / Cancel question (Cancel the default, Yes labelled by what it does); True when Yes was chosen.
    `name` is the box's object name (tests find the box by it)."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName(name)
    box.button(QMessageBox.StandardButton.Yes).setText(yes_text)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()  # exec() returns a plain int: the clicked button says which
    chosen = box.standardButton(box.clickedButton())
    box.deleteLater()
    return chosen == QMessageBox.StandardButton.Yes


def _set_checked(action: QAction, checked: bool) -> None:
    if action.isChecked() != checked:
        action.blockSignals(True)
        action.setChecked(checked)
        action.blockSignals(False)
