"""ROC and reliability diagrams drawn with Pillow (no plotting library is a dependency of RadAssist)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIZE = 420
MARGIN = 50
PLOT = SIZE - 2 * MARGIN


def _canvas(title: str, x_label: str, y_label: str) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([MARGIN, MARGIN, MARGIN + PLOT, MARGIN + PLOT], outline="black")
    for tick in np.linspace(0, 1, 6):
        x, y = _xy(tick, tick)
        draw.line([x, MARGIN + PLOT, x, MARGIN + PLOT + 4], fill="black")
        draw.line([MARGIN - 4, y, MARGIN, y], fill="black")
        draw.text((x - 8, MARGIN + PLOT + 6), f"{tick:.1f}", fill="black")
        draw.text((MARGIN - 28, y - 5), f"{tick:.1f}", fill="black")
    draw.text((MARGIN, 12), title, fill="black")
    draw.text((MARGIN + PLOT // 2 - 40, SIZE - 22), x_label, fill="black")
    draw.text((4, MARGIN - 20), y_label, fill="black")
    draw.line([_xy(0, 0), _xy(1, 1)], fill=(170, 170, 170), width=1)
    return image, draw


def _xy(x: float, y: float) -> tuple[float, float]:
    return MARGIN + x * PLOT, MARGIN + (1 - y) * PLOT


def roc_png(path: Path, fpr: np.ndarray, tpr: np.ndarray, title: str) -> None:
    image, draw = _canvas(title, "1 - specificity", "sensitivity")
    draw.line([_xy(x, y) for x, y in zip(fpr, tpr, strict=True)], fill=(20, 80, 200), width=2)
    image.save(path)


def reliability_png(path: Path, bins: list[dict], title: str) -> None:
    """Observed frequency against mean predicted probability per bin; dot area grows with the bin count."""
    image, draw = _canvas(title, "predicted probability", "observed frequency")
    total = max(1, sum(b["count"] for b in bins))
    for b in bins:
        x, y = _xy(b["mean_probability"], b["observed"])
        radius = 3 + 12 * np.sqrt(b["count"] / total)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], outline=(200, 60, 20), width=2)
    points = [_xy(b["mean_probability"], b["observed"]) for b in bins]
    if len(points) > 1:
        draw.line(points, fill=(200, 60, 20), width=1)
    image.save(path)
