"""The central area: the radiograph and, beside it, the same view with the AI saliency overlay.

Both panes share one ViewState (so zoom, pan and window/level move together), one frame cache and one
set of marks. The single-pane layout hides the plain pane; the overlay pane then toggles its overlay.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QHBoxLayout, QWidget

from radassist.gui.annotations import Annotations
from radassist.gui.ctr_overlay import CtrOverlay
from radassist.gui.frames import GreyFrames
from radassist.gui.image_pane import ImagePane
from radassist.gui.overlay import OverlayState
from radassist.gui.view_state import LoadedImage, ViewState
from radassist.imaging.ctr import CardiothoracicRatio
from radassist.results import Measurement, MeasurementKind, ReadResult

KEY_ZOOM_STEP = 1.25


class ImageViewer(QWidget):
    readout_changed = Signal(str)  # "x, y: value" under the mouse, for the status bar

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self.view = ViewState()
        self.overlay = OverlayState()
        self.annotations = Annotations()
        self.ctr = CtrOverlay()  # the cardiothoracic ratio lines, on the AI pane beside the overlay
        self._ai_ctr: Measurement | None = None  # the AI's CTR of the result shown
        self._grey = GreyFrames(self.view)
        self.plain_pane = ImagePane(self.view, self._grey, self.annotations)  # the radiograph, no AI marks
        self.plain_pane.setObjectName("plainPane")
        self.saliency_pane = ImagePane(self.view, self._grey, self.annotations, self.overlay, ctr=self.ctr)
        self.saliency_pane.setObjectName("saliencyPane")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plain_pane, 1)
        layout.addWidget(self.saliency_pane, 1)
        for pane in self.panes():
            pane.cursor_moved.connect(self._show_readout)

    def panes(self) -> tuple[ImagePane, ImagePane]:
        return self.plain_pane, self.saliency_pane

    def set_image(self, image: LoadedImage | None) -> None:
        self.annotations.clear()
        self.overlay.set_result(None)
        self._ai_ctr = None
        self.ctr.show(None)
        self.view.set_image(image)

    def replace_image(self, image: LoadedImage) -> None:
        """The full-resolution image for the preview on screen: same view, same marks."""
        self.view.replace_image(image)

    def set_result(self, result: ReadResult | None, corrected_ctr: Measurement | None = None) -> None:
        self.overlay.set_result(result)
        self._ai_ctr = result.measurements.get(MeasurementKind.CARDIOTHORACIC_RATIO) if result else None
        self.show_ctr(corrected_ctr)

    def show_ctr(self, corrected: Measurement | None) -> None:
        """Draw the reader's corrected CTR (the reading's, also before the read is back), else the AI's;
        lines being dragged are left alone."""
        shown = corrected if corrected is not None else self._ai_ctr
        if self.ctr.dragging:
            return
        if shown is None or self.ctr.ctr is None or self.ctr.ctr != CardiothoracicRatio.from_measurement(shown):
            self.ctr.show(shown)

    @property
    def single_pane(self) -> bool:
        return self.plain_pane.isHidden()

    def set_single_pane(self, single: bool) -> None:
        self.plain_pane.setVisible(not single)

    def zoom_by(self, factor: float) -> None:
        self.view.set_zoom(self.view.zoom * factor)

    def one_to_one(self) -> None:
        """One image pixel per physical screen pixel (HiDPI screens have several per logical pixel)."""
        self.view.set_zoom(1.0 / self.saliency_pane.devicePixelRatioF())

    def _show_readout(self, point: QPointF) -> None:
        image = self.view.image
        if image is None:
            return
        column, row = int(point.x()), int(point.y())
        value = image.value_at(row, column)
        self.readout_changed.emit("" if value is None else f"x {column}  y {row}  value {value:g}")
