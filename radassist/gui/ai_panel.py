"""The AI panel: the shared form ui/radassist_panel.ui (also used by the 3D Slicer module) brought to life.

Shows the read's progress, the findings (calibrated probability against its threshold, lung zone,
radiomics evidence, the radiologist's decision), the overlay controls and the draft report. It only
displays and asks: decisions and sign-off are requests the main window turns into undoable, recorded
actions.

Widgets the viewer needs beyond the shared form's contract (cancel button, finding details, overlay
colormap/threshold/visibility) are taken from the form when it has them and added next to their
group otherwise, so the form can grow them without a code change here.
"""

from __future__ import annotations

import html
import json
import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QWidget,
)

from radassist.errors import ModelError
from radassist.gui.forms import child, load_form
from radassist.gui.overlay import OverlayState
from radassist.gui.report_editor import ReportSection, sentence_key
from radassist.gui.theme import DECISION_COLOURS
from radassist.imaging.display import COLORMAPS
from radassist.pipeline.result import Finding, ReadResult

PANEL_FORM = "radassist_panel.ui"
DECISION_TEXT = {"present": "present ✓", "absent": "absent ✗", "uncertain": "uncertain ?", "added": "added +"}
COLUMN_FINDING, COLUMN_PROBABILITY, COLUMN_ZONE, COLUMN_DECISION = range(4)
_LABEL_ROLE = Qt.ItemDataRole.UserRole
BUSY_TICK_MS = 100
MIN_TABLE_ROWS = 3
DETAILS_HEIGHT_PX = 92


def bundled_model_summary() -> str:
    """'model id (version)' of the classifier the next read will use, without loading it."""
    from radassist.inference.registry import active_card_path

    try:
        path = active_card_path("classifier")
        card = json.loads(path.read_text(encoding="utf-8"))
    except ModelError as exc:
        return f"Model: not available ({exc})"
    except FileNotFoundError:
        return f"Model: not installed ({path.name} is missing from {path.parent})"
    except (OSError, ValueError) as exc:
        return f"Model: its card cannot be read ({exc})"
    name = card.get("model_id") or card.get("name") or "classifier"
    version = card.get("version")
    return f"Model: {name}" + (f" (version {version})" if version else "")


class AIPanel(QObject):
    run_requested = Signal()
    cancel_requested = Signal()
    sign_requested = Signal()
    decision_requested = Signal(str, str)  # label, "present" | "absent" | "uncertain"

    def __init__(self, host: QWidget, overlay: OverlayState):
        super().__init__(host)
        self.overlay = overlay
        self.widget = load_form(PANEL_FORM, parent=host)
        host.layout().addWidget(self.widget)
        form = self.widget
        self.model_info = child(form, QLabel, "modelInfoLabel")
        self.run_button = child(form, QPushButton, "runButton")
        self.progress = child(form, QProgressBar, "progressBar")
        self.status = child(form, QLabel, "statusLabel")
        self.table = child(form, QTableWidget, "findingsTable")
        self.accept_button = child(form, QPushButton, "acceptButton")
        self.reject_button = child(form, QPushButton, "rejectButton")
        self.uncertain_button = child(form, QPushButton, "uncertainButton")
        self.overlay_combo = child(form, QComboBox, "overlayFindingCombo")
        self.opacity_slider = child(form, QSlider, "overlayOpacitySlider")
        self.sign_button = child(form, QPushButton, "signButton")
        self.findings_report = ReportSection(child(form, QPlainTextEdit, "reportFindingsEdit"), "FINDINGS")
        self.impression_report = ReportSection(child(form, QPlainTextEdit, "reportImpressionEdit"), "IMPRESSION")
        self._add_viewer_widgets()
        # The findings table is sized to its rows (_fit_table_height); spare height goes to the report.
        form.layout().setStretchFactor(child(form, QGroupBox, "reportGroup"), 1)

        self._findings: list[Finding] = []
        self.decisions: dict[str, str] = {}
        self._busy_stage, self._busy_since = "", 0.0
        self._busy_clock = QTimer(self, interval=BUSY_TICK_MS, timeout=self._tick)
        self._wire()
        self.model_info.setText(bundled_model_summary())
        self.show_idle("Open a chest radiograph to begin.")
        self.set_result(None)

    # ----- building
    def _extra(self, kind: type, name: str, make) -> QWidget:
        """The form's widget called `name` if it has one, else a new one placed by `make(widget)`."""
        found = self.widget.findChild(kind, name)
        if found is not None:
            return found
        widget = kind()
        widget.setObjectName(name)
        make(widget)
        return widget

    def _add_viewer_widgets(self) -> None:
        read_layout = child(self.widget, QGroupBox, "readGroup").layout()
        self.cancel_button = self._extra(QPushButton, "cancelButton", read_layout.addWidget)
        self.cancel_button.setText("Cancel read")
        self.cancel_button.setToolTip("Stop waiting for the running read (Esc)")
        findings_layout = child(self.widget, QGroupBox, "findingsGroup").layout()
        self.details = self._extra(QTextBrowser, "findingDetailsView", lambda w: findings_layout.insertWidget(1, w))
        self.details.setMaximumHeight(DETAILS_HEIGHT_PX)  # scrolls: the draft report needs the height more
        self.details.setFrameShape(QFrame.Shape.NoFrame)
        overlay_layout: QFormLayout = child(self.widget, QGroupBox, "overlayGroup").layout()
        self.colormap_combo = self._extra(QComboBox, "overlayColormapCombo",
                                          lambda w: overlay_layout.addRow("Colormap:", w))
        self.threshold_slider = self._extra(QSlider, "overlayThresholdSlider",
                                            lambda w: overlay_layout.addRow("Threshold:", w))
        self.visible_check = self._extra(QCheckBox, "overlayVisibleCheck", lambda w: overlay_layout.addRow("", w))
        self.colormap_combo.addItems(COLORMAPS)
        self.threshold_slider.setOrientation(Qt.Orientation.Horizontal)
        self.threshold_slider.setRange(0, 95)
        self.threshold_slider.setToolTip("Saliency below this level is not coloured")
        self.visible_check.setText("Show overlay (O)")
        header = self.table.horizontalHeader()
        for column, mode in ((COLUMN_FINDING, QHeaderView.ResizeMode.Stretch),
                             (COLUMN_PROBABILITY, QHeaderView.ResizeMode.ResizeToContents),
                             (COLUMN_ZONE, QHeaderView.ResizeMode.Stretch),
                             (COLUMN_DECISION, QHeaderView.ResizeMode.ResizeToContents)):
            header.setSectionResizeMode(column, mode)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)

    def _wire(self) -> None:
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.sign_button.clicked.connect(self.sign_requested)
        self.accept_button.clicked.connect(lambda: self._request("present"))
        self.reject_button.clicked.connect(lambda: self._request("absent"))
        self.uncertain_button.clicked.connect(lambda: self._request("uncertain"))
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.overlay_combo.currentIndexChanged.connect(
            lambda _: self.overlay.set_label(self.overlay_combo.currentData()))
        self.opacity_slider.valueChanged.connect(lambda v: self.overlay.set_opacity(v / 100.0))
        self.colormap_combo.currentTextChanged.connect(self.overlay.set_colormap)
        self.threshold_slider.valueChanged.connect(lambda v: self.overlay.set_threshold(v / 100.0))
        self.visible_check.toggled.connect(self.overlay.set_visible)
        self.overlay.changed.connect(self._sync_overlay_controls)
        self._sync_overlay_controls()

    def _sync_overlay_controls(self) -> None:
        """Keep the controls in step when the overlay changes elsewhere (keyboard, restored settings)."""
        overlay = self.overlay
        for widget, update in (
            (self.opacity_slider, lambda: self.opacity_slider.setValue(round(overlay.opacity * 100))),
            (self.threshold_slider, lambda: self.threshold_slider.setValue(round(overlay.threshold * 100))),
            (self.colormap_combo, lambda: self.colormap_combo.setCurrentText(overlay.colormap)),
            (self.visible_check, lambda: self.visible_check.setChecked(overlay.visible)),
            (self.overlay_combo, lambda: self.overlay_combo.setCurrentIndex(
                max(self.overlay_combo.findData(overlay.label), 0))),
        ):
            widget.blockSignals(True)
            update()
            widget.blockSignals(False)

    # ----- read status
    def show_busy(self, stage: str) -> None:
        """A moving bar and a ticking clock: the pipeline reports no fractions, so no invented percentages."""
        self.progress.setRange(0, 0)
        self._busy_stage, self._busy_since = stage, time.perf_counter()
        self._tick()
        self._busy_clock.start()
        self.run_button.setEnabled(False)
        self.cancel_button.setVisible(True)

    def _tick(self) -> None:
        self.status.setText(f"{self._busy_stage} {time.perf_counter() - self._busy_since:.1f} s")

    def show_idle(self, message: str, *, can_run: bool = False) -> None:
        self._busy_clock.stop()
        self.progress.setRange(0, 100)
        self.progress.setValue(100 if self._findings else 0)
        self.status.setText(message)
        self.run_button.setEnabled(can_run)
        self.cancel_button.setVisible(False)

    def show_error(self, message: str, *, can_run: bool) -> None:
        self.show_idle(message, can_run=can_run)
        self.status.setStyleSheet("color: #e08070;")

    def set_model_info(self, result: ReadResult) -> None:
        if result.model_id:
            self.model_info.setText(f"Model: {result.model_id} · sha256 {result.model_sha256[:10]}… · "
                                    f"{result.provider or 'CPU'}")

    # ----- findings
    def set_result(self, result: ReadResult | None) -> None:
        """Show a result's findings and draft report (None clears the panel)."""
        self.status.setStyleSheet("")
        self._findings = list(result.findings) if result else []
        self.decisions = {}
        self.table.setRowCount(0)
        for finding in self._findings:
            self._append_row(finding)
        self._fit_table_height()
        self.overlay_combo.blockSignals(True)
        self.overlay_combo.clear()
        for finding in self._findings:
            if finding.label in self.overlay.maps:
                self.overlay_combo.addItem(f"{finding.display_name} ({finding.probability:.2f})", finding.label)
        self.overlay_combo.blockSignals(False)
        self._sync_overlay_controls()
        sentences = list(result.report.sentences) if result and result.report else []
        keyed = [(sentence_key(s, i), s) for i, s in enumerate(sentences)]
        self.findings_report.load([(k, s) for k, s in keyed if s.section == "FINDINGS"])
        self.impression_report.load([(k, s) for k, s in keyed if s.section == "IMPRESSION"])
        self.lock_report(False)
        if self.overlay.label:
            self.select_label(self.overlay.label)
        elif self._findings:
            self.table.selectRow(0)
        self._update_details()

    def show_findings_first(self, result: ReadResult) -> None:
        """Findings and saliency before the evidence and draft report: shown, but decisions, signing and
        report edits stay off until `set_result` brings the complete result (a fraction of a second)."""
        self.set_result(result)
        for section in self.sections():
            section.set_read_only(True)
        for button in (self.sign_button, self.accept_button, self.reject_button, self.uncertain_button):
            button.setEnabled(False)

    def _append_row(self, finding: Finding) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        prefix = "   ↳ " if finding.conditional_on else ""
        relation = "≥" if finding.positive else "<"
        cells = [f"{prefix}{finding.display_name}",
                 f"{finding.probability:.2f} {relation} {finding.threshold:.2f}",
                 finding.zone or "—",
                 "—"]
        tooltip = self._finding_tooltip(finding)
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setData(_LABEL_ROLE, finding.label)
            item.setToolTip(tooltip)
            if finding.positive:
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            self.table.setItem(row, column, item)
        if finding.positive:
            self.table.item(row, COLUMN_PROBABILITY).setForeground(QColor(240, 170, 90))

    def _fit_table_height(self) -> None:
        """As tall as its rows (at least MIN_TABLE_ROWS), so the draft report gets the rest of the panel."""
        rows = max(self.table.rowCount(), MIN_TABLE_ROWS)
        row_height = self.table.verticalHeader().defaultSectionSize()
        height = self.table.horizontalHeader().sizeHint().height() + rows * row_height + 2 * self.table.frameWidth()
        self.table.setFixedHeight(height + 2)

    @staticmethod
    def _finding_tooltip(finding: Finding) -> str:
        verdict = "flagged by the AI" if finding.positive else "not flagged"
        lines = [f"{finding.display_name}: calibrated probability {finding.probability:.2f}, "
                 f"threshold {finding.threshold:.2f} ({verdict})"]
        if finding.conditional_on:
            lines.append(f"Meaningful only if '{finding.conditional_on}' is present")
        lines += [f"• {statement.text}" for statement in finding.evidence]
        return "\n".join(lines)

    def add_reader_finding(self, label: str, display_name: str) -> None:
        """A row for a finding the radiologist added (no AI probability)."""
        finding = Finding(label=label, display_name=display_name, probability=float("nan"), threshold=float("nan"),
                          positive=False)
        self._findings.append(finding)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in enumerate([display_name, "reader", "—", DECISION_TEXT["added"]]):
            item = QTableWidgetItem(text)
            item.setData(_LABEL_ROLE, label)
            item.setToolTip("Added by the radiologist")
            self.table.setItem(row, column, item)
        self._fit_table_height()
        self.set_decision(label, "added")

    def remove_reader_finding(self, label: str) -> None:
        row = self._row_of(label)
        if row is not None:
            self.table.removeRow(row)
            self._fit_table_height()
        self._findings = [f for f in self._findings if f.label != label]
        self.decisions.pop(label, None)

    def finding(self, label: str) -> Finding | None:
        return next((f for f in self._findings if f.label == label), None)

    def labels(self) -> list[str]:
        return [f.label for f in self._findings]

    def _row_of(self, label: str) -> int | None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, COLUMN_FINDING).data(_LABEL_ROLE) == label:
                return row
        return None

    def selected_label(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), COLUMN_FINDING).data(_LABEL_ROLE) if rows else None

    def select_label(self, label: str) -> None:
        row = self._row_of(label)
        if row is not None:
            self.table.selectRow(row)

    def select_relative(self, step: int) -> None:
        count = self.table.rowCount()
        if not count:
            return
        rows = self.table.selectionModel().selectedRows()
        current = rows[0].row() if rows else -1
        self.table.selectRow((current + step) % count)

    def set_decision(self, label: str, decision: str | None) -> None:
        """Show a decision (None = not reviewed); does not record it (the main window does)."""
        if decision is None:
            self.decisions.pop(label, None)
        else:
            self.decisions[label] = decision
        row = self._row_of(label)
        if row is None:
            return
        item = self.table.item(row, COLUMN_DECISION)
        item.setText(DECISION_TEXT.get(decision, "—") if decision else "—")
        colour = DECISION_COLOURS.get(decision or "")
        item.setForeground(colour if colour is not None else self.table.palette().text().color())
        self._update_details()

    def _request(self, decision: str) -> None:
        label = self.selected_label()
        if label is None:
            self.status.setText("Select a finding first (J / K move through the list).")
            return
        self.decision_requested.emit(label, decision)

    def _on_selection(self) -> None:
        label = self.selected_label()
        if label is not None:
            if label in self.overlay.maps:
                self.overlay.set_label(label)
        self._update_details()

    def _update_details(self) -> None:
        label = self.selected_label()
        finding = self.finding(label) if label else None
        if finding is None:
            self.details.setText("")
            return
        if finding.probability != finding.probability:  # NaN: the radiologist's own finding
            self.details.setText(f"<b>{html.escape(finding.display_name)}</b>: added by you.")
            return
        verdict = "flagged" if finding.positive else "not flagged"
        parts = [f"<b>{html.escape(finding.display_name)}</b>: p = {finding.probability:.2f} "
                 f"(threshold {finding.threshold:.2f}, {verdict})"]
        if finding.zone:
            parts.append(f"Saliency peak: {html.escape(finding.zone)}")
        if finding.evidence:
            parts.append("Radiomics evidence:<br>" + "<br>".join(f"• {html.escape(e.text)}" for e in finding.evidence))
        decision = self.decisions.get(finding.label)
        parts.append(f"Your decision: {DECISION_TEXT.get(decision, 'not yet reviewed') if decision else 'not yet reviewed'}")
        self.details.setText("<br>".join(parts))

    # ----- report
    def sections(self) -> tuple[ReportSection, ReportSection]:
        return self.findings_report, self.impression_report

    def report_text(self) -> str:
        return (f"FINDINGS: {self.findings_report.text()}\n\n"
                f"IMPRESSION: {self.impression_report.text()}\n")

    def flush_edits(self) -> None:
        for section in self.sections():
            section.flush()

    def lock_report(self, signed: bool) -> None:
        for section in self.sections():
            section.set_read_only(signed)
        for button in (self.sign_button, self.accept_button, self.reject_button, self.uncertain_button):
            button.setEnabled(not signed)
        self.sign_button.setText("Signed" if signed else "Sign report")
