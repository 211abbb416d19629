"""The AI panel: the shared form ui/radassist_panel.ui (also used by the 3D Slicer module) brought to life.

Shows the read's progress, the findings (calibrated probability against its threshold, lung zone,
radiomics evidence), the overlay controls, and the reading (the radiologist's decisions and the
report) as the reading's state says (`show_reading`). It only displays and asks: Agree / Disagree /
Uncertain and sign-off are requests the main window turns into recorded actions of the reading.

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
from radassist.feedback.state import FindingState, SessionState
from radassist.gui.forms import child, load_form
from radassist.gui.overlay import OverlayState
from radassist.gui.report_editor import ReportSection
from radassist.gui.theme import AGREEMENT_COLOURS
from radassist.imaging.display import COLORMAPS
from radassist.results import Finding, ReadResult
from radassist.vocabulary import Agreement, Section

PANEL_FORM = "radassist_panel.ui"
AGREEMENT_MARK = {Agreement.AGREE: "✓ agree", Agreement.DISAGREE: "✗ disagree", Agreement.UNCERTAIN: "? uncertain",
                  Agreement.READER_ONLY: "+ added"}
COLUMN_FINDING, COLUMN_PROBABILITY, COLUMN_ZONE, COLUMN_DECISION = range(4)
_LABEL_ROLE = Qt.ItemDataRole.UserRole
BUSY_TICK_MS = 100
MIN_TABLE_ROWS = 3
DETAILS_HEIGHT_PX = 92
MAX_TABLE_ROWS = 4


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
    decision_requested = Signal(str, object)  # label, Agreement (agree / disagree with the AI call, uncertain)

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
        self.findings_report = ReportSection(child(form, QPlainTextEdit, "reportFindingsEdit"), Section.FINDINGS)
        self.impression_report = ReportSection(child(form, QPlainTextEdit, "reportImpressionEdit"),
                                               Section.IMPRESSION)
        self._add_viewer_widgets()
        # The findings table is sized to its rows (_fit_table_height); spare height goes to the report.
        form.layout().setStretchFactor(child(form, QGroupBox, "reportGroup"), 1)

        self._findings: list[Finding] = []
        self._reading: dict[str, FindingState] = {}  # the reading's findings, as last shown
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
        # "Outside validated use" (QA's domain verdict): above the findings, so nobody reads them without it
        self.domain_notice = self._extra(QLabel, "domainNoticeLabel", lambda w: findings_layout.insertWidget(0, w))
        self.domain_notice.setWordWrap(True)
        self.domain_notice.setMaximumHeight(DETAILS_HEIGHT_PX)  # never pushes the window taller
        self.domain_notice.setStyleSheet("background: #5a4410; color: #ffe0a0; padding: 4px; font-weight: bold;")
        self.domain_notice.setVisible(False)
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
        self.table.setTabKeyNavigation(False)  # Tab leaves the table (J / K move between findings)
        for button, text, tip in (
                (self.accept_button, "Agree (A)", "Agree with the AI's call on the selected finding"),
                (self.reject_button, "Disagree (R)", "Disagree with the AI's call on the selected finding"),
                (self.uncertain_button, "Uncertain (U)", "You cannot tell from this image")):
            button.setText(text)
            button.setToolTip(tip)

    def _wire(self) -> None:
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.sign_button.clicked.connect(self.sign_requested)
        self.accept_button.clicked.connect(lambda: self._request(Agreement.AGREE))
        self.reject_button.clicked.connect(lambda: self._request(Agreement.DISAGREE))
        self.uncertain_button.clicked.connect(lambda: self._request(Agreement.UNCERTAIN))
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
        """Show a result's findings (None clears the panel). The report and the decisions are the
        reading's: `show_reading` draws them."""
        self.status.setStyleSheet("")
        domain = result.qa.domain if result is not None else None
        self.domain_notice.setText(domain.notice if domain is not None and not domain.inside else "")
        self.domain_notice.setToolTip(self.domain_notice.text())
        self.domain_notice.setVisible(domain is not None and not domain.inside)
        self._findings = list(result.findings) if result else []
        self._reading = {}
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
        if result is None:
            for section in self.sections():
                section.load([])
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
                 finding.zone_text,
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
        """As tall as its rows (at least MIN_TABLE_ROWS, at most MAX_TABLE_ROWS: more scroll), so the draft
        report gets the rest of the panel and ten findings do not push the window off a 1000 px screen."""
        rows = min(max(self.table.rowCount(), MIN_TABLE_ROWS), MAX_TABLE_ROWS)
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
        lines.append(finding.zone_explanation)
        lines += [f"• {statement.text}" for statement in finding.evidence]
        return "\n".join(lines)

    def show_reading(self, state: SessionState, *, report: bool) -> None:
        """Draw the reading: decisions (coloured by agreement with the AI's call), the findings the
        reader added, signed or not, and with `report` the report sections as the reading has them."""
        self._reading = dict(state.findings)
        added = [f for f in state.findings.values() if f.added_by_reader]
        for finding in [f for f in self._findings if f.probability != f.probability]:  # reader rows undone
            if finding.label not in self._reading:
                self._remove_reader_row(finding.label)
        for finding in added:
            if self._row_of(finding.label) is None:
                self._add_reader_row(finding.label, finding.display_name)
        for row in range(self.table.rowCount()):
            label = self.table.item(row, COLUMN_FINDING).data(_LABEL_ROLE)
            self._show_decision(row, self._reading.get(label))
        if report:
            for section in self.sections():
                section.load([s for s in state.sentences.values() if s.section is section.section])
        self.lock_report(state.signed)
        self._update_details()

    def _add_reader_row(self, label: str, display_name: str) -> None:
        """A row for a finding the radiologist added (no AI probability)."""
        finding = Finding(label=label, display_name=display_name, probability=float("nan"), threshold=float("nan"),
                          positive=False)
        self._findings.append(finding)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for column, text in enumerate([display_name, "reader", "—", "—"]):
            item = QTableWidgetItem(text)
            item.setData(_LABEL_ROLE, label)
            item.setToolTip("Added by the radiologist")
            self.table.setItem(row, column, item)
        self._fit_table_height()

    def _remove_reader_row(self, label: str) -> None:
        row = self._row_of(label)
        if row is not None:
            self.table.removeRow(row)
            self._fit_table_height()
        self._findings = [f for f in self._findings if f.label != label]

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

    def decision_text(self, label: str) -> str:
        """What the decision column says for a finding ("—" when not reviewed)."""
        row = self._row_of(label)
        return self.table.item(row, COLUMN_DECISION).text() if row is not None else "—"

    def _show_decision(self, row: int, finding: FindingState | None) -> None:
        item = self.table.item(row, COLUMN_DECISION)
        if finding is None or finding.decision is None:
            item.setText("—")
            item.setForeground(self.table.palette().text().color())
            return
        agreement = Agreement.of(finding.decision, finding.ai_positive)
        mark = AGREEMENT_MARK[agreement]
        item.setText(mark if agreement in (Agreement.UNCERTAIN, Agreement.READER_ONLY)
                     else f"{mark}: {finding.decision.value}")
        item.setForeground(AGREEMENT_COLOURS[agreement])

    def _request(self, decision: Agreement) -> None:
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
        parts.append(f"Your decision: {self.decision_text(finding.label).replace('—', 'not yet reviewed')}")
        self.details.setText("<br>".join(parts))

    # ----- report
    def sections(self) -> tuple[ReportSection, ReportSection]:
        return self.findings_report, self.impression_report

    def flush_edits(self) -> None:
        for section in self.sections():
            section.flush()

    def lock_report(self, signed: bool) -> None:
        for section in self.sections():
            section.set_read_only(signed)
        for button in (self.sign_button, self.accept_button, self.reject_button, self.uncertain_button):
            button.setEnabled(not signed)
        self.sign_button.setText("Signed" if signed else "Sign report")
