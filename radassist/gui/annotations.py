"""Marks the radiologist puts on the image: distance measurements and regions (box or freehand).

Marks are kept in continuous image coordinates, x = column and y = row, where pixel (r, c) covers
[c, c+1) x [r, r+1) (what the panes sample). That is also the feedback store's convention (DICOM's,
radassist.feedback.regions), so a region's geometry leaves as drawn; the reading clips it to the image
and the viewer then shows the region as the reading stored it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QPointF, Signal

from radassist.feedback.regions import outline

TOOLS = ("navigate", "ruler", "box", "freehand")
_MIN_REGION_SIDE_PX = 3.0  # smaller drags are clicks, not regions


@dataclass
class Measurement:
    start: QPointF
    end: QPointF

    def length_px(self) -> float:
        return math.hypot(self.end.x() - self.start.x(), self.end.y() - self.start.y())

    def length_mm(self, spacing_mm: tuple[float, float] | None) -> float | None:
        """Distance in mm from (row, column) pixel spacing; None when the image does not state it."""
        if not spacing_mm:
            return None
        row_mm, col_mm = spacing_mm
        return math.hypot((self.end.x() - self.start.x()) * col_mm, (self.end.y() - self.start.y()) * row_mm)

    def label(self, spacing_mm: tuple[float, float] | None) -> str:
        mm = self.length_mm(spacing_mm)
        return f"{mm:.1f} mm" if mm is not None else f"{self.length_px():.0f} px (no pixel spacing)"


@dataclass
class Region:
    kind: str  # "rectangle" or "polygon"
    points: list[QPointF]  # rectangle: two corners; polygon: the outline
    label: str = ""
    region_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def geometry(self) -> dict[str, Any]:
        """The feedback store's geometry dict (radassist.feedback.events.check_geometry)."""
        xs = [round(p.x(), 2) for p in self.points]
        ys = [round(p.y(), 2) for p in self.points]
        if self.kind == "rectangle":
            return {"kind": "rectangle", "x0": min(xs), "y0": min(ys), "x1": max(xs), "y1": max(ys)}
        return {"kind": "polygon", "points": [[x, y] for x, y in zip(xs, ys, strict=True)]}

    @classmethod
    def from_geometry(cls, region_id: str, label: str, geometry: dict[str, Any]) -> Region:
        """A stored region (rectangle or polygon; an ellipse is shown by its outline)."""
        if geometry["kind"] == "rectangle":
            points = [QPointF(geometry["x0"], geometry["y0"]), QPointF(geometry["x1"], geometry["y1"])]
            return cls("rectangle", points, label, region_id)
        return cls("polygon", [QPointF(x, y) for x, y in outline(geometry)], label, region_id)

    def is_big_enough(self) -> bool:
        xs = [p.x() for p in self.points]
        ys = [p.y() for p in self.points]
        big = max(xs) - min(xs) >= _MIN_REGION_SIDE_PX and max(ys) - min(ys) >= _MIN_REGION_SIDE_PX
        return big and (self.kind == "rectangle" or len(self.points) >= 3)


class Annotations(QObject):
    """The current tool, the marks on the current image and the one being drawn."""

    changed = Signal()
    tool_changed = Signal(str)
    region_finished = Signal(object)  # Region, not yet labelled: the window decides what it marks

    def __init__(self) -> None:
        super().__init__()
        self.tool = "navigate"
        self.measurements: list[Measurement] = []
        self.regions: list[Region] = []
        self.draft: Measurement | Region | None = None

    def set_tool(self, tool: str) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self.tool = tool
        self.draft = None
        self.tool_changed.emit(tool)
        self.changed.emit()

    def clear(self) -> None:
        self.measurements.clear()
        self.regions.clear()
        self.draft = None
        self.changed.emit()

    def clear_measurements(self) -> None:
        self.measurements.clear()
        self.changed.emit()

    # ----- drawing, driven by the pane's mouse events (image coordinates)
    def begin(self, point: QPointF) -> bool:
        """Start a mark with the current tool; False for the navigate tool (the pane pans instead)."""
        if self.tool == "ruler":
            self.draft = Measurement(QPointF(point), QPointF(point))
        elif self.tool == "box":
            self.draft = Region("rectangle", [QPointF(point), QPointF(point)])
        elif self.tool == "freehand":
            self.draft = Region("polygon", [QPointF(point)])
        else:
            return False
        self.changed.emit()
        return True

    def extend(self, point: QPointF) -> None:
        if isinstance(self.draft, Measurement):
            self.draft.end = QPointF(point)
        elif isinstance(self.draft, Region) and self.draft.kind == "rectangle":
            self.draft.points[-1] = QPointF(point)
        elif isinstance(self.draft, Region):
            last = self.draft.points[-1]
            if abs(point.x() - last.x()) + abs(point.y() - last.y()) >= 1.0:
                self.draft.points.append(QPointF(point))
        else:
            return
        self.changed.emit()

    def finish(self) -> None:
        draft, self.draft = self.draft, None
        if isinstance(draft, Measurement) and draft.length_px() >= 2.0:
            self.measurements.append(draft)
        elif isinstance(draft, Region) and draft.is_big_enough():
            self.regions.append(draft)
            self.region_finished.emit(draft)
        self.changed.emit()

    def cancel_draft(self) -> None:
        self.draft = None
        self.changed.emit()

    def show_regions(self, regions: list[Region]) -> None:
        """Show exactly these regions (the reading's), replacing whatever was drawn."""
        self.regions = list(regions)
        self.changed.emit()
