"""One image pane: paints the shared view (radiograph, optional saliency layer, marks) and turns mouse
input into view changes, PACS style: wheel zooms about the cursor, right-drag sets window/level,
middle-drag (or left-drag with the navigate tool) pans, left-drag with a tool draws a mark,
double-click fits.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen, QPolygonF, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from radassist.gui.annotations import Annotations, Measurement, Region
from radassist.gui.ctr_overlay import GRAB_DISTANCE, CtrOverlay
from radassist.gui.frames import GreyFrames, OverlayFrames
from radassist.gui.overlay import OverlayState
from radassist.gui.theme import ANNOTATION_COLOUR, REGION_COLOUR
from radassist.gui.view_state import ViewState
from radassist.imaging.display import ViewGeometry

WHEEL_ZOOM_STEP = 1.2  # zoom factor per wheel notch
_TEXT = QColor(230, 230, 230)
_HINT = QColor(140, 140, 145)


class ImagePane(QWidget):
    cursor_moved = Signal(QPointF)  # image coordinates under the mouse (x = column, y = row)

    def __init__(self, view: ViewState, grey: GreyFrames, annotations: Annotations,
                 overlay: OverlayState | None = None, parent: QWidget | None = None, ctr: CtrOverlay | None = None):
        """`overlay` given: this is the saliency pane (it draws the colour layer when the overlay is on);
        `ctr`: the cardiothoracic ratio lines, drawn and draggable on this pane."""
        super().__init__(parent)
        self.view, self._grey, self.annotations, self.overlay = view, grey, annotations, overlay
        self.ctr = ctr
        self._overlay_frames = OverlayFrames() if overlay is not None else None
        self._drag: tuple[Qt.MouseButton, QPointF] | None = None
        self._drawing = False
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(160, 160)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        for signal in (view.geometry_changed, view.window_changed, view.image_changed, annotations.changed):
            signal.connect(self.update)
        if overlay is not None:
            overlay.changed.connect(self.update)
        if ctr is not None:
            ctr.changed.connect(self.update)

    # ----- coordinates
    def view_geometry(self) -> ViewGeometry:
        return self.view.geometry(QSizeF(self.size()), self.devicePixelRatioF())

    def to_image(self, point: QPointF) -> QPointF:
        """Pane (logical px) -> image coordinates; pixel (row r, column c) spans [c, c+1) x [r, r+1)."""
        geometry, ratio = self.view_geometry(), self.devicePixelRatioF()
        return QPointF(point.x() * ratio / geometry.scale + geometry.origin_x,
                       point.y() * ratio / geometry.scale + geometry.origin_y)

    def to_pane(self, point: QPointF, geometry: ViewGeometry | None = None) -> QPointF:
        geometry, ratio = geometry or self.view_geometry(), self.devicePixelRatioF()
        return QPointF((point.x() - geometry.origin_x) * geometry.scale / ratio,
                       (point.y() - geometry.origin_y) * geometry.scale / ratio)

    # ----- painting
    def paintEvent(self, event) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        if self.view.image is None:
            painter.fillRect(self.rect(), Qt.GlobalColor.black)
            painter.setPen(_HINT)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Open a chest radiograph\n(File > Open, or drop a file here)")
            return
        geometry, ratio = self.view_geometry(), self.devicePixelRatioF()
        image, rect = self._grey.frame(geometry)
        self._fill_around(painter, rect, ratio)
        self._blit(painter, image, rect, ratio)
        if self.overlay is not None and self._overlay_frames is not None:
            saliency = self.overlay.current_map()
            if saliency is not None:
                layer, layer_rect = self._overlay_frames.frame(
                    geometry, saliency, (self.overlay.serial, self.overlay.label),
                    self.overlay.colormap, self.overlay.threshold)
                painter.setOpacity(self.overlay.opacity)
                self._blit(painter, layer, layer_rect, ratio)
                painter.setOpacity(1.0)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        self._paint_marks(painter, geometry)
        if self.ctr is not None:
            self.ctr.paint(painter, lambda point: self.to_pane(point, geometry))
        self._paint_corner_text(painter)

    def _fill_around(self, painter: QPainter, rect: tuple[int, int, int, int], ratio: float) -> None:
        """Black outside the image only (filling the whole pane first costs as much as the image blit)."""
        outer = QRectF(self.rect())
        x, y, w, h = (value / ratio for value in rect)
        for band in (QRectF(outer.left(), outer.top(), outer.width(), y),
                     QRectF(outer.left(), y + h, outer.width(), outer.bottom() + 1 - (y + h)),
                     QRectF(outer.left(), y, x, h),
                     QRectF(x + w, y, outer.right() + 1 - (x + w), h)):
            if band.width() > 0 and band.height() > 0:
                painter.fillRect(band, Qt.GlobalColor.black)

    @staticmethod
    def _blit(painter: QPainter, image, rect: tuple[int, int, int, int], ratio: float) -> None:
        """Device pixels 1:1 (no scaling in Qt: the sample already has one value per device pixel)."""
        if image is None:
            return
        image.setDevicePixelRatio(ratio)
        painter.drawImage(QPointF(rect[0] / ratio, rect[1] / ratio), image)

    def _paint_marks(self, painter: QPainter, geometry: ViewGeometry) -> None:
        spacing = self.view.image.radiograph.meta.pixel_spacing_mm if self.view.image else None
        marks = [*self.annotations.measurements, *self.annotations.regions]
        if self.annotations.draft is not None:
            marks.append(self.annotations.draft)
        for mark in marks:
            if isinstance(mark, Measurement):
                start, end = self.to_pane(mark.start, geometry), self.to_pane(mark.end, geometry)
                painter.setPen(QPen(ANNOTATION_COLOUR, 1.5))
                painter.drawLine(start, end)
                for tip in (start, end):
                    painter.drawEllipse(tip, 2.5, 2.5)
                text = mark.label(spacing)
                width = painter.fontMetrics().horizontalAdvance(text)
                x = end.x() + 6 if end.x() + 6 + width <= self.width() else end.x() - 6 - width  # stay on the pane
                painter.drawText(QPointF(x, end.y() - 6), text)
            elif isinstance(mark, Region):
                painter.setPen(QPen(REGION_COLOUR, 1.5, Qt.PenStyle.DashLine))
                points = [self.to_pane(p, geometry) for p in mark.points]
                if mark.kind == "rectangle":
                    painter.drawRect(QRectF(points[0], points[-1]).normalized())
                else:
                    path = QPainterPath()
                    path.addPolygon(QPolygonF(points))
                    if mark is not self.annotations.draft:
                        path.closeSubpath()
                    painter.drawPath(path)
                if mark.label:
                    painter.drawText(QRectF(points[0], points[-1]).normalized().topLeft() + QPointF(2, -4),
                                     mark.label)

    def _paint_corner_text(self, painter: QPainter) -> None:
        view = self.view
        painter.setPen(_TEXT)
        margin = 8
        box = self.rect().adjusted(margin, margin, -margin, -margin)
        preset = f" ({view.preset_name})" if view.preset_name else ""
        lines = [f"W {view.window_width:.0f}  L {view.window_center:.0f}{preset}",
                 f"Zoom {view.zoom * 100:.0f}%" + ("  inverted" if view.invert else "")]
        painter.drawText(box, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom, "\n".join(lines))
        if self.overlay is not None:
            if self.overlay.current_map() is not None:
                caption = f"AI saliency: {self.overlay.label}"
            elif self.overlay.maps and not self.overlay.visible:
                caption = "AI saliency hidden (O)"
            else:
                caption = "AI saliency: none yet"
            painter.drawText(box, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, caption)

    # ----- mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.view.image is None:
            return
        button = event.button()
        if button == Qt.MouseButton.LeftButton and self.ctr is not None and self.ctr.grab(
                self.to_image(event.position()), GRAB_DISTANCE * self.devicePixelRatioF() / self.view_geometry().scale):
            return
        if button == Qt.MouseButton.LeftButton and self.annotations.begin(self.to_image(event.position())):
            self._drawing = True
            return
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._drag = (button, event.position())
            if button == Qt.MouseButton.RightButton:
                self.setCursor(Qt.CursorShape.SizeAllCursor)
            else:
                self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        position = event.position()
        if self.ctr is not None and self.ctr.dragging:
            self.ctr.drag_to(self.to_image(position))
        elif self._drawing:
            self.annotations.extend(self.to_image(position))
        elif self._drag is not None:
            button, last = self._drag
            dx, dy = position.x() - last.x(), position.y() - last.y()
            self._drag = (button, position)
            if button == Qt.MouseButton.RightButton:
                self.view.drag_window(dx, dy)
            else:
                self.view.pan_by(dx, dy)
        if self.view.image is not None:
            self.cursor_moved.emit(self.to_image(position))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self.ctr is not None and self.ctr.dragging and event.button() == Qt.MouseButton.LeftButton:
            self.ctr.release()
        elif self._drawing and event.button() == Qt.MouseButton.LeftButton:
            self._drawing = False
            self.annotations.finish()
        elif self._drag is not None and event.button() == self._drag[0]:
            self._drag = None
            self.unsetCursor()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.annotations.tool == "navigate":
            self.view.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        if self.view.image is None:
            return
        notches = event.angleDelta().y() / 120.0
        if not notches:
            return
        position = event.position()
        anchor = self.to_image(position)
        offset = QPointF(position.x() - self.width() / 2.0, position.y() - self.height() / 2.0)
        self.view.set_zoom(self.view.zoom * WHEEL_ZOOM_STEP ** notches, anchor, offset)
        event.accept()
