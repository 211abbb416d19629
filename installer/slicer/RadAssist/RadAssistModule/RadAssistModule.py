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
#: Lung-mask values of the core (ReadResult.lung_mask) and how Slicer shows them.
LUNG_LABELS = (
    (0, "background", (0.0, 0.0, 0.0, 0.0)),
    (1, "right lung", (0.35, 0.8, 0.45, 1.0)),
    (2, "left lung", (0.3, 0.55, 0.95, 1.0)),
)
DEFAULT_OVERLAY_OPACITY = 0.4
#: Panel decision -> FeedbackSession method (radassist.feedback).
FEEDBACK_DECISIONS = {"accept": "accept", "reject": "reject", "uncertain": "mark_uncertain"}


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
            " NIfTI, MHA), run the AI read, review each finding with its saliency overlay, accept,"
            " reject or mark it uncertain, edit and sign the draft report. Every decision and the"
            " signed text are stored in RadAssist's local feedback store. Not a medical device:"
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
        self.ui.findingsTable.setHorizontalHeaderLabels(["Finding", "Probability", "Zone", "Decision"])

        self.loadButton.connect("clicked(bool)", self.onLoad)
        self.ui.runButton.connect("clicked(bool)", self.onRun)
        self.ui.overlayFindingCombo.connect("currentIndexChanged(int)", self.onOverlayFindingChanged)
        self.ui.overlayOpacitySlider.connect("valueChanged(int)", self.onOverlayOpacityChanged)
        self.ui.acceptButton.connect("clicked(bool)", lambda: self.onDecision("accept"))
        self.ui.rejectButton.connect("clicked(bool)", lambda: self.onDecision("reject"))
        self.ui.uncertainButton.connect("clicked(bool)", lambda: self.onDecision("uncertain"))
        self.ui.signButton.connect("clicked(bool)", self.onSign)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.updateButtonStates()

    def cleanup(self):
        self.removeObservers()

    def onSceneStartClose(self, caller, event):
        self.logic.closeFeedbackSession()
        self.logic = RadAssistModuleLogic()
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

    def onLoad(self):
        path = self.radiographPathEdit.currentPath
        if not path or not self.runtimeReady():
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
            cells = (finding.display_name, f"{finding.probability:.0%}", finding.zone or "", "")
            for column, text in enumerate(cells):
                table.setItem(row, column, qt.QTableWidgetItem(text))
        wasBlocked = self.ui.overlayFindingCombo.blockSignals(True)
        self.ui.overlayFindingCombo.clear()
        for finding in result.findings:
            if finding.label in result.saliency:
                self.ui.overlayFindingCombo.addItem(finding.display_name, finding.label)
        self.ui.overlayFindingCombo.blockSignals(wasBlocked)
        report = result.report
        self.ui.reportFindingsEdit.setPlainText(report.section_text("FINDINGS") if report else "")
        self.ui.reportImpressionEdit.setPlainText(report.section_text("IMPRESSION") if report else "")
        if self.ui.overlayFindingCombo.count:
            self.onOverlayFindingChanged(0)
        self.logic.startFeedbackSession()
        self.ui.statusLabel.text = "Review the findings, then edit and sign the report."

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
        if self.guarded("The decision could not be stored.", lambda: self.logic.recordDecision(label, decision)):
            self.ui.findingsTable.setItem(row, DECISION_COLUMN, qt.QTableWidgetItem(decision))

    def onSign(self):
        findingsText = self.ui.reportFindingsEdit.toPlainText()
        impressionText = self.ui.reportImpressionEdit.toPlainText()
        if self.guarded("The report could not be stored.", lambda: self.logic.signReport(findingsText, impressionText)):
            self.ui.statusLabel.text = "Report signed and stored as feedback."
        self.updateButtonStates()

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
        self.ui.runButton.enabled = hasImage
        for button in (self.ui.acceptButton, self.ui.rejectButton, self.ui.uncertainButton, self.ui.signButton):
            button.enabled = hasResult


def ensureRuntime():
    """True when the RadAssist core and its packages can be imported in Slicer's Python.

    On first use the missing packages are installed with slicer.util.pip_install, after the user
    agrees, from the offline wheelhouse if one is configured or found (see RadAssistModuleLib/
    Dependencies.py), else from PyPI. In Slicer's testing mode the confirmation is skipped (True).
    """
    moduleDirectory = os.path.dirname(os.path.abspath(__file__))
    if Dependencies.makeCoreImportable(moduleDirectory) is None:
        slicer.util.errorDisplay(
            "The RadAssist core was not found beside the module or in a source checkout."
            " Reinstall the RadAssist extension."
        )
        return False
    requirements = Dependencies.readRequirements(os.path.join(moduleDirectory, "Resources", "requirements.txt"))
    missing = Dependencies.missingRequirements(requirements)
    if not missing:
        return True
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
        + "\n  ".join(missing)
        + f"\n\nInstall them now from {source}? This can take a few minutes."
    )
    if not slicer.util.confirmOkCancelDisplay(question, windowTitle="RadAssist: install packages"):
        return False
    slicer.app.setOverrideCursor(qt.Qt.WaitCursor)
    try:
        slicer.util.pip_install(Dependencies.pipInstallArguments(missing, wheelhouse))
    except Exception as exc:  # noqa: BLE001 - pip fails in many ways; the user must see each of them
        logging.exception("pip_install failed")
        slicer.util.errorDisplay(f"Installing RadAssist's packages failed:\n\n{exc}")
        return False
    finally:
        slicer.app.restoreOverrideCursor()
    importlib.invalidate_caches()  # let this running Python see the packages pip just added
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

    def __init__(self, scene=None, feedbackStore=None):
        """feedbackStore: path of the feedback SQLite store; None = the user's RadAssist store."""
        ScriptedLoadableModuleLogic.__init__(self)
        self.scene = scene if scene is not None else slicer.mrmlScene
        self.feedbackStore = feedbackStore
        self.radiograph = None
        self.readResult = None
        self.radiographNode = None
        self.saliencyNode = None
        self.lungMaskNode = None
        self.saliencyLabel = None
        self.overlayOpacity = DEFAULT_OVERLAY_OPACITY
        self._feedback = None

    # --- radiograph -----------------------------------------------------------------------------

    def loadRadiograph(self, path):
        """Read an image file through the core and show it; InputRefused explains any refusal."""
        from radassist.io import read_image

        return self.showRadiograph(read_image(path))

    def showRadiograph(self, radiograph):
        """Put a core Radiograph in the scene as a single-slice scalar volume with its default window."""
        self.closeFeedbackSession()
        self.radiograph = radiograph
        self.readResult = None
        self.saliencyLabel = None
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
        """IJK->RAS for a (rows, columns) array covering the radiograph's physical extent.

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
        return slicer.util.vtkMatrixFromArray(matrix)

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
        self.closeFeedbackSession()
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
        return self._colorTable(LUNG_COLOR_NODE_NAME, LUNG_LABELS)

    # --- feedback -------------------------------------------------------------------------------

    def startFeedbackSession(self):
        """Open the feedback session of the current read (same core API and store as the desktop viewer):
        records the study and the AI result as shown. Called when the result is displayed; the
        recording methods call it themselves if needed."""
        if self.readResult is None:
            raise ValueError("run the read before recording feedback")
        if self._feedback is None:
            from radassist.feedback import FeedbackSession

            session = FeedbackSession(self.feedbackStore)
            session.open_study(self.radiograph)
            session.ai_result_shown(self.readResult)
            self._feedback = session
        return self._feedback

    def recordDecision(self, label, decision):
        """Store the radiologist's decision on one finding: 'accept', 'reject' or 'uncertain'."""
        if decision not in FEEDBACK_DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(FEEDBACK_DECISIONS)}, not {decision!r}")
        session = self.startFeedbackSession()
        return getattr(session, FEEDBACK_DECISIONS[decision])(label)

    def signReport(self, findingsText, impressionText):
        """Store the radiologist's final report (the core scrubs names and ids, and later turns the
        text back into labels); laid out as the core's DraftReport.text() lays out a draft."""
        from radassist.pipeline.result import DraftReport, ReportSentence

        final = DraftReport([
            ReportSentence("FINDINGS", findingsText.strip(), None, None, None, None),
            ReportSentence("IMPRESSION", impressionText.strip(), None, None, None, None),
        ])
        return self.startFeedbackSession().sign(final.text())

    def closeFeedbackSession(self):
        """Release the feedback store (what was recorded stays; an unsigned session can be resumed)."""
        if self._feedback is not None:
            self._feedback.close()
            self._feedback = None


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
        logic = RadAssistModuleLogic(feedbackStore=store)
        volume = logic.loadRadiograph(str(resources_dir() / "samples" / "adult_covid19_hannover.png"))
        rows, columns = logic.radiograph.shape
        self.assertEqual(volume.GetImageData().GetDimensions(), (columns, rows, 1))
        result = logic.runRead()
        self.assertTrue(result.qa.accepted, result.qa.reason)
        self.assertEqual(logic.lungMaskNode.GetClassName(), "vtkMRMLLabelMapVolumeNode")
        self.assertIsNotNone(logic.saliencyNode)
        compositeNode = slicer.mrmlScene.GetNthNodeByClass(0, "vtkMRMLSliceCompositeNode")
        self.assertEqual(compositeNode.GetForegroundVolumeID(), logic.saliencyNode.GetID())
        logic.recordDecision(result.findings[0].label, "accept")
        logic.signReport("Lungs are clear.", "No acute cardiopulmonary abnormality.")
        with EventStore(store) as events:
            types = [event.type.value for event in events.events()]
        self.assertEqual(types, ["study_opened", "ai_result_shown", "finding_accepted", "report_signed"])
        logic.closeFeedbackSession()
        self.delayDisplay("Test passed")
