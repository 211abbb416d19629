"""The cardiothoracic ratio drawn on the image as a measurement the radiologist can correct.

Two horizontal lines (heart width, inner thoracic width) with a handle at each end and the ratio beside
them. Dragging a handle moves that end to the cursor's column and its line to the cursor's row (the
lines stay horizontal, as the definition wants); on release the new ratio is computed and `corrected`
is emitted with the measurement before and after, which the window records as a feedback event
(`Reading.correct_measurement`). Coordinates are continuous image coordinates, x = column, y = row
(radassist.gui.annotations).
"""

from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import QObject, QPointF, Signal
from PySide6.QtGui import QColor, QPainter, QPen

from radassist.imaging.ctr import CardiothoracicRatio, HorizontalLine
from radassist.results import Measurement

HEART_COLOUR = QColor(255, 120, 120)
THORAX_COLOUR = QColor(120, 200, 255)
HANDLE_RADIUS = 4.0  # logical px
GRAB_DISTANCE = 8.0  # logical px: how close to a handle a press must land


class CtrOverlay(QObject):
    changed = Signal()
    corrected = Signal(object, object)  # (before, after): radassist.results.Measurement

    def __init__(self) -> None:
        super().__init__()
        self.ctr: CardiothoracicRatio | None = None
        self._grabbed: tuple[str, str] | None = None  # ("heart" | "thorax", "left" | "right")
        self._before: CardiothoracicRatio | None = None

    def show(self, measurement: Measurement | None) -> None:
        """Show the AI's CTR measurement (None clears)."""
        self.ctr = CardiothoracicRatio.from_measurement(measurement) if measurement is not None else None
        self._grabbed = None
        self.changed.emit()

    @property
    def dragging(self) -> bool:
        return self._grabbed is not None

    def handles(self) -> dict[tuple[str, str], QPointF]:
        """Each line end in image coordinates (pixel centres)."""
        if self.ctr is None:
            return {}
        return {(name, end): QPointF(getattr(line, end) + 0.5, line.row + 0.5)
                for name, line in (("heart", self.ctr.heart), ("thorax", self.ctr.thorax))
                for end in ("left", "right")}

    def grab(self, point: QPointF, reach: float) -> bool:
        """Start dragging the handle nearest to `point` (image coordinates) if it is within `reach` image px."""
        nearest = min(self.handles().items(), default=None,
                      key=lambda item: math.hypot(item[1].x() - point.x(), item[1].y() - point.y()))
        if nearest is None or math.hypot(nearest[1].x() - point.x(), nearest[1].y() - point.y()) > reach:
            return False
        self._grabbed, self._before = nearest[0], self.ctr
        return True

    def drag_to(self, point: QPointF) -> None:
        if self._grabbed is None or self.ctr is None:
            return
        name, end = self._grabbed
        line: HorizontalLine = getattr(self.ctr, name)
        column, row = int(math.floor(point.x())), int(math.floor(point.y()))
        moved = dataclasses.replace(line, row=row, **{end: column})
        if moved.left > moved.right:  # dragged past the other end: the ends swap roles
            moved = HorizontalLine(row, moved.right, moved.left)
            self._grabbed = (name, "left" if end == "right" else "right")
        self.ctr = dataclasses.replace(self.ctr, heart=moved) if name == "heart" else dataclasses.replace(
            self.ctr, thorax=moved)
        self.changed.emit()

    def release(self) -> None:
        """End a drag; a changed measurement is emitted as `corrected(before, after)`."""
        before, self._grabbed, self._before = self._before, None, None
        if before is not None and self.ctr is not None and self.ctr != before:
            self.corrected.emit(before.as_measurement(), self.ctr.as_measurement())

    def paint(self, painter: QPainter, to_pane) -> None:  # noqa: ANN001  (image QPointF -> pane QPointF)
        if self.ctr is None:
            return
        handles = self.handles()
        for name, colour in (("heart", HEART_COLOUR), ("thorax", THORAX_COLOUR)):
            left, right = to_pane(handles[(name, "left")]), to_pane(handles[(name, "right")])
            painter.setPen(QPen(colour, 1.5))
            painter.drawLine(left, right)
            for tip in (left, right):
                painter.drawEllipse(tip, HANDLE_RADIUS, HANDLE_RADIUS)
        label = f"CTR {self.ctr.ratio:.2f}" + (" (AP/unknown view: overestimates)" if self.ctr.note else "")
        anchor = to_pane(handles[("thorax", "left")])
        painter.setPen(THORAX_COLOUR)
        painter.drawText(QPointF(anchor.x(), anchor.y() + 16), label)
