"""Where the evidence is: the anatomy model's lesion output (smoothed; what a read shows for a finding in
the lungs), class activation maps (from the ONNX graph) and occlusion sensitivity, brought back to image
pixels, restricted to the lungs, with a peak and the side the evidence names (or none)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from radassist.imaging.resample import resize_plane
from radassist.vocabulary import Side

CropBox = tuple[int, int, int, int]  # row0, col0, row1, col1 in image pixels
WORKING_SIDE = 512  # px: longest side at which maps are computed (a CAM has a few cells per side)
# Gaussian sigma of the lesion output's smoothing, as a fraction of its grid's longer side: the peak of a blob,
# not of one noisy cell (on the validation references: peak in lesion 0.45 -> 0.51, models/lungseg.md).
LESION_SMOOTHING = 0.02
# A side is named only when it holds at least this share of a map's evidence density in the lungs (mean evidence
# per lung pixel, so the larger right lung does not win by its size); below it the evidence does not say which
# side. Chosen on the validation references (models/lungseg.md), where it trades films with no side named for
# fewer wrong sides.
SIDE_EVIDENCE_SHARE = 0.75


def to_image_space(model_map: np.ndarray, crop_box: CropBox, image_shape: tuple[int, int]) -> np.ndarray:
    """A map over the model input (which covers `crop_box` of the image) -> a map at image size, 0 outside."""
    row0, col0, row1, col1 = crop_box
    full = np.zeros(image_shape, dtype=np.float32)
    full[row0:row1, col0:col1] = resize_plane(model_map, row1 - row0, col1 - col0)
    return full


class SaliencyMaps(Mapping[str, np.ndarray]):
    """One image's saliency maps, computed at a working resolution (longest side <= WORKING_SIDE) and
    brought to image size only for the labels a caller asks for.

    Why: a CAM has a few cells per side, so the working copy loses nothing, while doing the masking and
    normalisation at 3000 x 3000 cost ~150 ms and 36 MB per label on every read, for maps the radiologist
    may never display. `maps[label]` is the image-size float32 map in [0, 1], as before."""

    def __init__(self, image_shape: tuple[int, int]) -> None:
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        self.stride = max(1, -(-max(self.image_shape) // WORKING_SIDE))  # ceil division
        self.working_shape = (-(-self.image_shape[0] // self.stride), -(-self.image_shape[1] // self.stride))
        self._working: dict[str, np.ndarray] = {}
        self._full: dict[str, np.ndarray] = {}

    def working_box(self, crop_box: CropBox) -> CropBox:
        """An image-pixel box in working-resolution pixels (never empty)."""
        rows, columns = self.working_shape
        row0, col0, row1, col1 = (int(round(v / self.stride)) for v in crop_box)
        row0, col0 = min(row0, rows - 1), min(col0, columns - 1)
        return row0, col0, max(min(row1, rows), row0 + 1), max(min(col1, columns), col0 + 1)

    def add(self, label: str, working_map: np.ndarray) -> None:
        if working_map.shape != self.working_shape:
            raise ValueError(f"map of shape {working_map.shape} for working shape {self.working_shape}")
        self._working[label] = working_map
        self._full.pop(label, None)

    def at_shape(self, label: str, shape: tuple[int, int]) -> np.ndarray:
        """The map resampled (bilinear) to any grid covering the whole image, e.g. a radiomics grid."""
        working = self._working[label]
        return working if working.shape == tuple(shape) else resize_plane(working, int(shape[0]), int(shape[1]))

    def as_uint8(self, label: str) -> np.ndarray:
        """The map as uint8 (0-255) at image size, for display: quantised at the working resolution and
        upsampled as 8-bit, which at 3000 x 3000 took ~30 ms here instead of ~100 ms through the float map
        (values within one grey level of quantising the float map)."""
        working = np.rint(np.clip(self._working[label], 0.0, 1.0) * 255.0).astype(np.uint8)
        if working.shape == self.image_shape:
            return working
        return resize_plane(working, *self.image_shape)

    def peak(self, label: str) -> tuple[int, int] | None:
        """The map's maximum in image pixels (the centre of the working cell), None for an empty map."""
        working_peak = peak_location(self._working[label])
        if working_peak is None:
            return None
        return tuple(min(int((v + 0.5) * size / n), size - 1)  # type: ignore[return-value]
                     for v, size, n in zip(working_peak, self.image_shape, self.working_shape, strict=True))

    def side(self, label: str, lung_labels: np.ndarray) -> Side | None:
        """`evidence_side` of the label's map; lung_labels at the working shape (labels[::stride, ::stride])."""
        return evidence_side(self._working[label], lung_labels)

    def __getitem__(self, label: str) -> np.ndarray:
        if label not in self._full:
            self._full[label] = self.at_shape(label, self.image_shape)
        return self._full[label]

    def __contains__(self, label: object) -> bool:  # Mapping's default would resample the map to answer
        return label in self._working

    def __iter__(self) -> Iterator[str]:
        return iter(self._working)

    def __len__(self) -> int:
        return len(self._working)


def lung_envelope(lung_labels: np.ndarray, margin_fraction: float = 0.03) -> np.ndarray:
    """The lungs grown by a small margin, so opacity at the lung edge (effusion, hilum) is not cut off:
    every pixel within margin_fraction of the longer side (Euclidean, a disc) of a lung pixel.

    Plain numpy, not scipy.ndimage (whose import costs ~0.4 s per process): a disc is, for each row
    offset dy, the lungs grown sideways by isqrt(radius^2 - dy^2) and shifted by dy."""
    lungs = lung_labels > 0
    rows = lungs.shape[0]
    radius = max(1, int(round(margin_fraction * max(lung_labels.shape))))
    half_width = {dy: math.isqrt(radius * radius - dy * dy) for dy in range(min(radius, rows - 1) + 1)}
    envelope = np.zeros_like(lungs)
    sideways = lungs  # the lungs grown by `width` px to the left and to the right
    for width in range(radius + 1):
        if width:
            grown = sideways.copy()
            grown[:, 1:] |= sideways[:, :-1]
            grown[:, :-1] |= sideways[:, 1:]
            sideways = grown
        for dy in (dy for dy, w in half_width.items() if w == width):
            envelope[dy:] |= sideways[:rows - dy]
            envelope[:rows - dy] |= sideways[dy:]
    return envelope


def normalised_saliency(raw: np.ndarray, restrict_to: np.ndarray | None) -> np.ndarray:
    """Positive evidence only, optionally inside a mask, scaled to [0, 1] (all zeros if there is none)."""
    positive = np.maximum(raw, 0.0)
    if restrict_to is not None:
        positive = positive * restrict_to
    peak = float(positive.max())
    return positive / peak if peak > 0 else positive


def peak_location(saliency: np.ndarray) -> tuple[int, int] | None:
    if not np.any(saliency > 0):
        return None
    row, column = np.unravel_index(int(np.argmax(saliency)), saliency.shape)
    return int(row), int(column)


def gaussian_smoothed(plane: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """`plane` blurred by a Gaussian of sigma `sigma_fraction` of its longer side, weights renormalised at
    the edges. Two small matrix products (a 256 px grid: well under a millisecond), no scipy at start-up."""
    sigma = sigma_fraction * max(plane.shape)

    def kernel(size: int) -> np.ndarray:
        offsets = np.arange(size, dtype=np.float32)
        weights = np.exp(-0.5 * ((offsets[:, None] - offsets[None, :]) / sigma) ** 2)
        return weights / weights.sum(axis=1, keepdims=True)

    return (kernel(plane.shape[0]) @ plane.astype(np.float32) @ kernel(plane.shape[1]).T).astype(np.float32)


def lesion_weight(lesion: np.ndarray, working_shape: tuple[int, int]) -> np.ndarray:
    """The anatomy model's lesion probability (`LungFields.lesion`, any resolution over the whole image),
    smoothed (LESION_SMOOTHING), at the maps' working shape: computed once per read, used for every label."""
    return resize_plane(gaussian_smoothed(lesion, LESION_SMOOTHING), int(working_shape[0]), int(working_shape[1]))


def evidence_side(saliency: np.ndarray, lung_labels: np.ndarray) -> Side | None:
    """The side holding at least SIDE_EVIDENCE_SHARE of the map's evidence density inside the lungs (map and
    lung labels on the same grid), None when neither does or there is no evidence in the lungs.

    Density, not total: the right lung is larger than the left (more so in the visible-lung convention, which
    leaves out the lung behind the heart), so by total evidence an even haze would be named right."""
    per_label = np.bincount(lung_labels.ravel(), weights=saliency.ravel(), minlength=3)
    area = np.bincount(lung_labels.ravel(), minlength=3)
    density = {side: float(per_label[side.lung_mask_value]) / area[side.lung_mask_value]
               for side in Side if area[side.lung_mask_value]}
    total = sum(density.values())
    if total <= 0:
        return None
    side = max(density, key=lambda s: density[s])
    return side if density[side] >= SIDE_EVIDENCE_SHARE * total else None


def lesion_weighted(raw: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """A raw map at working shape (e.g. `to_image_space` of a CAM) weighted by the lesion probability at
    the same shape (`lesion_weight`): the classifier says what, the lesion output says where. Positive
    evidence only; scale is arbitrary (`normalised_saliency` rescales). A floor on both factors keeps a
    lesion the CAM misses visible and gives a CAM without any lesion its own peak."""
    peak = float(raw.max())
    evidence = np.maximum(raw, 0.0) / peak if peak > 0 else np.zeros_like(raw)
    return (0.1 + evidence) * (0.01 + weight)


def mirrored_cam(run_cam: Callable[[np.ndarray], np.ndarray], tensor: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The CAM (L, h, w) of `tensor` (1, S, S) averaged with the CAM of the mirrored input, mirrored back.

    What a lesion causes moves with the image, so it adds up; what the model attributes to a fixed side
    of the picture (the heart, side markers) lands on both sides and no longer wins the peak. One extra
    forward pass. `run_cam` maps a batch (N, 1, S, S) to CAMs (N, L, h, w)."""
    mirrored = run_cam(np.ascontiguousarray(tensor[None, :, :, ::-1]))[0]
    return 0.5 * (cam + mirrored[:, :, ::-1])


def occlusion_sensitivity(run_logits: Callable[[np.ndarray], np.ndarray], tensor: np.ndarray,
                          grid: int = 8, baseline: float = 0.0) -> np.ndarray:
    """Model-agnostic check: drop in each logit when a patch of the input is replaced by `baseline`.

    tensor is the model input (1, S, S); returns (L, grid, grid) maps in model space, which
    `to_image_space` upsamples like a CAM. Costs grid*grid forward passes, so it is an option.
    """
    _, size_r, size_c = tensor.shape
    reference = run_logits(tensor[None])[0]
    batch = np.repeat(tensor[None], grid * grid, axis=0)
    step_r, step_c = size_r / grid, size_c / grid
    for index in range(grid * grid):
        gr, gc = divmod(index, grid)
        batch[index, :, int(gr * step_r):int((gr + 1) * step_r), int(gc * step_c):int((gc + 1) * step_c)] = baseline
    logits = run_logits(batch)  # (grid*grid, L)
    drops = reference[None, :] - logits
    return drops.T.reshape(-1, grid, grid).astype(np.float32)
