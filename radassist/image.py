"""The image object every other part of RadAssist consumes.

Pixels and metadata are kept apart on purpose: pixels feed the model and the display, metadata feeds
QA, the study browser and export, and only metadata can carry PHI.

Why here, in the bottom layer beside `vocabulary` and `results`, and not in `radassist.io`: io is only
one producer of a `Radiograph` (the Slicer host and tests build them from arrays), and a `ReadResult`
carries the image's `ImageMetadata`, so the result types could not sit below io while these lived in
it. This module imports nothing from RadAssist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # Rec. 601, as PACS viewers show colour frames in grey
_LUMINANCE_ROWS = 256  # rows converted at a time: float temporaries stay a few MB whatever the image size


def luminance(colour: np.ndarray) -> np.ndarray:
    """(rows, columns, 3 or 4) samples -> (rows, columns) float32 luminance; alpha is ignored."""
    gray = np.empty(colour.shape[:2], dtype=np.float32)
    for top in range(0, colour.shape[0], _LUMINANCE_ROWS):
        block = colour[top:top + _LUMINANCE_ROWS, :, :3].astype(np.float32)
        red, green, blue = LUMA_WEIGHTS
        gray[top:top + _LUMINANCE_ROWS] = block[..., 0] * red + block[..., 1] * green + block[..., 2] * blue
    return gray


@dataclass(frozen=True)
class WindowPreset:
    """A window centre/width pair in the image's presentation (post modality LUT) units."""

    center: float
    width: float
    name: str = ""


@dataclass
class ImageMetadata:
    """What we know about an image besides its pixels. Patient fields are for display only."""

    source_path: str
    file_format: str  # "DICOM", "PNG", "JPEG", "TIFF", "NIfTI", "MetaImage", ...
    rows: int
    columns: int
    modality: str | None = None
    photometric: str | None = None
    bits_stored: int | None = None
    transfer_syntax: str | None = None
    transfer_syntax_uid: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column)
    pixel_spacing_source: str | None = None  # "PixelSpacing", "ImagerPixelSpacing", "image header"
    view_position: str | None = None
    body_part: str | None = None
    window_presets: list[WindowPreset] = field(default_factory=list)
    sop_instance_uid: str | None = None
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    study_description: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None
    study_date: str | None = None
    patient_age_years: float | None = None  # DICOM PatientAge, else StudyDate - PatientBirthDate (report age group)
    number_of_frames: int = 1
    burned_in_annotation: str | None = None
    voi_lut_applied: bool = False  # True when a VOI LUT sequence was used to make the default display
    warnings: list[str] = field(default_factory=list)


@dataclass
class Radiograph:
    """Float32 pixels in presentation space (bright = dense, MONOCHROME1 already inverted) + metadata."""

    pixels: np.ndarray  # (rows, columns) float32
    meta: ImageMetadata

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def name(self) -> str:
        """A display name that carries no PHI: the file name."""
        return Path(self.meta.source_path).name

    def default_window(self) -> WindowPreset:
        """The window a radiologist would see first: the first DICOM preset, else the pixel range."""
        if self.meta.window_presets:
            return self.meta.window_presets[0]
        lo, hi = float(np.min(self.pixels)), float(np.max(self.pixels))
        return WindowPreset(center=(lo + hi) / 2.0, width=max(hi - lo, 1.0), name="full range")
