"""Anatomy segmentation training data: which images, which masks, which patients go to validation.

Sources and what each annotates:
- jsrt (SCR masks): right lung, left lung, heart. Clavicles are not used: they overlap the lungs, and a
  pixel of this model has one label.
- covid_cxr_seg: right and left lung, drawn through the heart to the midline (the retrocardiac lung is
  lung there: about half of the `cardiomediastinum` mask lies inside them), and the cardiomediastinal
  silhouette (`cardiomediastinum`: the heart and the mediastinum above it). `silhouette_parts` splits the
  silhouette into the heart (its rows at least HEART_ROW_SHARE of its widest width, from the first such row
  down) and the mediastinum above (heart or background: not known).
- covid_qu_ex_sample: the union of the lungs only (sides by position).

Lung convention: the VISIBLE lung, as SCR draws it: it stops at the heart border and the diaphragm dome
(the retrocardiac lung is not lung here), so the heart and the lungs do not overlap. covid_cxr_seg's lungs
are brought to it by taking the silhouette out of them (for training and for scoring alike). Where a
source has no heart mask, its background pixels are labelled UNKNOWN_BACKGROUND ("background or heart"),
and the loss lets the model put heart there.

Lesions (the model's separate `lesion` output, what localisation points at): covid_cxr_seg consolidation ∪
ground-glass masks, covid_qu_ex_sample infection masks, jsrt nodules as a disc of the recorded diameter
around the recorded centre. An image without any is a negative (no lesion anywhere). More negatives,
for the lesion output only: nih14 adult films labelled "No Finding" (`find_lesion_negatives`), because
without them the lesion output covered both lungs of most NIH films, lesion or not. The NIH boxes are not
trained on, nor any image of a patient with a box: they stay an outside check of the localisation.

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

from radassist.imaging.lungs import BACKGROUND, HEART, LEFT_LUNG, RIGHT_LUNG, GridFit, model_input
from radassist.io import read_image

CXR_SEG = "covid_cxr_seg"
QU_EX = "covid_qu_ex_sample"
JSRT = "jsrt"
NIH = "nih14"
CXR_SEG_LESIONS = ("consolidation", "ground_glass_opacity")
MIN_NODULE_RADIUS_PX = 2.0
UNKNOWN_BACKGROUND = HEART + 1  # training-only target: background or heart (the source has no heart mask)
# covid_cxr_seg silhouette rows at least this share of its widest width are heart (the mediastinum above the
# heart, aortic knob included, is narrower: about half the heart's width on the masks)
HEART_ROW_SHARE = 0.75


@dataclass(frozen=True)
class LungCase:
    """One image with its masks. `right_mask`/`left_mask` are None where only the lung union exists
    (`lung_mask` is then that file), `heart_mask` where the source has no heart mask. Read the lungs through
    `sided_lung_truth` / `lung_truth`: they apply the visible-lung convention."""

    source: str
    image: Path
    lung_mask: Path  # right lung ∪ left lung (for jsrt: the right lung file, see `lung_truth`)
    right_mask: Path | None
    left_mask: Path | None
    patient: str  # unique across sources
    heart_mask: Path | None = None
    silhouette_mask: Path | None = None  # the cardiomediastinal silhouette (covid_cxr_seg), see silhouette_parts
    lesion_masks: tuple[Path, ...] = ()  # their union is the lesion region
    nodule: tuple[float, float, float] | None = None  # (x, y, diameter) in image pixels: a disc lesion

    @property
    def name(self) -> str:
        return f"{self.source}/{self.image.name}"


def csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a source's CSV file (labels.csv, boxes.csv) as dicts."""
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def find_cases(data_root: Path) -> list[LungCase]:
    """Every usable image of covid_cxr_seg (both lungs annotated), covid_qu_ex_sample and jsrt."""
    cases: list[LungCase] = []
    seg = data_root / CXR_SEG
    for row in csv_rows(seg / "labels.csv"):
        if row["has_lung_mask"] != "1":  # one lung only annotated: the other would teach "background"
            continue
        stem = Path(row["file"]).name
        lesions = [seg / "masks_by_class" / kind / stem for kind in CXR_SEG_LESIONS]
        cases.append(LungCase(
            source=CXR_SEG,
            image=seg / row["file"],
            lung_mask=seg / "masks" / stem,
            right_mask=seg / "masks_by_class" / "right_lung" / stem,
            left_mask=seg / "masks_by_class" / "left_lung" / stem,
            patient=f"{CXR_SEG}:{row['patient_id']}",
            silhouette_mask=seg / "masks_by_class" / "cardiomediastinum" / stem,
            lesion_masks=tuple(path for path in lesions if path.exists()),
        ))
    qu_ex = data_root / QU_EX
    for row in csv_rows(qu_ex / "labels.csv"):
        stem = Path(row["file"]).name
        cases.append(LungCase(
            source=QU_EX,
            image=qu_ex / row["file"],
            lung_mask=qu_ex / "masks" / stem,
            right_mask=None,
            left_mask=None,
            patient=f"{QU_EX}:{row['patient_id'] or stem}",  # no patient ids: each image its own patient
            lesion_masks=(qu_ex / "masks_infection" / stem,),
        ))
    jsrt = data_root / JSRT
    for row in csv_rows(jsrt / "labels.csv"):
        stem = Path(row["file"]).name
        cases.append(LungCase(
            source=JSRT,
            image=jsrt / row["file"],
            lung_mask=jsrt / "masks" / "right_lung" / stem,
            right_mask=jsrt / "masks" / "right_lung" / stem,
            left_mask=jsrt / "masks" / "left_lung" / stem,
            heart_mask=jsrt / "masks" / "heart" / stem,
            patient=f"{JSRT}:{row['patient_id']}",
            nodule=(float(row["nodule_x"]), float(row["nodule_y"]), float(row["nodule_size_px"]))
            if row["nodule_x"] else None,
        ))
    return cases


def find_lesion_negatives(data_root: Path) -> list[Path]:
    """nih14 films labelled "No Finding" of adults (18 and over) whose patient has no NIH box: images that
    teach the lesion output "no lesion here" and teach the anatomy nothing (they have no lung masks)."""
    nih = data_root / NIH
    boxed_files = {row["file"] for row in csv_rows(nih / "boxes.csv")}
    rows = csv_rows(nih / "labels.csv")
    boxed_patients = {row["patient_id"] for row in rows if row["file"] in boxed_files}
    return [nih / row["file"] for row in rows
            if row["labels"] == "No Finding" and row["age"].isdigit() and int(row["age"]) >= 18
            and row["patient_id"] not in boxed_patients]


def load_negative_inputs(images: list[Path], size: int) -> np.ndarray:
    """Model inputs (N, size, size) float32 of lesion negatives (`find_lesion_negatives`)."""
    return np.stack([model_input(read_image(path), size)[0] for path in images]).astype(np.float32)


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


def silhouette_parts(silhouette: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(heart, mediastinum above it) of a cardiomediastinal silhouette mask: the heart is the silhouette
    from the first row at least HEART_ROW_SHARE of its widest width down; both empty for an empty mask."""
    widths = silhouette.sum(axis=1)
    heart_rows = np.zeros(silhouette.shape[0], dtype=bool)
    if widths.max(initial=0) > 0:
        heart_rows[int(np.argmax(widths >= HEART_ROW_SHARE * widths.max())):] = True
    return silhouette & heart_rows[:, None], silhouette & ~heart_rows[:, None]


def sided_lung_truth(case: LungCase) -> np.ndarray:
    """The annotated lungs as uint8 labels at image size, 0 / 1 right / 2 left, in the visible-lung
    convention (a silhouette is taken out of the lungs); the case must have both sides annotated."""
    if case.right_mask is None or case.left_mask is None:
        raise ValueError(f"{case.name}: the sides are not annotated")
    right = read_mask(case.right_mask)
    labels = np.zeros(right.shape, dtype=np.uint8)
    labels[right] = RIGHT_LUNG
    labels[read_mask(case.left_mask)] = LEFT_LUNG
    if case.silhouette_mask is not None:
        labels[read_mask(case.silhouette_mask)] = BACKGROUND
    return labels


def lung_truth(case: LungCase) -> np.ndarray:
    """The annotated lung union (right ∪ left) at image size, in the visible-lung convention."""
    if case.right_mask is not None and case.left_mask is not None:
        return sided_lung_truth(case) > 0
    return read_mask(case.lung_mask)


def side_labels(case: LungCase) -> np.ndarray:
    """uint8 labels at image size: 1 right lung, 2 left lung, 3 heart, UNKNOWN_BACKGROUND where the heart
    is not known (the background of a source without heart masks, the mediastinum above a silhouette's
    heart). Where only the lung union exists, each connected piece goes to the side of the image its centre
    lies on (right lung = image left). The few pixels the SCR heart and lung outlines share stay lung."""
    if case.right_mask is not None and case.left_mask is not None:
        lungs = sided_lung_truth(case)
        if case.heart_mask is not None:
            labels = np.full(lungs.shape, BACKGROUND, dtype=np.uint8)
            labels[read_mask(case.heart_mask)] = HEART
        elif case.silhouette_mask is not None:
            labels = np.full(lungs.shape, BACKGROUND, dtype=np.uint8)
            heart, above = silhouette_parts(read_mask(case.silhouette_mask))
            labels[heart] = HEART
            labels[above] = UNKNOWN_BACKGROUND
        else:
            labels = np.full(lungs.shape, UNKNOWN_BACKGROUND, dtype=np.uint8)
        labels[lungs > 0] = lungs[lungs > 0]
        return labels
    union = read_mask(case.lung_mask)
    components, count = ndimage.label(union)
    labels = np.full(union.shape, UNKNOWN_BACKGROUND, dtype=np.uint8)
    centres = ndimage.center_of_mass(union, components, range(1, count + 1))
    for index, (_, column) in enumerate(centres, start=1):
        labels[components == index] = RIGHT_LUNG if column < union.shape[1] / 2 else LEFT_LUNG
    return labels


def target_grid(labels: np.ndarray, fit: GridFit) -> np.ndarray:
    """Image-size labels -> model-grid labels: each label's share of a cell resampled like the image,
    the largest share wins. The grid's zero padding has no share of anything: true background,
    whatever the source annotates."""
    shares = np.stack([fit.to_grid((labels == label).astype(np.float32))
                       for label in range(UNKNOWN_BACKGROUND + 1)])
    return shares.argmax(axis=0).astype(np.uint8)


def nodule_disc(shape: tuple[int, int], x: float, y: float, diameter: float) -> np.ndarray:
    """A boolean disc of `diameter` (at least 2 * MIN_NODULE_RADIUS_PX) around column x, row y."""
    rows, columns = np.ogrid[:shape[0], :shape[1]]
    return (rows - y) ** 2 + (columns - x) ** 2 <= max(diameter / 2.0, MIN_NODULE_RADIUS_PX) ** 2


def lesion_region(case: LungCase, shape: tuple[int, int]) -> np.ndarray:
    """The case's lesion region at image size (all False for an image without a lesion)."""
    region = np.zeros(shape, dtype=bool)
    for path in case.lesion_masks:
        region |= read_mask(path)
    if case.nodule is not None:
        region |= nodule_disc(shape, *case.nodule)
    return region


def load_arrays(cases: list[LungCase], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model inputs (N, size, size) float32, grid labels (N, size, size) uint8 and the lesion share of
    each grid cell (N, size, size) float32."""
    inputs = np.empty((len(cases), size, size), dtype=np.float32)
    targets = np.empty((len(cases), size, size), dtype=np.uint8)
    lesions = np.empty((len(cases), size, size), dtype=np.float32)
    for index, case in enumerate(cases):
        grid, fit = model_input(read_image(case.image), size)
        labels = side_labels(case)
        if labels.shape != (fit.rows, fit.columns):
            raise ValueError(f"{case.name}: mask {labels.shape} and image {(fit.rows, fit.columns)} differ")
        inputs[index] = grid
        targets[index] = target_grid(labels, fit)
        lesions[index] = fit.to_grid(lesion_region(case, labels.shape).astype(np.float32))
    return inputs, targets, lesions
