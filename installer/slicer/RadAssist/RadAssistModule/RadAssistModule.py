"""RadAssist in 3D Slicer: the same core, model, overlays, findings, draft report and feedback log
as the standalone viewer, shown in Slicer's slice views and module panel.

Only what Slicer bundles is imported at file scope (slicer, vtk, qt, ctk, numpy). The RadAssist core
(``radassist``) and its third-party packages are imported inside the methods that need them, after
``ensureRuntime()`` has made sure they are installed (asking the user first).
"""

import importlib
import logging
import os
import tempfile
import traceback

import ctk
import numpy as np
import qt
import slicer
from RadAssistModuleLib import Dependencies
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# onnxruntime, loaded later by the core, writes usage telemetry under ~/.cache/Microsoft unless this is set
# before it loads. Slicer imports this file at start-up, before the core (whose import sets it too).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

#: Names of the widgets of ui/radassist_panel.ui this module uses. The form is shared with the
#: desktop viewer: tests/slicer/test_slicer_ui_contract.py checks every name exists in it and that
#: the code below uses no other ``self.ui.<name>``.
PANEL_WIDGET_NAMES = (
    "modelInfoLabel",
    "runButton",
    "progressBar",
    "statusLabel",
    "findingsTable",
    "acceptButton",
    "rejectButton",
    "uncertainButton",
    "overlayFindingCombo",
    "overlayOpacitySlider",
    "reportFindingsEdit",
    "reportImpressionEdit",
    "signButton",
)
PANEL_FORM_NAME = "radassist_panel.ui"

#: Columns of findingsTable (fixed by the form).
FINDING_COLUMN, PROBABILITY_COLUMN, ZONE_COLUMN, DECISION_COLUMN = range(4)

SALIENCY_COLOR_NODE_NAME = "RadAssistSaliency"
LUNG_COLOR_NODE_NAME = "RadAssistLungs"
#: Colours of the lungs of the core's lung mask (ReadResult.lung_mask; values from radassist.vocabulary.Side).
LUNG_COLOURS = {"right": (0.35, 0.8, 0.45, 1.0), "left": (0.3, 0.55, 0.95, 1.0)}
DEFAULT_OVERLAY_OPACITY = 0.4
#: The module's parameter node keeps only this: the id of the reading on screen. The reading itself
#: (decisions, report text, signature) lives in RadAssist's feedback store, shared with the desktop viewer.
PARAMETER_NODE_NAME = "RadAssist"
READING_SESSION_PARAMETER = "ReadingSessionId"
READER_SETTING_KEY = "RadAssist/ReaderId"
#: Names of the two markups lines of the cardiothoracic ratio (the widest heart and inner thoracic widths).
CTR_LINE_NAMES = {"heart": "RadAssist CTR heart width", "thorax": "RadAssist CTR thoracic width"}
#: The panel's three decision buttons: agree or disagree with the AI's call, or uncertain.
PANEL_DECISIONS = ("agree", "disagree", "uncertain")


#
# RadAssistModule
#


class RadAssistModule(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "RadAssist"
        self.parent.categories = ["Analysis"]
        self.parent.dependencies = []
        self.parent.contributors = ["RadAssist contributors"]
        self.parent.helpText = (
            "Chest X-ray reading assistant. Load a frontal chest radiograph (DICOM, PNG, JPEG, TIFF,"
            " NIfTI, MHA), run the AI read, review each finding with its saliency overlay, agree or"
            " disagree with the AI's call or mark it uncertain, edit and sign the draft report. The"
            " reading lives in RadAssist's local feedback store, shared with the desktop viewer: reopening"
            " the image shows it as it was left, and a signed report stays signed. Not a medical device:"
            " the radiologist decides."
        )
        self.parent.acknowledgementText = (
            "RadAssist is open source (Apache-2.0). Models are trained on public chest X-ray data"
            " sets listed in each model card."
        )


#
# RadAssistModuleWidget
#


class RadAssistModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: the shared RadAssist form plus a Slicer-only file chooser."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.ui = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        self.logic = RadAssistModuleLogic()

        # Slicer-only: choose the radiograph file (the core reads files itself, DICOM included).
        inputBox = ctk.ctkCollapsibleButton()
        inputBox.text = "Radiograph"
        inputLayout = qt.QFormLayout(inputBox)
        self.radiographPathEdit = ctk.ctkPathLineEdit()
        self.radiographPathEdit.filters = ctk.ctkPathLineEdit.Files
        self.radiographPathEdit.settingKey = "RadAssist/LastRadiograph"
        inputLayout.addRow("File:", self.radiographPathEdit)
        self.loadButton = qt.QPushButton("Load radiograph")
        inputLayout.addRow(self.loadButton)
        self.layout.addWidget(inputBox)

        panel = slicer.util.loadUI(panelFormPath(self.resourcePath("UI")))
        self.layout.addWidget(panel)
        self.ui = slicer.util.childWidgetVariables(panel)
        missing = [name for name in PANEL_WIDGET_NAMES if not hasattr(self.ui, name)]
        if missing:
            raise RuntimeError(f"{PANEL_FORM_NAME} lacks the widgets {', '.join(missing)}")
        self.layout.addStretch(1)

        self.ui.overlayOpacitySlider.value = int(round(DEFAULT_OVERLAY_OPACITY * 100))
        self.ui.findingsTable.setHorizontalHeaderLabels(["Finding", "Probability", "Zone", "Your call"])
        self.ui.findingsTable.setTabKeyNavigation(False)  # Tab leaves the table for the next control
        self.ui.acceptButton.text = "Agree"
        self.ui.acceptButton.toolTip = "Agree with the AI's call on the selected finding"
        self.ui.rejectButton.text = "Disagree"
        self.ui.rejectButton.toolTip = "Disagree with the AI's call on the selected finding"

        self.loadButton.connect("clicked(bool)", self.onLoad)
        self.ui.runButton.connect("clicked(bool)", self.onRun)
        self.ui.overlayFindingCombo.connect("currentIndexChanged(int)", self.onOverlayFindingChanged)
        self.ui.overlayOpacitySlider.connect("valueChanged(int)", self.onOverlayOpacityChanged)
        self.ui.acceptButton.connect("clicked(bool)", lambda: self.onDecision("agree"))
        self.ui.rejectButton.connect("clicked(bool)", lambda: self.onDecision("disagree"))
        self.ui.uncertainButton.connect("clicked(bool)", lambda: self.onDecision("uncertain"))
        self.ui.signButton.connect("clicked(bool)", self.onSign)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.updateButtonStates()

    def cleanup(self):
        self.removeObservers()

    def onSceneStartClose(self, caller, event):
        readerId = self.logic.readerId
        self.logic.closeReading()
        self.logic = RadAssistModuleLogic(readerId=readerId)
        self.clearResultDisplay()
        self.updateButtonStates()

    def runtimeReady(self):
        if ensureRuntime():
            return True
        self.ui.statusLabel.text = "RadAssist's Python packages are not installed: it cannot read images yet."
        return False

    def guarded(self, failure, action):
        """Run a panel action. A RadAssist refusal (unreadable image, signed report, ...) is shown as its
        one sentence; anything else also with the traceback under Details. True if it succeeded."""
        from radassist.errors import RadAssistError

        slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            action()
            return True
        except RadAssistError as exc:
            self.ui.statusLabel.text = str(exc)
            slicer.util.errorDisplay(f"{failure}\n\n{exc}")
        except Exception as exc:  # noqa: BLE001 - a panel action must never die silently
            logging.exception(failure)
            slicer.util.errorDisplay(f"{failure}\n\n{exc}", detailedText=traceback.format_exc())
        finally:
            slicer.app.restoreOverrideCursor()
        return False

    # --- actions --------------------------------------------------------------------------------

    def askReaderOnce(self):
        """Who reads: asked once per Slicer session (prefilled with the last answer), never taken from
        the operating system silently. False when the user gives no name."""
        if self.logic.readerId:
            return True
        name = qt.QInputDialog.getText(slicer.util.mainWindow(), "RadAssist: reader",
                                       "Your reader id (recorded with every decision and the signature):",
                                       qt.QLineEdit.Normal, slicer.util.settingsValue(READER_SETTING_KEY, ""))
        name = (name or "").strip()
        if not name:
            self.ui.statusLabel.text = "A reader id is needed to record the reading."
            return False
        qt.QSettings().setValue(READER_SETTING_KEY, name)
        self.logic.readerId = name
        return True

    def onLoad(self):
        path = self.radiographPathEdit.currentPath
        if not path or not self.runtimeReady() or not self.askReaderOnce():
            return

        def load():
            self.clearResultDisplay()
            self.logic.loadRadiograph(path)
            self.logic.showInSliceViews(fit=True)
            self.ui.statusLabel.text = f"Loaded {self.logic.radiograph.name}. Press Run AI read."

        self.guarded("RadAssist could not load this image.", load)
        self.updateButtonStates()

    def onRun(self):
        if self.logic.radiograph is None or not self.runtimeReady():
            return
        self.clearResultDisplay()
        self.ui.progressBar.value = 10
        self.ui.statusLabel.text = "Reading…"
        slicer.app.processEvents()
        if self.guarded("The AI read failed.", lambda: self.showResult(self.logic.runRead())):
            self.ui.progressBar.value = 100
        self.updateButtonStates()

    def showResult(self, result):
        if not result.qa.accepted:
            self.ui.statusLabel.text = f"Not read: {result.qa.reason}"
            return
        self.ui.modelInfoLabel.text = f"Model: {result.model_id} ({result.provider})"
        table = self.ui.findingsTable
        table.setRowCount(len(result.findings))
        for row, finding in enumerate(result.findings):
            cells = (finding.display_name, f"{finding.probability:.0%}", finding.zone_text, "")
            for column, text in enumerate(cells):
                table.setItem(row, column, qt.QTableWidgetItem(text))
            table.item(row, ZONE_COLUMN).setToolTip(finding.zone_explanation)
        wasBlocked = self.ui.overlayFindingCombo.blockSignals(True)
        self.ui.overlayFindingCombo.clear()
        for finding in result.findings:
            if finding.label in result.saliency:
                self.ui.overlayFindingCombo.addItem(finding.display_name, finding.label)
        self.ui.overlayFindingCombo.blockSignals(wasBlocked)
        if self.ui.overlayFindingCombo.count:
            self.onOverlayFindingChanged(0)
        self.logic.startReading()
        self.logic.showCtr()
        self.showReading()

    def showReading(self):
        """Draw the reading as the store has it: decisions, report text, signed or not."""
        from radassist.vocabulary import Section

        state = self.logic.reading.state
        for row, finding in enumerate(self.logic.readResult.findings):
            self.ui.findingsTable.setItem(row, DECISION_COLUMN, qt.QTableWidgetItem(
                decisionText(state.findings[finding.label])))
        self.ui.reportFindingsEdit.setPlainText(state.section_text(Section.FINDINGS))
        self.ui.reportImpressionEdit.setPlainText(state.section_text(Section.IMPRESSION))
        for edit in (self.ui.reportFindingsEdit, self.ui.reportImpressionEdit):
            edit.readOnly = state.signed
        self.ui.signButton.text = "Signed" if state.signed else "Sign report"
        self.ui.statusLabel.text = ("Signed: read-only (an addendum is the only change it takes)." if state.signed
                                    else "Review the findings, then edit and sign the report.")
        self.logic.lockCtr(state.signed)
        self.updateButtonStates()

    def onOverlayFindingChanged(self, index):
        label = self.ui.overlayFindingCombo.itemData(index)
        if label:
            self.logic.showSaliency(label, opacity=self.ui.overlayOpacitySlider.value / 100.0)

    def onOverlayOpacityChanged(self, value):
        self.logic.setOverlayOpacity(value / 100.0)

    def onDecision(self, decision):
        row = self.ui.findingsTable.currentRow()
        if self.logic.readResult is None or row < 0:
            return
        label = self.logic.readResult.findings[row].label
        self.guarded("The decision could not be stored.", lambda: self.logic.recordDecision(label, decision))
        self.showReading()

    def onSign(self):
        findingsText = self.ui.reportFindingsEdit.toPlainText()
        impressionText = self.ui.reportImpressionEdit.toPlainText()
        undecided = self.logic.undecidedAiCalls()
        unchanged = False
        if undecided:
            unchanged = slicer.util.confirmYesNoDisplay(
                "The AI flagged " + ", ".join(undecided) + " and you have not decided on it.\n\n"
                "Sign the AI draft unchanged? The signature records that you did (and RadAssist's feedback"
                " export marks it so that the model does not learn from its own output).",
                windowTitle="RadAssist: sign the AI draft unchanged?")
            if not unchanged:
                return
        if self.guarded("The report could not be stored.",
                        lambda: self.logic.signReport(findingsText, impressionText, aiDraftUnchanged=unchanged)):
            self.showReading()
            self.ui.statusLabel.text = "Report signed and stored."

    # --- view state -----------------------------------------------------------------------------

    def clearResultDisplay(self):
        self.ui.findingsTable.setRowCount(0)
        self.ui.overlayFindingCombo.clear()
        self.ui.reportFindingsEdit.setPlainText("")
        self.ui.reportImpressionEdit.setPlainText("")
        self.ui.progressBar.value = 0

    def updateButtonStates(self):
        hasImage = self.logic.radiograph is not None
        hasResult = self.logic.readResult is not None and self.logic.readResult.qa.accepted
        editable = hasResult and not (self.logic.reading is not None and self.logic.reading.signed)
        self.ui.runButton.enabled = hasImage
        for button in (self.ui.acceptButton, self.ui.rejectButton, self.ui.uncertainButton, self.ui.signButton):
            button.enabled = editable


def decisionText(finding):
    """The decision column: the reader's call and whether it agrees with the AI's."""
    from radassist.vocabulary import Agreement

    if finding.decision is None:
        return ""
    agreement = Agreement.of(finding.decision, finding.ai_positive)
    prefix = {Agreement.AGREE: "agree: ", Agreement.DISAGREE: "disagree: "}.get(agreement, "")
    return prefix + finding.decision.value


def ensureRuntime():
    """True when the RadAssist core and its packages, at the versions it needs, are in Slicer's Python.

    A package that is missing or outside its bounds in Resources/requirements.txt (e.g. the pydicom 2.4
    of Slicer 5.8/5.10 for pydicom>=3.0,<4) is installed after the user agrees: from the offline
    wheelhouse if one is configured or found (RadAssistModuleLib/Dependencies.py), else with Slicer's
    own slicer.pydeps.pip_ensure where this Slicer has it, else slicer.util.pip_install. Never in
    Slicer's testing mode: a test run must not change Slicer's Python, so it fails with the list.
    """
    moduleDirectory = os.path.dirname(os.path.abspath(__file__))
    if Dependencies.makeCoreImportable(moduleDirectory) is None:
        slicer.util.errorDisplay(
            "The RadAssist core was not found beside the module or in a source checkout."
            " Reinstall the RadAssist extension."
        )
        return False
    requirementsPath = os.path.join(moduleDirectory, "Resources", "requirements.txt")
    unmet = Dependencies.unmetRequirements(Dependencies.readRequirements(requirementsPath))
    if not unmet:
        return True
    listed = "\n  ".join(Dependencies.describeUnmet(unmet))
    if slicer.app.testingEnabled():
        logging.error("RadAssist needs these Python packages; testing mode installs nothing:\n  %s", listed)
        return False
    try:
        wheelhouse = Dependencies.findWheelhouse(
            moduleDirectory, settingValue=slicer.util.settingsValue(Dependencies.WHEELHOUSE_SETTING_KEY, "")
        )
    except FileNotFoundError as exc:
        slicer.util.errorDisplay(str(exc))
        return False
    source = f"the offline wheelhouse {wheelhouse}" if wheelhouse else "the Python Package Index (internet)"
    question = (
        "RadAssist needs these Python packages in Slicer's Python:\n\n  "
        + listed
        + f"\n\nInstall them now from {source}? This can take a few minutes."
    )
    if not slicer.util.confirmOkCancelDisplay(question, windowTitle="RadAssist: install packages"):
        return False
    slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
    try:
        manager = Dependencies.slicerPackageManager(slicer)
        if wheelhouse is None and manager is not None:
            manager.pip_ensure(manager.load_requirements(requirementsPath), requester="RadAssist")
        else:
            slicer.util.pip_install(Dependencies.pipInstallArguments(unmet, wheelhouse))
    except Exception as exc:  # noqa: BLE001 - pip fails in many ways; the user must see each of them
        logging.exception("installing RadAssist's packages failed")
        slicer.util.errorDisplay(f"Installing RadAssist's packages failed:\n\n{exc}")
        return False
    finally:
        slicer.app.restoreOverrideCursor()
    importlib.invalidate_caches()  # let this running Python see the packages pip just added
    stillUnmet = Dependencies.unmetRequirements(unmet)
    if stillUnmet:
        slicer.util.errorDisplay("After installing, these packages are still missing or at the wrong version "
                                 "(restart Slicer and try again):\n\n  " + "\n  ".join(Dependencies.describeUnmet(stillUnmet)))
        return False
    return True


def panelFormPath(moduleUiDirectory):
    """The shared form: copied into the module's Resources/UI at build time, or read from the
    source checkout's ui/ folder when the module is loaded straight from the source tree."""
    builtCopy = os.path.join(moduleUiDirectory, PANEL_FORM_NAME)
    if os.path.isfile(builtCopy):
        return builtCopy
    checkout = Dependencies.findSourceCheckout(os.path.dirname(os.path.abspath(__file__)))
    if checkout is None:
        raise RuntimeError(f"{PANEL_FORM_NAME} is missing from {moduleUiDirectory}")
    return str(checkout / "ui" / PANEL_FORM_NAME)


#
# RadAssistModuleLogic
#


class RadAssistModuleLogic(ScriptedLoadableModuleLogic):
    """Everything the module does, usable without the GUI (Python console, scripts, tests).

    Holds the current radiograph, its read result and the MRML nodes that show them:
    the radiograph as a single-slice scalar volume (background), the selected finding's saliency
    map as a second volume with a colour table (foreground, with opacity) and the lung mask as a
    label map (label layer).
    """

    def __init__(self, scene=None, feedbackStore=None, readerId=None):
        """feedbackStore: path of the feedback SQLite store; None = the user's RadAssist store.
        readerId: who reads (the panel asks once per Slicer session)."""
        ScriptedLoadableModuleLogic.__init__(self)
        self.scene = scene if scene is not None else slicer.mrmlScene
        self.feedbackStore = feedbackStore
        self.readerId = readerId
        self.reading = None
        self.radiograph = None
        self.readResult = None
        self.radiographNode = None
        self.saliencyNode = None
        self.lungMaskNode = None
        self.saliencyLabel = None
        self.overlayOpacity = DEFAULT_OVERLAY_OPACITY
        self.ctrLineNodes = {}  # "heart"/"thorax" -> vtkMRMLMarkupsLineNode
        self._store = None

    # --- radiograph -----------------------------------------------------------------------------

    def loadRadiograph(self, path):
        """Read an image file through the core and show it; InputRefused explains any refusal."""
        from radassist.io import read_image

        return self.showRadiograph(read_image(path))

    def showRadiograph(self, radiograph):
        """Put a core Radiograph in the scene as a single-slice scalar volume with its default window."""
        self.closeReading()
        self.radiograph = radiograph
        self.readResult = None
        self.saliencyLabel = None
        self._removeCtrLines()
        for node in (self.saliencyNode, self.lungMaskNode):
            if node is not None and self.scene.IsNodePresent(node):
                self.scene.RemoveNode(node)
        self.saliencyNode = self.lungMaskNode = None
        self.radiographNode = self._addVolume(
            "vtkMRMLScalarVolumeNode", radiograph.name, np.asarray(radiograph.pixels, dtype=np.float32)
        )
        window = radiograph.default_window()
        displayNode = self.radiographNode.GetDisplayNode()
        displayNode.AutoWindowLevelOff()
        displayNode.SetWindowLevel(window.width, window.center)
        return self.radiographNode

    def pixelSpacingRowColumn(self):
        """(row, column) spacing in mm; 1 mm when the file does not say (e.g. plain PNG)."""
        spacing = self.radiograph.meta.pixel_spacing_mm
        return (float(spacing[0]), float(spacing[1])) if spacing else (1.0, 1.0)

    def _ijkToRas(self, shape):
        """`_ijkToRasArray` as the vtkMatrix4x4 a volume node takes."""
        return slicer.util.vtkMatrixFromArray(self._ijkToRasArray(shape))

    def _ijkToRasArray(self, shape):
        """IJK->RAS (4 x 4 numpy) for a (rows, columns) array covering the radiograph's physical extent.

        i runs along columns, j along rows; directions are LPS as Slicer gives 2D images it reads,
        so the image appears upright in the Red slice view. An array coarser than the radiograph
        (e.g. a low-resolution saliency map) gets larger voxels and a half-voxel shift so that
        voxel edges coincide with the radiograph's edges.
        """
        rowSpacing, columnSpacing = self.pixelSpacingRowColumn()
        imageRows, imageColumns = self.radiograph.shape
        scaledRow = rowSpacing * imageRows / shape[0]
        scaledColumn = columnSpacing * imageColumns / shape[1]
        matrix = np.diag([-scaledColumn, -scaledRow, 1.0, 1.0])
        matrix[0, 3] = -(scaledColumn - columnSpacing) / 2.0
        matrix[1, 3] = -(scaledRow - rowSpacing) / 2.0
        return matrix

    def _addVolume(self, className, name, pixels):
        node = self.scene.AddNewNodeByClass(className, name)
        node.SetIJKToRASMatrix(self._ijkToRas(pixels.shape))
        slicer.util.updateVolumeFromArray(node, pixels)
        node.CreateDefaultDisplayNodes()
        return node

    # --- read -----------------------------------------------------------------------------------

    def runRead(self):
        """Run the core's read on the current radiograph and show its lung mask and first saliency map."""
        from radassist.pipeline.read import ReadOptions, read_radiograph

        if self.radiograph is None:
            raise ValueError("load a radiograph before running the read")
        # enforce_qa=False: a QA refusal comes back as result.qa with its reason, for the panel to show.
        return self.showReadResult(read_radiograph(self.radiograph, ReadOptions(enforce_qa=False)))

    def showReadResult(self, result):
        self.closeReading()
        self._removeCtrLines()
        self.readResult = result
        if result.lung_mask is not None:
            if self.lungMaskNode is not None:
                self.scene.RemoveNode(self.lungMaskNode)
            self.lungMaskNode = self._addVolume(
                "vtkMRMLLabelMapVolumeNode",
                f"{self.radiograph.name} lungs",
                np.asarray(result.lung_mask, dtype=np.uint8),
            )
            self.lungMaskNode.GetDisplayNode().SetAndObserveColorNodeID(self._lungColorNode().GetID())
        firstWithMap = next((f.label for f in result.findings if f.label in result.saliency), None)
        if firstWithMap is not None:
            self.showSaliency(firstWithMap)
        self.showInSliceViews()
        return result

    def showSaliency(self, label, opacity=None):
        """Show where the model looked for one finding, as the foreground layer."""
        if self.readResult is None or label not in self.readResult.saliency:
            raise KeyError(f"no saliency map for {label!r}")
        saliency = np.clip(np.asarray(self.readResult.saliency[label], dtype=np.float32), 0.0, 1.0)
        if self.saliencyNode is None:
            self.saliencyNode = self._addVolume(
                "vtkMRMLScalarVolumeNode", f"{self.radiograph.name} saliency", saliency
            )
            displayNode = self.saliencyNode.GetDisplayNode()
            displayNode.SetAndObserveColorNodeID(self._saliencyColorNode().GetID())
            displayNode.AutoWindowLevelOff()
            displayNode.SetWindowLevelMinMax(0.0, 1.0)
        else:
            self.saliencyNode.SetIJKToRASMatrix(self._ijkToRas(saliency.shape))
            slicer.util.updateVolumeFromArray(self.saliencyNode, saliency)
        self.saliencyNode.SetName(f"{self.radiograph.name} saliency: {label}")
        self.saliencyLabel = label
        if opacity is not None:
            self.overlayOpacity = opacity
        self.showInSliceViews()
        return self.saliencyNode

    def setOverlayOpacity(self, opacity):
        self.overlayOpacity = float(np.clip(opacity, 0.0, 1.0))
        slicer.util.setSliceViewerLayers(foregroundOpacity=self.overlayOpacity)

    def showInSliceViews(self, fit=False):
        """Radiograph as background, saliency as foreground, lungs as label layer in every slice view.

        ``fit`` needs Slicer's layout manager (the application), so scripts and tests leave it off.
        """
        slicer.util.setSliceViewerLayers(
            background=self.radiographNode,
            foreground=self.saliencyNode,
            label=self.lungMaskNode,
            foregroundOpacity=self.overlayOpacity,
            fit=fit,
        )

    def _colorTable(self, name, entries):
        """A user colour table, created once per scene. entries: (value, name, (r, g, b, a))."""
        existing = self.scene.GetFirstNodeByName(name)
        if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
            return existing
        node = self.scene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
        node.SetTypeToUser()
        node.SetNumberOfColors(len(entries))
        node.GetLookupTable().SetTableRange(0, len(entries) - 1)
        for value, colorName, (red, green, blue, alpha) in entries:
            node.SetColor(value, colorName, red, green, blue, alpha)
        return node

    def _saliencyColorNode(self):
        """256-step heat ramp (dark red -> yellow -> white), transparent where saliency is low."""
        entries = []
        for index in range(256):
            t = index / 255.0
            red, green, blue = min(1.0, 2.0 * t + 0.2), max(0.0, 2.0 * t - 0.6), max(0.0, 3.0 * t - 2.0)
            entries.append((index, f"{t:.2f}", (red, min(green, 1.0), min(blue, 1.0), min(1.0, 2.0 * t))))
        return self._colorTable(SALIENCY_COLOR_NODE_NAME, entries)

    def _lungColorNode(self):
        from radassist.vocabulary import Side

        entries = [(0, "background", (0.0, 0.0, 0.0, 0.0))]
        entries += [(side.lung_mask_value, f"{side.value} lung", LUNG_COLOURS[side.value]) for side in Side]
        return self._colorTable(LUNG_COLOR_NODE_NAME, entries)

    # --- cardiothoracic ratio: two lines the radiologist can drag ----------------------------------

    def ctrMeasurement(self):
        """The CTR the reading stands on: the reader's correction when there is one, else the AI's; None
        when the read measured none (no heart or no two lungs found)."""
        from radassist.results import MeasurementKind

        if self.readResult is None:
            return None
        kind = MeasurementKind.CARDIOTHORACIC_RATIO
        corrected = self.reading.corrected_measurement(kind) if self.reading is not None else None
        return corrected or self.readResult.measurements.get(kind)

    def showCtr(self):
        """Draw the CTR as two markups lines (the heart width and the inner thoracic width, in the slice
        views with the radiograph), named with the ratio and the AP caveat. Dragging a line's end is a
        correction of the measurement, recorded in the reading like any other action (`onCtrLineMoved`)."""
        from radassist.imaging.ctr import CardiothoracicRatio

        measurement = self.ctrMeasurement()
        if measurement is None:
            self._removeCtrLines()
            return None
        ctr = CardiothoracicRatio.from_measurement(measurement)
        title = f"CTR {ctr.ratio:.2f}" + (f" ({ctr.note})" if ctr.note else "")
        for part, line in (("heart", ctr.heart), ("thorax", ctr.thorax)):
            node = self.ctrLineNodes.get(part)
            if node is None or not self.scene.IsNodePresent(node):
                node = self.scene.AddNewNodeByClass("vtkMRMLMarkupsLineNode", CTR_LINE_NAMES[part])
                node.CreateDefaultDisplayNodes()
                node.AddObserver(slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent, self.onCtrLineMoved)
                self.ctrLineNodes[part] = node
            # points moved in place, node and points kept: this also runs inside the node's own end-of-drag event
            for index, (row, column) in enumerate(line.end_points):
                if index < node.GetNumberOfControlPoints():
                    node.SetNthControlPointPositionWorld(index, *self._pixelToRas(row, column))
                else:
                    node.AddControlPointWorld(self._pixelToRas(row, column))
            node.SetDescription(title)
        self.lockCtr(self.reading is not None and self.reading.signed)
        return measurement

    def lockCtr(self, locked):
        """A signed reading's CTR lines cannot be dragged."""
        for node in self.ctrLineNodes.values():
            node.SetLocked(bool(locked))

    def onCtrLineMoved(self, caller=None, event=None):
        """A line end was dropped: record the corrected CTR (each line kept horizontal, at the mean row of
        its ends) and redraw the lines as the reading now has them."""
        from radassist.imaging.ctr import CardiothoracicRatio, HorizontalLine

        before = self.ctrMeasurement()
        if before is None or set(self.ctrLineNodes) != {"heart", "thorax"}:
            return
        if self.reading is not None and self.reading.signed:  # locked; a script may still move a point
            self.showCtr()
            return
        lines = {part: HorizontalLine.through([self._rasToPixel(node.GetNthControlPointPositionWorld(index))
                                               for index in range(2)])
                 for part, node in self.ctrLineNodes.items()}
        if min(line.width for line in lines.values()) < 2:
            self.showCtr()  # a collapsed line measures nothing: back to the standing measurement
            return
        after = CardiothoracicRatio(lines["heart"], lines["thorax"], before.note).as_measurement()
        if after.points != before.points:
            self.startReading().correct_measurement(before, after)
        self.showCtr()

    def _removeCtrLines(self):
        for node in self.ctrLineNodes.values():
            if self.scene.IsNodePresent(node):
                self.scene.RemoveNode(node)
        self.ctrLineNodes = {}

    def _pixelToRas(self, row, column):
        """A (row, column) point of the radiograph in the RAS space its volume is shown in."""
        ras = self._ijkToRasArray(self.radiograph.shape) @ np.array([column, row, 0.0, 1.0])
        return [float(ras[0]), float(ras[1]), float(ras[2])]

    def _rasToPixel(self, ras):
        ijk = np.linalg.solve(self._ijkToRasArray(self.radiograph.shape), np.array([ras[0], ras[1], ras[2], 1.0]))
        return float(ijk[1]), float(ijk[0])

    # --- the reading (RadAssist's core Reading: the same one the desktop viewer shows) -------------

    def parameterNode(self):
        """The module's parameter node: it keeps only the reading's session id."""
        node = self.scene.GetFirstNodeByName(PARAMETER_NODE_NAME)
        if node is None or not node.IsA("vtkMRMLScriptedModuleNode"):
            node = self.scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode", PARAMETER_NODE_NAME)
            node.SetAttribute("ModuleName", "RadAssistModule")
        return node

    def startReading(self):
        """Open the reading of the current image and read result: the image's reading from the store when
        there is one (the same state as left, here or in the desktop viewer; signed stays signed), else a
        new one. The recording methods call it themselves if needed."""
        from radassist.feedback import EventStore
        from radassist.feedback.reading import Reading

        if self.readResult is None:
            raise ValueError("run the read before recording feedback")
        if self.reading is None:
            if self._store is None:
                self._store = EventStore(self.feedbackStore)
            self.reading = Reading.open(self._store, self.radiograph, reader_id=self.readerId or "")
            self.reading.show_ai_result(self.readResult)
            self.parameterNode().SetParameter(READING_SESSION_PARAMETER, self.reading.session_id)
        return self.reading

    def recordDecision(self, label, decision):
        """The radiologist's call on one finding: 'agree' or 'disagree' with the AI, or 'uncertain'."""
        from radassist.vocabulary import Decision

        if decision not in PANEL_DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(PANEL_DECISIONS)}, not {decision!r}")
        reading = self.startReading()
        if decision == "agree":
            reading.agree(label)
        elif decision == "disagree":
            reading.disagree(label)
        else:
            reading.decide(label, Decision.UNCERTAIN)

    def undecidedAiCalls(self):
        """Display names of the findings the AI flagged that have no decision yet."""
        state = self.startReading().state
        return [state.findings[label].display_name for label in state.undecided_ai_calls()]

    def signReport(self, findingsText, impressionText, aiDraftUnchanged=False):
        """Record the panel's report text (AI sentences kept verbatim keep their provenance) and sign it.
        Refused while a flagged finding is undecided, unless aiDraftUnchanged (the reader confirmed)."""
        from radassist.vocabulary import Section

        reading = self.startReading()
        reading.set_section_text(Section.FINDINGS, findingsText)
        reading.set_section_text(Section.IMPRESSION, impressionText)
        reading.sign(ai_draft_unchanged=aiDraftUnchanged)

    def closeReading(self):
        """Release the feedback store (everything is recorded already; reopening the image resumes it)."""
        if self.reading is not None:
            self.reading.close()
            self.reading = None
        if self._store is not None:
            self._store.close()
            self._store = None


#
# RadAssistModuleTest
#


class RadAssistModuleTest(ScriptedLoadableModuleTest):
    """Run inside Slicer (Reload and Test, or Slicer's CI via ctest): the Logic on a real read."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ReadShowsVolumesAndLogsFeedback()

    def test_ReadShowsVolumesAndLogsFeedback(self):
        self.assertTrue(ensureRuntime(), "the RadAssist core or its packages are not available")
        from radassist.feedback import EventStore
        from radassist.paths import resources_dir

        self.delayDisplay("Reading a bundled sample radiograph")
        store = os.path.join(tempfile.mkdtemp(prefix="RadAssistTest"), "feedback.sqlite")  # not the user's store
        logic = RadAssistModuleLogic(feedbackStore=store, readerId="slicer-self-test")
        volume = logic.loadRadiograph(str(resources_dir() / "samples" / "adult_covid19_hannover.png"))
        rows, columns = logic.radiograph.shape
        self.assertEqual(volume.GetImageData().GetDimensions(), (columns, rows, 1))
        result = logic.runRead()
        self.assertTrue(result.qa.accepted, result.qa.reason)
        self.assertEqual(logic.lungMaskNode.GetClassName(), "vtkMRMLLabelMapVolumeNode")
        self.assertIsNotNone(logic.saliencyNode)
        compositeNode = slicer.mrmlScene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
        self.assertEqual(compositeNode.GetForegroundVolumeID(), logic.saliencyNode.GetID())
        for finding in result.findings:
            logic.recordDecision(finding.label, "agree")
        logic.signReport("Lungs are clear.", "No acute cardiopulmonary abnormality.")
        with EventStore(store) as events:
            types = [event.type.value for event in events.events()]
        self.assertEqual(types.count("report_signed"), 1)
        self.assertEqual(types[:2], ["study_opened", "ai_result_shown"])
        logic.closeReading()
        self.delayDisplay("Test passed")
