"""Lung fields and heart: the ONNX anatomy segmentation, its post-processing and the lung zones a report
can name.

Why one module holds both the model preprocessing and the post-processing: training imports
`model_input` from here, so the network is trained on exactly the pixels the runtime feeds it, and
every consumer (report, saliency, radiomics, CTR, `radassist segment`) gets the same two lung fields
and the same heart.

The mask operations use SimpleITK, not scipy.ndimage: importing scipy.ndimage costs ~0.4 s in a fresh
process, which landed on the first read of every viewer session, CLI call and batch worker, while
SimpleITK is loaded by the read anyway (radiomics).

Label convention (see radassist.results): 0 background, 1 = patient's RIGHT lung (on the
image's LEFT in a standard PA/AP display), 2 = patient's LEFT lung. The heart is a separate mask
(`LungFields.heart`), so every caller of `labels` keeps seeing lungs only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import SimpleITK as sitk
from PIL import Image

from radassist.errors import ModelError
from radassist.image import Radiograph
from radassist.imaging.resample import resize_plane
from radassist.imaging.windowing import normalized_for_model

BACKGROUND, RIGHT_LUNG, LEFT_LUNG, HEART = 0, 1, 2, 3
SIDE_NAMES = {RIGHT_LUNG: "right", LEFT_LUNG: "left"}
LUNG_LABELS = ("background", "right_lung", "left_lung")  # the first output channels, as the card states them
MODEL_LABELS = (*LUNG_LABELS, "heart")  # what the anatomy model outputs; a lung-only model stops at LUNG_LABELS
ZONE_NAMES = ("upper", "middle", "lower")

# Post-processing constants, as fractions of the model grid's area or of a side's largest piece.
MIN_PIECE_FRACTION_OF_GRID = 0.002  # smaller blobs are noise (0.2 % of the grid is ~130 px at 256^2)
KEEP_PIECE_FRACTION_OF_SIDE = 0.2  # a lung split by a dense opacity keeps its second piece
MIN_LUNG_SEPARATION_FRACTION = 0.15  # two lungs' centres lie at least this far apart (fraction of width)
NEAR_LUNG_FRACTION = 0.05  # zone_at answers for points this close to a lung (fraction of the longer side)


class Box(NamedTuple):
    """A bounding box in image pixels; bottom and right are exclusive."""

    top: int
    left: int
    bottom: int
    right: int


@dataclass(frozen=True)
class GridFit:
    """How an image of any shape sits in the square model grid: scaled to fit, aspect kept, centred,
    zero-padded. Keeping the aspect matters: squashing a wide film changes the lung shapes the model
    learnt."""

    rows: int
    columns: int
    size: int

    @property
    def inner_rows(self) -> int:
        return max(1, round(self.rows * self.size / max(self.rows, self.columns)))

    @property
    def inner_columns(self) -> int:
        return max(1, round(self.columns * self.size / max(self.rows, self.columns)))

    @property
    def inner(self) -> tuple[slice, slice]:
        """Where the image lies inside the grid."""
        top = (self.size - self.inner_rows) // 2
        left = (self.size - self.inner_columns) // 2
        return slice(top, top + self.inner_rows), slice(left, left + self.inner_columns)

    def to_grid(self, plane: np.ndarray) -> np.ndarray:
        """An image-sized float plane (pixels or a 0/1 mask) -> the zero-padded size x size model grid."""
        grid = np.zeros((self.size, self.size), dtype=np.float32)
        grid[self.inner] = resize_plane(plane, self.inner_rows, self.inner_columns)
        return grid

    def to_image(self, grid: np.ndarray, resample: Image.Resampling) -> np.ndarray:
        """A model-grid plane -> image size (the padding is cropped off first)."""
        return resize_plane(grid[self.inner], self.rows, self.columns, resample)


def model_input(image: Radiograph, size: int) -> tuple[np.ndarray, GridFit]:
    """THE lung-model preprocessing, shared by training and runtime: model window to [0, 1]
    (`normalized_for_model`), then fitted into a size x size grid (aspect kept, zero padding).
    Returns the (size, size) float32 plane and the fit that maps outputs back to the image."""
    fit = GridFit(image.shape[0], image.shape[1], size)
    return fit.to_grid(normalized_for_model(image)), fit


@dataclass
class LungFields:
    """The two lung fields of one image, at the image's own size."""

    labels: np.ndarray  # uint8 (rows, columns): 0 background, 1 right lung, 2 left lung
    boxes: dict[str, Box]  # "right"/"left" -> box; a lung that was not found has no entry
    model_id: str = ""
    warnings: list[str] = field(default_factory=list)
    heart: np.ndarray | None = None  # bool (rows, columns); None when the model has no heart output
    # float32 lesion probability over the image on the model grid (image aspect, grid resolution, not image
    # size: localisation resamples it to its own working size); None when the model has no lesion output
    lesion: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        """Both lungs as one boolean mask (what `radassist segment` writes)."""
        return self.labels != BACKGROUND

    def area_px(self, side: str) -> int:
        return int(np.count_nonzero(self.labels == _label_of(side)))


def _label_of(side: str) -> int:
    return RIGHT_LUNG if side == "right" else LEFT_LUNG


class _GridFilter(Protocol):
    """What `_run` needs of a SimpleITK filter (the ImageFilter base class declares no Execute)."""

    def SetNumberOfWorkUnits(self, units: int) -> None: ...  # noqa: N802 (SimpleITK's names)

    def Execute(self, image: sitk.Image) -> sitk.Image: ...  # noqa: N802


def _run(image_filter: _GridFilter, plane: np.ndarray) -> np.ndarray:
    """A SimpleITK filter on a mask or label grid (as uint8: SimpleITK has no boolean pixel type).

    One work unit (single-threaded): the grids are small, and right after the ONNX run onnxruntime's
    workers are still spinning, so split work waits for cores (segment_lungs +40 ms on 2 cores).
    SetNumberOfThreads(1) alone does not stop the split."""
    image_filter.SetNumberOfWorkUnits(1)
    return sitk.GetArrayFromImage(image_filter.Execute(sitk.GetImageFromArray(np.asarray(plane, dtype=np.uint8))))


def connected_pieces(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 4-connected pieces of a mask: a label grid (0 outside, pieces 1..n) and each piece's area.

    Edge-connectivity only, so two blobs touching at a corner stay two pieces."""
    labelling = sitk.ConnectedComponentImageFilter()
    labelling.FullyConnectedOff()
    pieces = _run(labelling, mask)
    return pieces, np.bincount(pieces.ravel())[1:]


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with every hole filled: background that cannot reach the grid border through
    edge-connected background (a gap at a corner does not open a hole)."""
    filling = sitk.BinaryFillholeImageFilter()
    filling.FullyConnectedOff()
    filling.SetForegroundValue(1)
    return _run(filling, mask).astype(bool)


def _squared_distance_to(mask: np.ndarray) -> np.ndarray:
    """Exact squared Euclidean distance in pixels from every pixel to the nearest pixel of a non-empty
    mask (zero or negative inside it): SimpleITK's signed Maurer distance map, float32."""
    distance = sitk.SignedMaurerDistanceMapImageFilter()
    distance.InsideIsPositiveOff()
    distance.SquaredDistanceOn()
    distance.UseImageSpacingOff()
    return _run(distance, mask)


def nearest_side(sides: np.ndarray) -> np.ndarray:
    """For a grid of sides (BACKGROUND / RIGHT_LUNG / LEFT_LUNG, at least one lung cell), the side of
    every cell's nearest lung cell; lung cells keep their own and a cell equally near both takes the right.

    Exact distances, not a Danielsson Voronoi map: that one propagates distance vectors and can give a
    cell 3 px from one lung and 2.8 px from the other to the farther lung."""
    right, left = sides == RIGHT_LUNG, sides == LEFT_LUNG
    if not left.any() or not right.any():
        return np.full(sides.shape, RIGHT_LUNG if right.any() else LEFT_LUNG, dtype=np.uint8)
    nearer_right = _squared_distance_to(right) <= _squared_distance_to(left)
    return np.where(nearer_right, RIGHT_LUNG, LEFT_LUNG).astype(np.uint8)


def _keep_main_pieces(side_mask: np.ndarray, min_area: int) -> np.ndarray:
    """A side's largest connected piece plus any piece at least KEEP_PIECE_FRACTION_OF_SIDE of it."""
    pieces, areas = connected_pieces(side_mask)
    if areas.size == 0:
        return side_mask
    largest = areas.max()
    if largest < min_area:
        return np.zeros_like(side_mask)
    keep = np.flatnonzero(areas >= max(min_area, KEEP_PIECE_FRACTION_OF_SIDE * largest)) + 1
    return fill_holes(np.isin(pieces, keep))


def _split_lone_side(kept: dict[int, np.ndarray], min_area: int) -> list[str]:
    """Fallback when the model put both lungs on one side: two separate large pieces on one side and
    nothing on the other are re-labelled by position (the piece on the image's left is the right lung)."""
    for side, other in ((RIGHT_LUNG, LEFT_LUNG), (LEFT_LUNG, RIGHT_LUNG)):
        if kept[other].any() or not kept[side].any():
            continue
        components, areas = connected_pieces(kept[side])
        if areas.size < 2:
            return [f"only the {SIDE_NAMES[side]} lung field was found"]
        first, second = (np.argsort(areas)[::-1][:2] + 1).tolist()
        if areas[second - 1] < min_area:
            return [f"only the {SIDE_NAMES[side]} lung field was found"]
        columns = [np.nonzero(components == c)[1].mean() for c in (first, second)]
        if abs(columns[0] - columns[1]) < MIN_LUNG_SEPARATION_FRACTION * components.shape[1]:
            return [f"only the {SIDE_NAMES[side]} lung field was found"]  # one lung cut in two pieces
        image_left, image_right = (first, second) if columns[0] < columns[1] else (second, first)
        kept[RIGHT_LUNG] = components == image_left
        kept[LEFT_LUNG] = components == image_right
        return ["lung sides were assigned by position (the model labelled both lungs as one side)"]
    return []


def lung_probability(probabilities: np.ndarray) -> np.ndarray:
    """P(right lung) + P(left lung) on the model grid."""
    return probabilities[RIGHT_LUNG] + probabilities[LEFT_LUNG]


def clean_lung_grid(probabilities: np.ndarray) -> tuple[dict[int, np.ndarray], list[str]]:
    """Model-grid probabilities (background, right, left[, heart], S, S) -> one cleaned boolean mask per lung.

    A pixel is lung where P(right) + P(left) > 0.5 and belongs to the more probable side; per side the main
    pieces are kept and holes filled (a dense consolidation inside a lung is still lung)."""
    lung = lung_probability(probabilities) > 0.5
    right_wins = probabilities[RIGHT_LUNG] >= probabilities[LEFT_LUNG]
    min_area = int(MIN_PIECE_FRACTION_OF_GRID * lung.size)
    kept = {
        RIGHT_LUNG: _keep_main_pieces(lung & right_wins, min_area),
        LEFT_LUNG: _keep_main_pieces(lung & ~right_wins, min_area),
    }
    warnings = _split_lone_side(kept, min_area)
    if not kept[RIGHT_LUNG].any() and not kept[LEFT_LUNG].any():
        warnings = ["no lung field was found"]
    return kept, warnings


def _to_image_through(probability: np.ndarray, kept: np.ndarray, fit: GridFit) -> np.ndarray:
    """A cleaned grid mask brought to image size through its probability, so the outline keeps the
    sub-pixel smoothness of the model output instead of the grid's staircase: an 8-bit score, >= 128
    inside the kept mask and <= 127 outside, bilinear to image size, thresholded at 128."""
    score = 255.0 * probability
    score = np.where(kept, np.maximum(score, 128.0), np.minimum(score, 127.0)).astype(np.uint8)
    return fit.to_image(score, Image.Resampling.BILINEAR) >= 128


def clean_heart_grid(probabilities: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """The heart on the model grid: P(heart) > 0.5 outside the cleaned lungs, its largest piece, holes
    filled (empty when that piece is smaller than a noise blob)."""
    heart = (probabilities[HEART] > 0.5) & ~lungs
    pieces, areas = connected_pieces(heart)
    if areas.size == 0 or areas.max() < MIN_PIECE_FRACTION_OF_GRID * heart.size:
        return np.zeros_like(heart)
    return fill_holes(pieces == int(np.argmax(areas)) + 1) & ~lungs


def lung_fields_from_probabilities(probabilities: np.ndarray, fit: GridFit, model_id: str = "") -> LungFields:
    """Clean the grid masks, then bring them to image size through their probabilities. The heart is
    there when the model outputs it (a 4th channel)."""
    kept, warnings = clean_lung_grid(probabilities)
    lung = kept[RIGHT_LUNG] | kept[LEFT_LUNG]
    labels = np.zeros((fit.rows, fit.columns), dtype=np.uint8)
    if lung.any():
        sides = np.where(kept[RIGHT_LUNG], RIGHT_LUNG, np.where(kept[LEFT_LUNG], LEFT_LUNG, BACKGROUND))
        # Every grid cell takes the side of its nearest lung cell, so outline pixels get a side too.
        side_of_cell = nearest_side(sides)
        inside = _to_image_through(lung_probability(probabilities), lung, fit)
        # side x inside: BACKGROUND outside, in one uint8 pass (np.where + astype costs twice that)
        labels = np.multiply(fit.to_image(side_of_cell, Image.Resampling.NEAREST), inside, dtype=np.uint8)
    heart = None
    if probabilities.shape[0] > HEART:
        heart = _to_image_through(probabilities[HEART], clean_heart_grid(probabilities, lung), fit) & (labels == 0)
        if not heart.any():
            warnings.append("no heart was found")
    return LungFields(labels=labels, boxes=bounding_boxes(labels), model_id=model_id, warnings=warnings, heart=heart)


def bounding_boxes(labels: np.ndarray) -> dict[str, Box]:
    """Per-lung boxes of a label image; a lung with no pixel gets no box."""
    boxes: dict[str, Box] = {}
    for label, side in SIDE_NAMES.items():
        present = labels == label
        rows = np.flatnonzero(present.any(axis=1))
        if rows.size:
            columns = np.flatnonzero(present.any(axis=0))
            boxes[side] = Box(int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)
    return boxes


def segment_lungs(image: Radiograph, model: str = "lungseg") -> LungFields:
    """Lung fields (and the heart, when the model outputs it) of a radiograph with the bundled (or
    activated) anatomy model, at the image's size."""
    from radassist.inference.engine import load_model

    session = load_model(model)
    labels = session.card.data.get("labels")
    if labels not in (list(LUNG_LABELS), list(MODEL_LABELS)):
        raise ModelError(f"model {session.card.model_id} does not output {', '.join(LUNG_LABELS)}[, heart] "
                         "(its card lists other labels), so it cannot be used for lung fields")
    size = int(session.card.data["preprocessing"]["input_size"])
    grid, fit = model_input(image, size)
    outputs = ["probabilities", "lesion"] if "lesion" in session.card.data.get("outputs", {}) else ["probabilities"]
    results = session.run({"image": grid[None, None]}, outputs)
    fields = lung_fields_from_probabilities(results["probabilities"][0], fit, session.card.model_id)
    if "lesion" in results:
        fields.lesion = np.ascontiguousarray(results["lesion"][0, 0][fit.inner])
    return fields


def _zone_index(box: Box, rows: np.ndarray) -> np.ndarray:
    """Upper/middle/lower third (0, 1, 2) of the lung's own vertical extent, for each row."""
    return np.clip(3 * (rows - box.top) // max(1, box.bottom - box.top), 0, 2)


def zone_name(side: str, index: int) -> str:
    return f"{side} {ZONE_NAMES[index]} zone"


def zone_masks(fields: LungFields) -> dict[str, np.ndarray]:
    """Boolean masks of the six zones (those of a missing lung are absent), e.g. "right upper zone"."""
    masks: dict[str, np.ndarray] = {}
    for side, box in fields.boxes.items():
        lung = fields.labels == _label_of(side)
        row_zone = _zone_index(box, np.arange(fields.labels.shape[0]))[:, None]
        for index in range(3):
            masks[zone_name(side, index)] = lung & (row_zone == index)
    return masks


def zone_at(fields: LungFields, row: int, col: int, max_distance: float | None = None) -> str | None:
    """The lung zone at a pixel, or of the nearest lung pixel when the point lies just outside a lung
    (a saliency peak on the pleural edge still belongs to that zone); None when no lung is near."""
    labels = fields.labels
    if not (0 <= row < labels.shape[0] and 0 <= col < labels.shape[1]):
        return None
    if max_distance is None:
        max_distance = NEAR_LUNG_FRACTION * max(labels.shape)
    label = int(labels[row, col])
    if label == BACKGROUND:
        reach = int(np.ceil(max_distance))
        top, left = max(0, row - reach), max(0, col - reach)
        window = labels[top:row + reach + 1, left:col + reach + 1]
        lung_rows, lung_cols = np.nonzero(window)
        if lung_rows.size == 0:
            return None
        distances = np.hypot(lung_rows + top - row, lung_cols + left - col)
        nearest = int(np.argmin(distances))
        if distances[nearest] > max_distance:
            return None
        row, col = int(lung_rows[nearest]) + top, int(lung_cols[nearest]) + left
        label = int(labels[row, col])
    side = SIDE_NAMES[label]
    return zone_name(side, int(_zone_index(fields.boxes[side], np.asarray(row))))
