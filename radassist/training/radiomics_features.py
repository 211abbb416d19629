"""Radiomics of the lung region the classifier sees: the partner view in the contrastive loss.

Features come from `radassist.explain.radiomics.extract_features` (first order, GLCM, GLRLM, GLSZM,
shape2D, force2D, the runtime's own settings) on the model's [0, 1] centre-square image, inside each lung
field (right and left apart, so asymmetry is in the partner view). Lung fields come from the bundled lung model (models/lungseg.onnx) when it is installed;
otherwise from a fixed lung-field template (two boxes where the lungs of a centred frontal film lie),
and the model card records which was used.
"""

from __future__ import annotations

import numpy as np

from radassist.explain.radiomics import extract_features
from radassist.image import Radiograph
from radassist.imaging.preprocess import PreprocessedImage

LUNG_MODEL = "lungseg"
TEMPLATE = "fixed_template"
# template lung boxes as fractions of the centre square: rows, then image-left and image-right columns
TEMPLATE_ROWS = (0.15, 0.85)
TEMPLATE_COLUMNS = ((0.12, 0.46), (0.54, 0.88))


def lung_model_available() -> bool:
    from radassist.inference.registry import active_card_path

    return active_card_path(LUNG_MODEL).exists()


def template_mask(size: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    top, bottom = (round(f * size) for f in TEMPLATE_ROWS)
    for left, right in TEMPLATE_COLUMNS:
        mask[top:bottom, round(left * size):round(right * size)] = True
    return mask


def lung_masks_in_crop(image: Radiograph, pre: PreprocessedImage, region: str) -> dict[str, np.ndarray]:
    """Boolean right and left lung masks on the model's S x S grid of the crop box (the template's halves
    when the model finds no lung, so every image gets features from comparable regions)."""
    size = pre.tensor.shape[-1]
    template = template_mask(size)
    image_left = np.zeros_like(template)
    image_left[:, : size // 2] = True
    fallback = {"right_lung": template & image_left, "left_lung": template & ~image_left}
    if region == TEMPLATE:
        return fallback
    from PIL import Image

    from radassist.imaging.lungs import segment_lungs
    from radassist.imaging.resample import resize_plane

    row0, col0, row1, col1 = pre.crop_box
    labels = segment_lungs(image).labels[row0:row1, col0:col1]
    masks = {}
    for name, value in (("right_lung", 1), ("left_lung", 2)):
        mask = resize_plane((labels == value).astype(np.uint8) * 255, size, size, Image.Resampling.NEAREST) > 127
        masks[name] = mask if mask.sum() >= 0.01 * mask.size else fallback[name]
    return masks


def unit_image(pre: PreprocessedImage) -> np.ndarray:
    """The crop back in [0, 1]: the standardisation is affine and the window spans [0, 1], so a
    min-max rescale of the tensor recovers the windowed image."""
    plane = pre.tensor[0]
    low, high = float(plane.min()), float(plane.max())
    return (plane - low) / max(high - low, 1e-6)


def radiomics_vector(image: Radiograph, pre: PreprocessedImage, region: str,
                     names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Feature values of each lung field ("right_lung:<feature>", "left_lung:<feature>"; float64, NaN where
    pyradiomics gave none) in a fixed name order."""
    unit = unit_image(pre)
    features = {f"{lung}:{name}": value
                for lung, mask in lung_masks_in_crop(image, pre, region).items()
                for name, value in extract_features(unit, mask).items()}
    names = names if names is not None else sorted(features)
    return np.array([features.get(name, np.nan) for name in names], dtype=np.float64), names
