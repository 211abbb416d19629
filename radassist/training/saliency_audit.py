"""Does the model look where it should? Share of class-activation energy on shortcut regions.

Two traps of the training data (SOURCE.md): image borders (collimation edges, the padding/cropping that
encodes acquisition) and burned-in markers ("R"/"L", text, "AP ERECT"). For each image we measure the
share of the positive CAM energy that falls on (a) the outer band of the crop and (b) the four corner
boxes, where the side markers and burned-in text of these sets sit, next to the share of the image
those regions cover: a ratio well above 1 means the maps sit on them. Corners stand in for a marker
detector on purpose: bright-blob heuristics mark ribs and clavicles as often as letters.
"""

from __future__ import annotations

import numpy as np

from radassist.imaging.resample import resize_plane

BORDER_FRACTION = 0.1  # band width as a fraction of the side (covers 36 % of the area)
CORNER_FRACTION = 0.2  # corner boxes of 20 % x 20 % of the side (cover 16 % of the area)


def upsample(cam: np.ndarray, size: int) -> np.ndarray:
    return resize_plane(cam, size, size)


def border_band(size: int) -> np.ndarray:
    band = np.ones((size, size), dtype=bool)
    width = max(1, round(BORDER_FRACTION * size))
    band[width:size - width, width:size - width] = False
    return band


def corner_boxes(size: int) -> np.ndarray:
    corners = np.zeros((size, size), dtype=bool)
    side = max(1, round(CORNER_FRACTION * size))
    for rows in (slice(0, side), slice(size - side, size)):
        for columns in (slice(0, side), slice(size - side, size)):
            corners[rows, columns] = True
    return corners


def energy_shares(cam: np.ndarray, size: int) -> dict[str, float]:
    """cam: [h, w] one label's map over the model's S x S crop."""
    energy = np.maximum(upsample(cam, size), 0.0)
    total = float(energy.sum())
    if total <= 0:
        return {}
    band, corners = border_band(size), corner_boxes(size)
    return {"border_energy": float(energy[band].sum() / total), "border_area": float(band.mean()),
            "corner_energy": float(energy[corners].sum() / total), "corner_area": float(corners.mean())}


def summarize(shares: list[dict[str, float]]) -> dict:
    """Means over images with some positive energy, and the ratios energy share / area share."""
    shares = [s for s in shares if s]
    if not shares:
        return {"images": 0}
    mean = {key: float(np.mean([s[key] for s in shares])) for key in shares[0]}
    return {"images": len(shares), **mean, "border_ratio": mean["border_energy"] / mean["border_area"],
            "corner_ratio": mean["corner_energy"] / mean["corner_area"]}
