"""numpy -> QImage for the panes, cached so a window/level drag only redoes the lookup.

`GreyFrames` keeps, per pane geometry, the screen-sized code sample (redone on zoom/pan) and the
display bytes (redone on window/level). Side-by-side panes have the same geometry, so they share one
frame. `OverlayFrames` does the same for the saliency colour layer, which does not depend on the window.
QImages wrap the numpy buffers without copying; the buffers are kept alive alongside them.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtGui import QImage

from radassist.gui.view_state import ViewState
from radassist.imaging.display import ViewGeometry, apply_lut, colormap_argb, window_lut

Rect = tuple[int, int, int, int]
_GEOMETRIES_KEPT = 3  # two panes + one spare for a splitter drag


def wrap_grey(pixels: np.ndarray) -> QImage:
    """A Grayscale8 QImage over a C-contiguous uint8 array (no copy: keep `pixels` alive)."""
    rows, cols = pixels.shape
    return QImage(pixels.data, cols, rows, pixels.strides[0], QImage.Format.Format_Grayscale8)


def wrap_argb(pixels: np.ndarray) -> QImage:
    """A premultiplied ARGB32 QImage over a C-contiguous uint32 array (no copy)."""
    rows, cols = pixels.shape
    return QImage(pixels.data, cols, rows, pixels.strides[0], QImage.Format.Format_ARGB32_Premultiplied)


class _Frame:
    __slots__ = ("codes", "rect", "window_key", "pixels", "image")

    def __init__(self, codes: np.ndarray, rect: Rect):
        self.codes, self.rect = codes, rect
        self.window_key: tuple | None = None
        self.pixels = np.empty(codes.shape, dtype=np.uint8)
        self.image: QImage | None = None


class GreyFrames:
    """Window/levelled frames of the view's image, one per pane geometry."""

    def __init__(self, view: ViewState):
        self._view = view
        self._frames: OrderedDict[tuple, _Frame] = OrderedDict()
        self._lut_key: tuple | None = None
        self._lut: np.ndarray | None = None
        view.image_changed.connect(self._frames.clear)

    def frame(self, geometry: ViewGeometry) -> tuple[QImage | None, Rect]:
        view = self._view
        if view.image is None:
            return None, (0, 0, 0, 0)
        key = (view.image_serial, geometry)
        frame = self._frames.get(key)
        if frame is None:
            frame = _Frame(*geometry.sample(view.image.coded))
            self._frames[key] = frame
            while len(self._frames) > _GEOMETRIES_KEPT:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(key)
        window_key = (view.image_serial, view.window_center, view.window_width, view.invert)
        if self._lut_key != window_key:
            self._lut = window_lut(view.image.coded, view.window_center, view.window_width, view.invert)
            self._lut_key = window_key
        if frame.window_key != window_key:
            apply_lut(self._lut, frame.codes, out=frame.pixels)
            frame.image = wrap_grey(frame.pixels) if frame.pixels.size else None
            frame.window_key = window_key
        return frame.image, frame.rect


class OverlayFrames:
    """Colour saliency layers (premultiplied ARGB), one per geometry and overlay setting."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._pixels: np.ndarray | None = None
        self._image: QImage | None = None
        self._rect: Rect = (0, 0, 0, 0)
        self._colormap_key: tuple | None = None
        self._colormap: np.ndarray | None = None

    def frame(self, geometry: ViewGeometry, saliency: np.ndarray, saliency_key: tuple, colormap: str,
              threshold: float) -> tuple[QImage | None, Rect]:
        """`saliency`: the finding's uint8 map at image size (radassist.imaging.display.saliency_bytes);
        `saliency_key` names it uniquely (result serial, label) so a new result never reuses a cached layer."""
        key = (geometry, saliency_key, colormap, threshold)
        if key != self._key:
            if self._colormap_key != (colormap, threshold):
                self._colormap = colormap_argb(colormap, threshold)
                self._colormap_key = (colormap, threshold)
            sampled, (x, y, _, _) = geometry.sample_map(saliency)
            # Keep only the coloured part: blending fully transparent pixels costs as much as visible ones.
            visible_rows = np.flatnonzero((sampled >= self._first_visible_level()).any(axis=1))
            visible_cols = np.flatnonzero((sampled >= self._first_visible_level()).any(axis=0))
            if visible_rows.size:
                top, bottom = int(visible_rows[0]), int(visible_rows[-1]) + 1
                left, right = int(visible_cols[0]), int(visible_cols[-1]) + 1
                self._pixels = np.take(self._colormap, sampled[top:bottom, left:right].astype(np.intp))
                self._image = wrap_argb(self._pixels)
                self._rect = (x + left, y + top, right - left, bottom - top)
            else:
                self._pixels, self._image, self._rect = None, None, (0, 0, 0, 0)
            self._key = key
        return self._image, self._rect

    def _first_visible_level(self) -> int:
        """The lowest saliency byte the colormap does not make fully transparent."""
        opaque = np.flatnonzero(self._colormap >> 24)
        return int(opaque[0]) if opaque.size else 256
