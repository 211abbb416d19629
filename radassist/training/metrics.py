"""Classification statistics in numpy only (training, `radassist evaluate` and fine-tuning share them).

AUROC is the Mann-Whitney statistic; confidence intervals are percentile bootstraps over patients when
patient groups are given (several films of one patient move together), else over images; seeded, so a figure
in a model card can be reproduced. ECE uses equal-width probability bins.
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


class _Resampler:
    """Row indices of bootstrap resamples: whole groups (patients) drawn with replacement, or images."""

    def __init__(self, n: int, groups: np.ndarray | None, seed: int):
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.members = None
        if groups is not None:
            order = np.argsort(np.asarray(groups), kind="stable")
            _, starts = np.unique(np.asarray(groups)[order], return_index=True)
            self.members = np.split(order, starts[1:])

    def draw(self) -> np.ndarray:
        if self.members is None:
            return self.rng.integers(0, self.n, self.n)
        picks = self.rng.integers(0, len(self.members), len(self.members))
        return np.concatenate([self.members[g] for g in picks])


def bootstrap_ci(labels: np.ndarray, scores: np.ndarray, statistic=auroc, samples: int = BOOTSTRAP_SAMPLES,
                 seed: int = 0, groups: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile 95 % interval of `statistic` over resamples of patients (`groups`) or images (resamples
    missing a class are skipped)."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    resampler = _Resampler(len(labels), groups, seed)
    values = []
    for _ in range(samples):
        index = resampler.draw()
        value = statistic(labels[index], scores[index])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def paired_auroc_difference(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray,
                            groups: np.ndarray | None = None, samples: int = BOOTSTRAP_SAMPLES,
                            seed: int = 0) -> dict:
    """AUROC(a) - AUROC(b) on the same images, with a paired bootstrap 95 % CI (the same resample for both)."""
    labels, scores_a, scores_b = np.asarray(labels), np.asarray(scores_a), np.asarray(scores_b)
    resampler = _Resampler(len(labels), groups, seed)
    values = []
    for _ in range(samples):
        index = resampler.draw()
        value = auroc(labels[index], scores_a[index]) - auroc(labels[index], scores_b[index])
        if np.isfinite(value):
            values.append(value)
    low, high = np.percentile(values, [2.5, 97.5]) if values else (float("nan"), float("nan"))
    return {"difference": auroc(labels, scores_a) - auroc(labels, scores_b), "difference_ci95": [float(low), float(high)]}


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


def constrained_youden_threshold(labels: np.ndarray, scores: np.ndarray, min_specificity: float) -> float:
    """Youden's J among the thresholds that keep at least `min_specificity` (a finding flagged on most films
    without it is noise to a reader; with few positives an unconstrained J can sit at the bottom of the range)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    allowed = np.flatnonzero(1.0 - fpr[1:] >= min_specificity) + 1
    if allowed.size == 0:
        return float(thresholds[1])
    best = allowed[int(np.argmax(tpr[allowed] - fpr[allowed]))]
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


def fit_platt(labels: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """Platt scaling as (temperature T, logit shift s): sigmoid((logits + s) / T) minimising the log loss, so
    the shift folds into a linear head's bias and T into the model's temperature. T is kept in [0.05, 20]."""
    from scipy.optimize import minimize

    labels = np.asarray(labels, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)

    def loss(parameters: np.ndarray) -> float:
        z = logits * np.exp(parameters[0]) + parameters[1]
        return float(np.mean(np.logaddexp(0.0, z) - labels * z))

    result = minimize(loss, np.zeros(2), method="L-BFGS-B", bounds=[(np.log(0.05), np.log(20.0)), (-20.0, 20.0)])
    scale, offset = float(np.exp(result.x[0])), float(result.x[1])
    return 1.0 / scale, offset / scale


def label_metrics(labels: np.ndarray, probabilities: np.ndarray, threshold: float, seed: int = 0,
                  groups: np.ndarray | None = None) -> dict:
    """The per-label block of metrics.json and of the model card (CIs over patients when `groups` given)."""
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    low, high = bootstrap_ci(labels, probabilities, seed=seed, groups=groups)
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


def rate_with_ci(flags: np.ndarray, groups: np.ndarray | None = None, seed: int = 0) -> dict:
    """Share of True in `flags` (e.g. normals flagged abnormal) with a bootstrap 95 % CI over patients."""
    flags = np.asarray(flags, dtype=bool)
    if flags.size == 0:
        return {"rate": float("nan"), "rate_ci95": [float("nan"), float("nan")], "n": 0}
    low, high = bootstrap_ci(flags, flags, statistic=lambda _, f: float(np.mean(f)), seed=seed, groups=groups)
    return {"rate": float(flags.mean()), "rate_ci95": [low, high], "n": int(flags.size), "count": int(flags.sum())}
