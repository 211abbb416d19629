"""Lung segmentation training data: which images, which masks, which patients go to validation.

Images go through `radassist.io.read_image` and `radassist.imaging.lungs.model_input`, the runtime's
own reading and preprocessing, so the model never sees pixels the runtime would not produce.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from radassist.imaging.lungs import BACKGROUND, LEFT_LUNG, RIGHT_LUNG, GridFit, model_input
from radassist.io import read_image

CXR_SEG = "covid_cxr_seg"
QU_EX = "covid_qu_ex_sample"


@dataclass(frozen=True)
class LungCase:
    """One image with its lung masks. `right_mask`/`left_mask` are None where only the union exists."""

    source: str
    image: Path
    lung_mask: Path  # right lung ∪ left lung, the mask the model is scored on
    right_mask: Path | None
    left_mask: Path | None
    patient: str  # unique across sources

    @property
    def name(self) -> str:
        return f"{self.source}/{self.image.name}"


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "labels.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def find_cases(data_root: Path) -> list[LungCase]:
    """Every usable image of covid_cxr_seg (both lungs annotated) and covid_qu_ex_sample."""
    cases: list[LungCase] = []
    seg = data_root / CXR_SEG
    for row in _rows(seg):
        if row["has_lung_mask"] != "1":  # one lung only annotated: the other would teach "background"
            continue
        stem = Path(row["file"]).name
        cases.append(LungCase(
            source=CXR_SEG,
            image=seg / row["file"],
            lung_mask=seg / "masks" / stem,
            right_mask=seg / "masks_by_class" / "right_lung" / stem,
            left_mask=seg / "masks_by_class" / "left_lung" / stem,
            patient=f"{CXR_SEG}:{row['patient_id']}",
        ))
    qu_ex = data_root / QU_EX
    for row in _rows(qu_ex):
        stem = Path(row["file"]).name
        cases.append(LungCase(
            source=QU_EX,
            image=qu_ex / row["file"],
            lung_mask=qu_ex / "masks" / stem,
            right_mask=None,
            left_mask=None,
            patient=f"{QU_EX}:{row['patient_id'] or stem}",  # no patient ids: each image its own patient
        ))
    return cases


def split_by_patient(cases: list[LungCase], validation_fraction: float, seed: int
                     ) -> tuple[list[LungCase], list[LungCase]]:
    """Seeded patient-level split, per source, so both sources appear in validation."""
    rng = np.random.default_rng(seed)
    validation_patients: set[str] = set()
    for source in sorted({case.source for case in cases}):
        patients = sorted({case.patient for case in cases if case.source == source})
        count = max(1, round(validation_fraction * len(patients)))
        validation_patients.update(rng.choice(patients, size=count, replace=False).tolist())
    train = [case for case in cases if case.patient not in validation_patients]
    validation = [case for case in cases if case.patient in validation_patients]
    return train, validation


def read_mask(path: Path) -> np.ndarray:
    """A 0/255 mask PNG -> boolean array."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 127


def side_labels(case: LungCase) -> np.ndarray:
    """uint8 labels at image size: 1 right lung, 2 left lung. Where only the union exists, each connected
    piece goes to the side of the image its centre lies on (right lung = image left)."""
    if case.right_mask is not None and case.left_mask is not None:
        labels = np.zeros(read_mask(case.lung_mask).shape, dtype=np.uint8)
        labels[read_mask(case.right_mask)] = RIGHT_LUNG
        labels[read_mask(case.left_mask)] = LEFT_LUNG
        return labels
    union = read_mask(case.lung_mask)
    components, count = ndimage.label(union)
    labels = np.zeros(union.shape, dtype=np.uint8)
    centres = ndimage.center_of_mass(union, components, range(1, count + 1))
    for index, (_, column) in enumerate(centres, start=1):
        labels[components == index] = RIGHT_LUNG if column < union.shape[1] / 2 else LEFT_LUNG
    return labels


def target_grid(labels: np.ndarray, fit: GridFit) -> np.ndarray:
    """Image-size labels -> model-grid labels, each side resampled like the image (area > 50 % wins)."""
    right = fit.to_grid((labels == RIGHT_LUNG).astype(np.float32))
    left = fit.to_grid((labels == LEFT_LUNG).astype(np.float32))
    grid = np.full(right.shape, BACKGROUND, dtype=np.uint8)
    grid[(right >= 0.5) & (right >= left)] = RIGHT_LUNG
    grid[(left >= 0.5) & (left > right)] = LEFT_LUNG
    return grid


def load_arrays(cases: list[LungCase], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs (N, size, size) float32 and grid labels (N, size, size) uint8."""
    inputs = np.empty((len(cases), size, size), dtype=np.float32)
    targets = np.empty((len(cases), size, size), dtype=np.uint8)
    for index, case in enumerate(cases):
        grid, fit = model_input(read_image(case.image), size)
        labels = side_labels(case)
        if labels.shape != (fit.rows, fit.columns):
            raise ValueError(f"{case.name}: mask {labels.shape} and image {(fit.rows, fit.columns)} differ")
        inputs[index] = grid
        targets[index] = target_grid(labels, fit)
    return inputs, targets
