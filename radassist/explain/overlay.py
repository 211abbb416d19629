"""Saliency overlays as RGB images (for `read --saliency-out`, exports and docs; the viewer draws its own)."""

from __future__ import annotations

import numpy as np

# A perceptually ordered "inferno"-like ramp, 5 anchor colours, linearly interpolated to 256 entries.
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


def colormap_lut() -> np.ndarray:
    """(256, 3) uint8 colour table."""
    positions = np.linspace(0, len(_ANCHORS) - 1, 256)
    low = np.floor(positions).astype(int).clip(0, len(_ANCHORS) - 2)
    fraction = (positions - low)[:, None]
    return (_ANCHORS[low] * (1 - fraction) + _ANCHORS[low + 1] * fraction).round().astype(np.uint8)


def blend_overlay(gray01: np.ndarray, saliency01: np.ndarray, opacity: float = 0.45,
                  threshold: float = 0.2) -> np.ndarray:
    """(rows, cols, 3) uint8: the radiograph in grey with the saliency coloured where it exceeds `threshold`."""
    base = np.repeat((np.clip(gray01, 0, 1) * 255.0)[..., None], 3, axis=2)
    colours = colormap_lut()[(np.clip(saliency01, 0, 1) * 255).astype(np.uint8)].astype(np.float32)
    alpha = (opacity * (saliency01 >= threshold))[..., None].astype(np.float32)
    return (base * (1 - alpha) + colours * alpha).round().astype(np.uint8)
