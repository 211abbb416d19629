"""What the model card reports about a training run, all on the validation split (patients never seen by
training, calibration or threshold choice), with bootstrap CIs over patients.

Per label: overall, per source folder, per age group, per view (PA / AP). Beside the model, on the same images:
a pixels-only logistic regression (8 x 8 thumbnail of the model's own input) and the ablation (same network,
split and budget, no InfoNCE), each with a paired bootstrap CI of the AUROC difference. And the two rates a
reading room asks first: adult normals flagged abnormal, adult pneumonia / COVID-19 films flagged abnormal.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from radassist.training.datasets import TRAIN, VALIDATION, ImageRecord
from radassist.training.labels import LABELS
from radassist.training.metrics import (
    expected_calibration_error,
    label_metrics,
    paired_auroc_difference,
    rate_with_ci,
    sensitivity_specificity,
)
from radassist.training.shape_baseline import shape_only_scores

UNKNOWN = -1
PIXEL_SIDE = 8


def view_of(record: ImageRecord) -> str:
    """'PA', 'AP' (AP, AP supine, portable) or 'unknown' from the labels.csv `view` column."""
    view = (record.row.get("view") or "").strip().upper()
    if view.startswith("PA"):
        return "PA"
    return "AP" if view.startswith("AP") else "unknown"


def pixel_features(tensors: np.ndarray) -> np.ndarray:
    """The model input averaged to PIXEL_SIDE x PIXEL_SIDE: what "coarse appearance" alone can do."""
    n, _, size, _ = tensors.shape
    block = size // PIXEL_SIDE
    crop = tensors[:, 0, :block * PIXEL_SIDE, :block * PIXEL_SIDE].astype(np.float64)
    return crop.reshape(n, PIXEL_SIDE, block, PIXEL_SIDE, block).mean(axis=(2, 4)).reshape(n, -1)


def one_label_block(y: np.ndarray, p: np.ndarray, threshold: float, groups: np.ndarray, seed: int) -> dict:
    """label_metrics where both classes exist, else the one rate that means something and the ECE."""
    if len(np.unique(y)) == 2:
        return label_metrics(y, p, threshold, seed, groups=groups)
    sensitivity, specificity = sensitivity_specificity(y, p, threshold)
    return {"n_positive": int(y.sum()), "n_negative": int((y == 0).sum()), "threshold": float(threshold),
            "sensitivity": sensitivity, "specificity": specificity, "ece": expected_calibration_error(y, p),
            "note": "one class only: AUROC undefined"}


def validation_report(records: list[ImageRecord], assignment: np.ndarray, groups: list[str], targets: np.ndarray,
                      tensors: np.ndarray, variants: list, seed: int) -> dict:
    main = variants[0]
    validation = assignment == VALIDATION
    train = assignment == TRAIN
    group_ids = np.array(groups)
    sources = np.array([r.source for r in records])
    domains = np.array([r.domain for r in records])
    views = np.array([view_of(r) for r in records])
    pixels = pixel_features(tensors)
    per_label: dict = {}
    baselines: dict = {"pixels_8x8_logistic": {}, **{f"{v.name}": {} for v in variants[1:]}}
    for j, label in enumerate(LABELS):
        subset = validation & (targets[:, j] != UNKNOWN)
        if not subset.any():
            continue
        y, p, threshold = targets[subset, j], main.probabilities[subset, j], main.thresholds[j]
        block = one_label_block(y, p, threshold, group_ids[subset], seed)
        for name, values in (("by_source", sources), ("by_age_group", domains), ("by_view", views)):
            block[name] = {value: one_label_block(targets[subset & (values == value), j],
                                                  main.probabilities[subset & (values == value), j], threshold,
                                                  group_ids[subset & (values == value)], seed)
                           for value in sorted(set(values[subset]))}
        per_label[label] = block
        if len(np.unique(y)) < 2:
            continue
        fit_on = train & (targets[:, j] != UNKNOWN)
        if len(np.unique(targets[fit_on, j])) == 2:
            scores = shape_only_scores(pixels[fit_on], targets[fit_on, j], pixels[subset])
            baselines["pixels_8x8_logistic"][label] = _versus(y, main.probabilities[subset, j], scores,
                                                              group_ids[subset], seed)
        for other in variants[1:]:
            baselines[other.name][label] = _versus(y, main.probabilities[subset, j],
                                                   other.probabilities[subset, j], group_ids[subset], seed)
    return {"per_label": per_label, "baselines": baselines,
            "reading_room_rates": _reading_room_rates(records, validation, targets, main, group_ids, seed)}


def _versus(y: np.ndarray, model: np.ndarray, baseline: np.ndarray, groups: np.ndarray, seed: int) -> dict:
    block = label_metrics(y, baseline, 0.5, seed, groups=groups)
    comparison = paired_auroc_difference(y, model, baseline, groups=groups, seed=seed)
    return {"auroc": block["auroc"], "auroc_ci95": block["auroc_ci95"],
            "model_minus_baseline": comparison["difference"],
            "model_minus_baseline_ci95": comparison["difference_ci95"]}


def _reading_room_rates(records: list[ImageRecord], validation: np.ndarray, targets: np.ndarray, main,
                        groups: np.ndarray, seed: int) -> dict:
    """At the card's `abnormal` threshold, on adult validation films: normals flagged (per source and all) and
    films with pneumonia (incl. COVID-19) flagged."""
    j = LABELS.index("abnormal")
    flagged = main.probabilities[:, j] >= main.thresholds[j]
    adult = np.array([r.domain == "adult" for r in records])
    sources = np.array([r.source for r in records])
    normals = validation & adult & (targets[:, j] == 0)
    infected = validation & adult & (targets[:, LABELS.index("pneumonia")] == 1)
    rates = {"threshold": float(main.thresholds[j]),
             "adult_normals_flagged_abnormal": rate_with_ci(flagged[normals], groups[normals], seed),
             "adult_pneumonia_flagged_abnormal": rate_with_ci(flagged[infected], groups[infected], seed),
             "adult_normals_flagged_by_source": {s: rate_with_ci(flagged[normals & (sources == s)],
                                                                 groups[normals & (sources == s)], seed)
                                                 for s in sorted(set(sources[normals]))}}
    return rates


def write_predictions(path: Path, records: list[ImageRecord], assignment: np.ndarray, targets: np.ndarray,
                      variants: list) -> None:
    """Validation rows: targets and each variant's calibrated probabilities (for paired re-analysis)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "file", *[f"{label}_target" for label in LABELS],
                         *[f"{v.name}_{label}" for v in variants for label in LABELS]])
        for index in np.flatnonzero(assignment == VALIDATION):
            writer.writerow([records[index].source, records[index].file, *targets[index].tolist(),
                             *[f"{v.probabilities[index, j]:.6f}" for v in variants for j in range(len(LABELS))]])
