"""Region geometry (as recorded in region events) turned into masks and DICOM SR coordinates.

Coordinates follow DICOM's 2D convention (PS3.3 C.18.6.1.2): x = column, y = row, in image pixels,
with (0, 0) the top-left corner of the top-left pixel, so the centre of pixel (row r, column c) is
(c + 0.5, r + 0.5). Hosts convert their view coordinates to this before recording.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

_ELLIPSE_OUTLINE_POINTS = 64


def outline(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    """The region's boundary as (x, y) points, not closed."""
    kind = geometry["kind"]
    if kind == "polygon":
        return [(float(x), float(y)) for x, y in geometry["points"]]
    if kind == "rectangle":
        x0, y0, x1, y1 = (float(geometry[k]) for k in ("x0", "y0", "x1", "y1"))
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    cx, cy, rx, ry = (float(geometry[k]) for k in ("cx", "cy", "rx", "ry"))
    return [(cx + rx * math.cos(t), cy + ry * math.sin(t))
            for t in np.linspace(0.0, 2.0 * math.pi, _ELLIPSE_OUTLINE_POINTS, endpoint=False)]


def clipped(points: list[tuple[float, float]], rows: int, columns: int) -> list[tuple[float, float]]:
    return [(min(max(x, 0.0), float(columns)), min(max(y, 0.0), float(rows))) for x, y in points]


def clipped_geometry(geometry: dict[str, Any], rows: int, columns: int) -> dict[str, Any]:
    """The geometry with every coordinate inside the image [0, columns] x [0, rows]: what a region
    drawn past the image's edge marks. An ellipse's centre is clipped and its radii kept; other keys
    are left as they are."""
    kind = geometry["kind"]
    if kind == "polygon":
        return {**geometry, "points": [[x, y] for x, y in clipped(outline(geometry), rows, columns)]}
    if kind == "rectangle":
        (x0, y0), (x1, y1) = clipped([(geometry["x0"], geometry["y0"]), (geometry["x1"], geometry["y1"])],
                                     rows, columns)
        return {**geometry, "x0": x0, "y0": y0, "x1": x1, "y1": y1}
    ((cx, cy),) = clipped([(geometry["cx"], geometry["cy"])], rows, columns)
    return {**geometry, "cx": cx, "cy": cy}


def mask_of(geometry: dict[str, Any], rows: int, columns: int) -> np.ndarray:
    """A bool (rows, columns) mask: pixels whose centre lies inside the region."""
    canvas = Image.new("1", (columns, rows), 0)
    # PIL puts pixel centres on integer coordinates: shift by half a pixel from the DICOM convention.
    points = [(x - 0.5, y - 0.5) for x, y in outline(geometry)]
    ImageDraw.Draw(canvas).polygon(points, fill=1, outline=1)
    return np.asarray(canvas, dtype=bool)


def sr_graphic(geometry: dict[str, Any], rows: int, columns: int) -> tuple[str, np.ndarray]:
    """(graphic type, graphic data) for a DICOM SR SCOORD: a closed POLYLINE, or an ELLIPSE by its axes."""
    if geometry["kind"] == "ellipse":
        cx, cy, rx, ry = (float(geometry[k]) for k in ("cx", "cy", "rx", "ry"))
        axes = [(cx - rx, cy), (cx + rx, cy), (cx, cy - ry), (cx, cy + ry)]
        return "ELLIPSE", np.array(clipped(axes, rows, columns), dtype=float)
    points = clipped(outline(geometry), rows, columns)
    return "POLYLINE", np.array(points + points[:1], dtype=float)
