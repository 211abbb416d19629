"""What both image panes share: the image, zoom/pan, window/level and invert.

Side-by-side panes (radiograph | radiograph + saliency) are only useful if they move together, so
neither pane owns its view: both paint from one `ViewState` and every change repaints both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, QPointF, QSizeF, Signal

from radassist.image import Radiograph, WindowPreset
from radassist.imaging.display import CodedImage, ViewGeometry
from radassist.imaging.windowing import robust_range

ZOOM_LIMITS = (0.02, 32.0)  # logical pixels per image pixel
WINDOW_DRAG_RANGE_PX = 800.0  # dragging this far changes the window by the image's full value range


@dataclass(frozen=True)
class LoadedImage:
    """A radiograph ready to display: the pixels coded for the fast window/level path, and its presets."""

    radiograph: Radiograph
    coded: CodedImage
    presets: list[WindowPreset]
    preview_factor: int = 1  # > 1: a reduced-resolution first picture; the full image is on its way

    @property
    def is_preview(self) -> bool:
        return self.preview_factor > 1

    def value_at(self, row: int, column: int) -> float | None:
        """Presentation value at full-resolution (row, column), or None outside the image."""
        rows, columns = self.coded.shape
        if not (0 <= row < rows and 0 <= column < columns):
            return None
        pixels = self.radiograph.pixels
        factor = self.preview_factor
        return float(pixels[min(row // factor, pixels.shape[0] - 1), min(column // factor, pixels.shape[1] - 1)])

    @property
    def value_span(self) -> float:
        return max(self.coded.step * (self.coded.code_count - 1), 1.0)


def load_for_display(radiograph: Radiograph, preview_factor: int = 1) -> LoadedImage:
    """Code the pixels once (worker thread) and list the windows: DICOM presets, then auto, then full range.

    A preview's pixels are 1/preview_factor of the full image (whose size the metadata gives)."""
    full_shape = (radiograph.meta.rows, radiograph.meta.columns) if preview_factor > 1 else None
    coded = CodedImage(radiograph.pixels, full_shape=full_shape, base_factor=preview_factor)
    low, high = robust_range(radiograph.pixels)
    span = max(coded.step * (coded.code_count - 1), 1.0)
    presets = [
        *radiograph.meta.window_presets,
        WindowPreset((low + high) / 2.0, high - low, "auto"),
        WindowPreset(coded.offset + span / 2.0, span, "full range"),
    ]
    return LoadedImage(radiograph, coded, presets, preview_factor)


class ViewState(QObject):
    """Zoom (logical px per image px), centre (image x=column, y=row at the pane centre), window, invert."""

    geometry_changed = Signal()
    window_changed = Signal()
    image_changed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.image: LoadedImage | None = None
        self.image_serial = 0  # changes with every image, so caches never confuse two images
        self.zoom = 1.0
        self.center = QPointF(0.0, 0.0)
        self.fit_mode = True  # refit when the pane is resized, until the user zooms or pans
        self._pane_size = QSizeF()  # the last pane size painted, so fit() can act at once
        self.window_center = 0.5
        self.window_width = 1.0
        self.invert = False
        self.preset_name = ""

    # ----- image
    def set_image(self, image: LoadedImage | None) -> None:
        self.image = image
        self.image_serial += 1
        self.fit_mode = True
        self.invert = False
        if image is not None:
            self.apply_preset(0)
        self.image_changed.emit()
        self.geometry_changed.emit()

    def replace_image(self, image: LoadedImage) -> None:
        """Swap in the full-resolution image for its preview, keeping zoom, pan and window/level."""
        self.image = image
        self.image_serial += 1
        self.image_changed.emit()

    # ----- geometry
    def geometry(self, pane_size: QSizeF, device_pixel_ratio: float) -> ViewGeometry:
        """The device-pixel geometry of a pane of `pane_size` logical pixels."""
        self._pane_size = QSizeF(pane_size)
        if self.fit_mode:
            self._fit_to(pane_size)
        scale = self.zoom * device_pixel_ratio
        width_px = max(1, round(pane_size.width() * device_pixel_ratio))
        height_px = max(1, round(pane_size.height() * device_pixel_ratio))
        return ViewGeometry(
            width=width_px, height=height_px, scale=scale,
            origin_x=self.center.x() - width_px / (2.0 * scale),
            origin_y=self.center.y() - height_px / (2.0 * scale),
        )

    def _fit_to(self, pane_size: QSizeF) -> None:
        if self.image is None or pane_size.isEmpty():
            return
        rows, cols = self.image.coded.shape
        self.zoom = min(pane_size.width() / cols, pane_size.height() / rows)
        self.center = QPointF(cols / 2.0, rows / 2.0)

    def fit(self) -> None:
        self.fit_mode = True
        self._fit_to(self._pane_size)
        self.geometry_changed.emit()

    def set_zoom(self, zoom: float, anchor_image: QPointF | None = None, anchor_offset: QPointF | None = None
                 ) -> None:
        """Zoom keeping `anchor_image` at `anchor_offset` (logical px from the pane centre), if given."""
        self.fit_mode = False
        self.zoom = float(np.clip(zoom, *ZOOM_LIMITS))
        if anchor_image is not None and anchor_offset is not None:
            self.center = QPointF(anchor_image.x() - anchor_offset.x() / self.zoom,
                                  anchor_image.y() - anchor_offset.y() / self.zoom)
        self.geometry_changed.emit()

    def pan_by(self, dx_logical: float, dy_logical: float) -> None:
        self.fit_mode = False
        self.center = QPointF(self.center.x() - dx_logical / self.zoom, self.center.y() - dy_logical / self.zoom)
        self.geometry_changed.emit()

    # ----- window / level
    def set_window(self, center: float, width: float, preset_name: str = "") -> None:
        self.window_center = float(center)
        self.window_width = max(float(width), 1e-3)
        self.preset_name = preset_name
        self.window_changed.emit()

    def drag_window(self, dx_logical: float, dy_logical: float) -> None:
        """PACS convention: drag right = wider window (less contrast), drag down = higher level (darker)."""
        span = self.image.value_span if self.image else 1.0
        per_px = span / WINDOW_DRAG_RANGE_PX
        self.set_window(self.window_center + dy_logical * per_px,
                        max(self.window_width + dx_logical * per_px, per_px))

    def apply_preset(self, index: int) -> bool:
        if self.image is None:
            return False
        presets = self.image.presets
        if not 0 <= index < len(presets):
            return False
        preset = presets[index]
        self.set_window(preset.center, preset.width, preset.name)
        return True

    def set_invert(self, invert: bool) -> None:
        self.invert = bool(invert)
        self.window_changed.emit()

    def reset(self) -> None:
        """Back to what the radiograph opened with: fitted, first preset, not inverted."""
        self.invert = False
        self.apply_preset(0)
        self.fit()
