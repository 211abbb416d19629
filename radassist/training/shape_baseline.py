"""The shortcut the classifier must not take: how well image geometry alone predicts a label.

A logistic regression on original width, height and aspect ratio (log scale, standardised), fitted on
the training split and scored on the validation split. Reported beside the model in its card, so a
reader sees how much of a figure could come from the image shape.
"""

from __future__ import annotations

import numpy as np

from radassist.training.datasets import ImageRecord

RIDGE = 1e-3


def shape_features(records: list[ImageRecord], shapes: np.ndarray) -> np.ndarray:
    """log width, log height, log aspect; original sizes from labels.csv where given, else the file's."""
    rows = []
    for record, (height, width) in zip(records, shapes, strict=True):
        width = float(record.row.get("orig_width") or width)
        height = float(record.row.get("orig_height") or height)
        rows.append([np.log(width), np.log(height), np.log(width / height)])
    return np.array(rows)


def fit_logistic(features: np.ndarray, labels: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Newton-Raphson (IRLS) with a small ridge; returns weights with the intercept last."""
    x = np.c_[features, np.ones(len(features))]
    weights = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-x @ weights))
        gradient = x.T @ (p - labels) + RIDGE * weights
        hessian = (x * (p * (1 - p))[:, None]).T @ x + RIDGE * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-8:
            break
    return weights


def shape_only_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-9
    weights = fit_logistic((train_x - mean) / std, train_y.astype(np.float64))
    z = np.c_[(test_x - mean) / std, np.ones(len(test_x))] @ weights
    return 1.0 / (1.0 + np.exp(-z))
