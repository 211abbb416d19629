"""Fast display path for the viewer: window/level as a lookup table on a screen-sized sample of the image.

`apply_window` (float, whole image) is the reference mapping, but on a 3000 x 3000 radiograph it costs
~70 ms, far over a 60 Hz frame. A viewer only needs the pixels that land on screen, so:

1. `CodedImage` quantises the presentation values once to uint16 codes (lossless for integer data up to
   16 bits) and keeps a 2x2-mean pyramid of them;
2. `ViewGeometry.sample` picks the pyramid level just above screen resolution and gathers, by nearest
   neighbour, exactly one code per screen pixel (done only when zoom or pan change);
3. `window_lut` maps every code to a display byte (65,536 entries, well under a millisecond) and
   `apply_lut` turns the screen-sized code sample into display bytes (about 1.5 ns a pixel).

A window/level drag therefore costs one table of 65,536 entries plus one gather per screen pixel,
independent of the image size. The mapping equals `apply_window` to within one display level
(tests/test_gui_display.py checks this). Nothing here imports Qt: the Slicer host and the
benchmarks use the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODE_LEVELS = 65536
_MIN_PYRAMID_SIDE = 256


class CodedImage:
    """An image's presentation values as uint16 codes, value = offset + code * step, with a pyramid.

    `levels[k]` holds one code per `level_factors[k]` x `level_factors[k]` block of the full image; a
    reduced-resolution preview (e.g. a JPEG 2000 resolution level) simply starts at a factor above 1,
    so the views and marks stay in full-resolution coordinates when the full image replaces it.
    """

    def __init__(self, pixels: np.ndarray, full_shape: tuple[int, int] | None = None, base_factor: int = 1):
        if pixels.ndim != 2 or pixels.size == 0:
            raise ValueError("CodedImage needs a non-empty 2-D array")
        low, high = float(np.min(pixels)), float(np.max(pixels))
        span = high - low
        integral = pixels.dtype.kind in "iu" or bool(np.all(np.equal(np.mod(pixels[::7, ::7], 1.0), 0.0)))
        # Integer data that fits in 16 bits keeps every value; anything else is spread over 65,536 codes.
        self.step = 1.0 if integral and span < CODE_LEVELS else max(span / (CODE_LEVELS - 1), 1e-12)
        self.offset = low
        self.code_count = int(round(span / self.step)) + 1
        codes = np.empty(pixels.shape, dtype=np.uint16)
        if self.step == 1.0:  # one pass, no temporary: values are whole numbers within 0..65535 of low
            np.subtract(pixels, np.float32(low), out=codes, casting="unsafe")
        else:
            scaled = np.subtract(pixels, low, dtype=np.float32)
            scaled *= np.float32(1.0 / self.step)
            np.rint(scaled, out=scaled)
            np.clip(scaled, 0, CODE_LEVELS - 1, out=scaled)
            codes[...] = scaled
        self.shape: tuple[int, int] = full_shape or (int(pixels.shape[0]), int(pixels.shape[1]))
        self.levels: list[np.ndarray] = [codes]
        self.level_factors: list[int] = [int(base_factor)]
        while min(self.levels[-1].shape) >= 2 * _MIN_PYRAMID_SIDE:
            self.levels.append(_half(self.levels[-1]))
            self.level_factors.append(self.level_factors[-1] * 2)

    def values(self, codes: np.ndarray) -> np.ndarray:
        """Presentation values of codes: the inverse of the coding (what a code on screen stands for)."""
        return self.offset + codes.astype(np.float64) * self.step


def _half(level: np.ndarray) -> np.ndarray:
    """2x2 box mean (anti-aliasing for zoomed-out views); odd last rows/columns are dropped."""
    rows, cols = level.shape[0] // 2 * 2, level.shape[1] // 2 * 2
    total = level[0:rows:2, 0:cols:2].astype(np.uint32)
    total += level[1:rows:2, 0:cols:2]
    total += level[0:rows:2, 1:cols:2]
    total += level[1:rows:2, 1:cols:2]
    total += 2
    total >>= 2
    return total.astype(np.uint16)


def window_lut(image: CodedImage, center: float, width: float, invert: bool = False) -> np.ndarray:
    """Display byte for every code: the linear window of `apply_window`, scaled to 0..255."""
    width = max(float(width), 1e-6)
    codes = np.arange(image.code_count, dtype=np.float64)
    values = image.offset + codes * image.step
    level = np.clip((values - (float(center) - width / 2.0)) / width, 0.0, 1.0)
    if invert:
        level = 1.0 - level
    return np.rint(level * 255.0).astype(np.uint8)


def apply_lut(lut: np.ndarray, codes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Display bytes for screen-sized codes (intp indices: the fastest gather numpy has)."""
    return np.take(lut, codes, out=out, mode="clip")


@dataclass(frozen=True)
class ViewGeometry:
    """Where the image sits on a pane, in device pixels: device = (image - origin) * scale."""

    width: int  # pane size in device pixels
    height: int
    scale: float  # device pixels per image pixel
    origin_x: float  # image coordinate (column) at the pane's left edge
    origin_y: float  # image coordinate (row) at the pane's top edge

    def covered_rect(self, image_shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """(x, y, w, h) of the device pixels that show image content (may be empty)."""
        rows, cols = image_shape
        x0 = max(0, int(np.ceil(-self.origin_x * self.scale - 0.5)))
        y0 = max(0, int(np.ceil(-self.origin_y * self.scale - 0.5)))
        x1 = min(self.width, int(np.ceil((cols - self.origin_x) * self.scale - 0.5)))
        y1 = min(self.height, int(np.ceil((rows - self.origin_y) * self.scale - 0.5)))
        return x0, y0, max(0, x1 - x0), max(0, y1 - y0)

    def sample_indices(self, image_shape: tuple[int, int], level_factors: list[int]
                       ) -> tuple[int, np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """Pyramid level and nearest-neighbour row/column indices (in that level) for every covered pixel."""
        x, y, w, h = self.covered_rect(image_shape)
        # The coarsest level that still has at least one level pixel per device pixel.
        level = 0
        while level + 1 < len(level_factors) and self.scale * level_factors[level + 1] <= 1.0:
            level += 1
        factor = level_factors[level]
        rows_at_level = -(-image_shape[0] // factor)
        cols_at_level = -(-image_shape[1] // factor)
        col_centers = (np.arange(x, x + w) + 0.5) / self.scale + self.origin_x
        row_centers = (np.arange(y, y + h) + 0.5) / self.scale + self.origin_y
        cols = np.clip((col_centers / factor).astype(np.intp), 0, cols_at_level - 1)
        rows = np.clip((row_centers / factor).astype(np.intp), 0, rows_at_level - 1)
        return level, rows, cols, (x, y, w, h)

    def sample(self, image: CodedImage) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """intp codes of the covered device pixels, and where they go on the pane."""
        level, rows, cols, rect = self.sample_indices(image.shape, image.level_factors)
        codes = image.levels[level]
        rows = np.minimum(rows, codes.shape[0] - 1)  # a level may lose an odd last row to the 2x2 mean
        cols = np.minimum(cols, codes.shape[1] - 1)
        return codes[rows[:, None], cols[None, :]].astype(np.intp), rect

    def sample_map(self, values: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        """Nearest-neighbour sample of any image-sized map (saliency, lung mask) for the covered pixels."""
        _, rows, cols, rect = self.sample_indices(values.shape[:2], [1])
        return values[rows[:, None], cols[None, :]], rect


# Colormaps for saliency overlays: a few anchor colours, interpolated to 256 entries.
_COLORMAP_ANCHORS: dict[str, list[tuple[float, float, float]]] = {
    "jet": [(0, 0, 0.5), (0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0), (0.5, 0, 0)],
    "inferno": [(0, 0, 0.02), (0.34, 0.06, 0.43), (0.73, 0.21, 0.33), (0.98, 0.55, 0.04), (0.99, 1, 0.64)],
    "hot": [(0.04, 0, 0), (1, 0, 0), (1, 1, 0), (1, 1, 1)],
}
COLORMAPS = tuple(_COLORMAP_ANCHORS)


def colormap_argb(name: str, threshold: float) -> np.ndarray:
    """256 premultiplied ARGB32 words; saliency below `threshold` (0..1) is fully transparent.

    Alpha ramps up with saliency above the threshold so the hot spot stands out and the radiograph
    stays readable under the cooler parts (the pane's opacity slider scales all of it).
    """
    anchors = np.asarray(_COLORMAP_ANCHORS[name], dtype=np.float64)
    positions = np.linspace(0.0, 1.0, len(anchors))
    levels = np.linspace(0.0, 1.0, 256)
    rgb = np.stack([np.interp(levels, positions, anchors[:, c]) for c in range(3)], axis=1)
    alpha = np.clip((levels - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0) ** 0.5
    alpha[levels < threshold] = 0.0
    premultiplied = np.rint(rgb * alpha[:, None] * 255.0).astype(np.uint32)
    a = np.rint(alpha * 255.0).astype(np.uint32)
    return (a << 24) | (premultiplied[:, 0] << 16) | (premultiplied[:, 1] << 8) | premultiplied[:, 2]


def saliency_bytes(saliency: np.ndarray) -> np.ndarray:
    """A [0, 1] saliency map as uint8 (quantised once per finding, then sampled per view)."""
    return np.rint(np.clip(saliency, 0.0, 1.0) * 255.0).astype(np.uint8)
