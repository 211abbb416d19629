"""Classification statistics in numpy only (training, `radassist evaluate` and fine-tuning share them).

AUROC is the Mann-Whitney statistic; confidence intervals are percentile bootstraps over images
(seeded, so a figure in a model card can be reproduced); ECE uses equal-width probability bins.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.stats import rankdata

BOOTSTRAP_SAMPLES = 1000
ECE_BINS = 10


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN when one class is missing."""
    labels = np.asarray(labels).astype(bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def bootstrap_ci(labels: np.ndarray, scores: np.ndarray, statistic=auroc, samples: int = BOOTSTRAP_SAMPLES,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % interval of `statistic` over image resamples (resamples missing a class are skipped)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(samples):
        index = rng.integers(0, len(labels), len(labels))
        value = statistic(labels[index], scores[index])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, threshold) at every distinct score, from (0, 0)."""
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    sorted_scores, sorted_labels = np.asarray(scores)[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tps = np.cumsum(sorted_labels)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    tpr = np.r_[0.0, tps / max(labels.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~labels).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, sorted_scores[last_of_tie]]


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score maximising sensitivity + specificity - 1 (Youden's J) on these images."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    best = int(np.argmax(tpr[1:] - fpr[1:])) + 1
    return float(thresholds[best])


def sensitivity_specificity(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    labels = np.asarray(labels).astype(bool)
    predicted = np.asarray(scores) >= threshold
    sensitivity = float(predicted[labels].mean()) if labels.any() else float("nan")
    specificity = float((~predicted[~labels]).mean()) if (~labels).any() else float("nan")
    return sensitivity, specificity


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width bins of |mean predicted - observed frequency|, weighted by bin size."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.size == 0:
        return float("nan")
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(probabilities[members].mean() - labels[members].mean())
    return float(error)


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per bin: mean predicted probability, observed frequency, count (for the reliability diagram)."""
    labels = np.asarray(labels, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    index = np.minimum((probabilities * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        if members.any():
            table.append({"low": b / bins, "high": (b + 1) / bins, "count": int(members.sum()),
                          "mean_probability": float(probabilities[members].mean()),
                          "observed": float(labels[members].mean())})
    return table


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> float:
    """Temperature T > 0 minimising the binary log loss of sigmoid(logits / T)."""
    labels = np.asarray(labels, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)

    def loss(log_t: float) -> float:
        z = logits / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, z) - labels * z))

    result = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def label_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float, seed: int = 0) -> dict:
    """The per-label block of metrics.json and of the model card."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    low, high = bootstrap_ci(labels, probabilities, seed=seed)
    sensitivity, specificity = sensitivity_specificity(labels, probabilities, threshold)
    return {
        "auroc": auroc(labels, probabilities),
        "auroc_ci95": [low, high],
        "threshold": float(threshold),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ece": expected_calibration_error(labels, probabilities),
        "n_positive": int(labels.sum()),
        "n_negative": int((labels == 0).sum()),
    }
