"""Window/level: presentation-space pixels -> display/model range [0, 1].

One implementation serves the viewer (per frame, so it must be fast), the model preprocessing and the
saliency overlays, so that what the model saw and what the radiologist sees are the same mapping.
"""

from __future__ import annotations

import numpy as np

from radassist.image import Radiograph


def apply_window(pixels: np.ndarray, center: float, width: float, out: np.ndarray | None = None) -> np.ndarray:
    """Linear VOI window (DICOM PS3.3 C.11.2.1.2 simplified to the continuous form) to float32 [0, 1]."""
    width = max(float(width), 1e-6)
    low = float(center) - width / 2.0
    result = np.subtract(pixels, low, out=out, dtype=np.float32)
    result *= np.float32(1.0 / width)
    np.clip(result, 0.0, 1.0, out=result)
    return result


def robust_range(pixels: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> tuple[float, float]:
    """Percentile range on a subsample: robust to burned-in text and collimator edges, and cheap."""
    step = max(1, int(np.sqrt(pixels.size / 250_000)))
    sample = pixels[::step, ::step]
    low, high = np.percentile(sample, [low_pct, high_pct])
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    return float(low), float(max(high, low + 1e-6))


def model_window(image: Radiograph) -> tuple[float, float]:
    """(center, width) of the window `normalized_for_model` applies: the DICOM default window if the file
    has one, else a robust percentile window. Separate so a caller that only needs a downsampled copy can
    window the few pixels it keeps and get exactly the same values."""
    if image.meta.window_presets:
        preset = image.meta.window_presets[0]
        return float(preset.center), float(preset.width)
    low, high = robust_range(image.pixels)
    return (low + high) / 2.0, high - low


def normalized_for_model(image: Radiograph) -> np.ndarray:
    """The image in [0, 1] as the model expects it (8-bit PNGs of the training data come out close to
    x/255); the window is `model_window`."""
    return apply_window(image.pixels, *model_window(image))
