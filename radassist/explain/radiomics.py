"""pyradiomics features of lung regions, and their translation into sentences a radiologist reads.

Why radiomics here: the seed method pairs the network's view with quantitative texture/density
features, the expert's own language. The same extractor settings are used for evidence at runtime
and (via `extract_features`) wherever training needs features, so the numbers mean the same thing.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from radassist.results import EvidenceStatement

FEATURE_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "shape2D")
RUNTIME_FEATURE_CLASSES = ("firstorder", "glcm")  # what a read computes per region (evidence + its table)
GREY_LEVELS = 255.0  # regions are scored on the [0, 1] model intensity scaled to 0..255
BIN_WIDTH = 8.0
MIN_REGION_PIXELS = 64


@lru_cache(maxsize=4)
def _extractor(feature_classes: tuple[str, ...]):
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(force2D=True, binWidth=BIN_WIDTH,
                                                           additionalInfo=False)
    extractor.disableAllFeatures()
    for name in feature_classes:
        extractor.enableFeatureClassByName(name)
    return extractor


def extract_features(image01: np.ndarray, mask: np.ndarray,
                     feature_classes: tuple[str, ...] = FEATURE_CLASSES) -> dict[str, float]:
    """pyradiomics features of `mask` (bool/uint8, same shape) on an image in [0, 1]; {} if too small."""
    import SimpleITK as sitk

    mask = np.asarray(mask) > 0
    if int(mask.sum()) < MIN_REGION_PIXELS:
        return {}
    image = sitk.GetImageFromArray((np.asarray(image01, dtype=np.float32) * GREY_LEVELS)[None])
    label = sitk.GetImageFromArray(mask.astype(np.uint8)[None])
    label.CopyInformation(image)
    result = _extractor(tuple(feature_classes)).execute(image, label)
    return {key: float(value) for key, value in result.items() if not key.startswith("diagnostics")}


def prepare() -> None:
    """Build the extractor and run it once on a small synthetic region: pyradiomics' imports and first
    call cost ~0.2 s, which a viewer pays in the background at start-up instead of in the first read."""
    ramp = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    extract_features(ramp, np.ones(ramp.shape, dtype=bool), RUNTIME_FEATURE_CLASSES)


def region_table(image01: np.ndarray, regions: dict[str, np.ndarray],
                 feature_classes: tuple[str, ...] = FEATURE_CLASSES) -> dict[str, dict[str, float]]:
    """The raw feature table, one row per named region (regions smaller than MIN_REGION_PIXELS skipped)."""
    table = {}
    for name, mask in regions.items():
        features = extract_features(image01, mask, feature_classes)
        if features:
            table[name] = features
    return table


LUNG_NAMES = {"right_lung": "right lung", "left_lung": "left lung"}
MEAN = "original_firstorder_Mean"
ENTROPY = "original_glcm_JointEntropy"
SAME_WITHIN = 0.05  # relative differences below 5% are reported as "similar" / "symmetric"


def _relative(a: float, b: float) -> float:
    return (a - b) / max(abs(b), 1e-6)


def evidence_statements(table: dict[str, dict[str, float]], salient_side: str | None) -> list[EvidenceStatement]:
    """A handful of figures worth reading: density and texture of the salient region against the
    contralateral lung, and right vs left lung density. `salient_side` is "right_lung"/"left_lung"."""
    statements: list[EvidenceStatement] = []
    salient = table.get("salient")
    if salient and salient_side in LUNG_NAMES:
        other = "left_lung" if salient_side == "right_lung" else "right_lung"
        reference = table.get(other)
        if reference:
            for feature, what in ((MEAN, "mean density"), (ENTROPY, "texture heterogeneity (GLCM joint entropy)")):
                if feature in salient and feature in reference:
                    change = _relative(salient[feature], reference[feature])
                    if abs(change) < SAME_WITHIN:
                        comparison = f"similar to the {LUNG_NAMES[other]}"
                    else:
                        direction = "higher" if change > 0 else "lower"
                        comparison = f"{abs(change) * 100:.0f}% {direction} than the {LUNG_NAMES[other]}"
                    statements.append(EvidenceStatement(
                        text=f"The highlighted region in the {LUNG_NAMES[salient_side]} has {what} {comparison}.",
                        feature=feature, region="salient", value=salient[feature], reference=reference[feature]))
    right, left = table.get("right_lung"), table.get("left_lung")
    if right and left and MEAN in right and MEAN in left:
        change = _relative(right[MEAN], left[MEAN])
        if abs(change) >= SAME_WITHIN:
            denser, lighter = ("right", "left") if change > 0 else ("left", "right")
            statements.append(EvidenceStatement(
                text=f"The {denser} lung is {abs(change) * 100:.0f}% denser on average than the {lighter} lung.",
                feature=MEAN, region="right_lung", value=right[MEAN], reference=left[MEAN]))
        else:
            statements.append(EvidenceStatement(
                text="Mean lung density is symmetric (right and left within 5%).",
                feature=MEAN, region="right_lung", value=right[MEAN], reference=left[MEAN]))
    return statements
