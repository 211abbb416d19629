"""Learn from radiologists' corrections: refit the classifier's head and calibration on exported feedback.

Why only the head, and in numpy: a feedback export holds tens to hundreds of images, far too few to move a
CNN's millions of weights without overfitting, and fine-tuning must run on a reading workstation without
torch. The shipped ONNX already outputs the pooled embedding, and its head is ONE linear layer whose
weights are the initializers "head.weight" [L, D] and "head.bias" [L] ("temperature" [L] is separate), so
a new version is the base ONNX with those three tensors replaced. Everything else (encoder, CAM, OOD
statistics) is unchanged.

How few corrections are kept from wrecking the model:
- per label, an L2-regularised logistic regression on the embeddings, started from and shrunk toward the
  base head (penalty on the relative weight change, in temperature-scaled units); the shrinkage is chosen
  by patient-grouped cross-validation, taking the strongest shrinkage within one standard error of the
  best (the one-standard-error rule); if no refit beats the base head, the base head is kept and only
  recalibrated; a label with fewer than MIN_PER_CLASS positives or negatives is left as it was;
- calibration (Platt scaling as temperature + logit shift, the shift folded into the bias, as training
  does; with a prior on the base calibration, since small feedback sets are often separable) and the threshold (Youden's J) are fitted on cross-fitted predictions (each image scored by a
  head that did not see its patient), so not on the images that taught the head; with few examples
  the base threshold is kept;
- a seeded, patient-level held-out part of the feedback is never used for fitting: the before/after
  figures on it, and on the base card's original validation split, go into the new card;
- validation images that are also in the feedback (found by content, since the export renames and
  re-windows them) are left out of the validation figures, and a version whose validation AUROC falls
  by more than REGRESSION_LIMIT is flagged in its card (feedback that contradicts what the model knew,
  e.g. a worklist of only its errors, can invert a head);
- the new version is written beside the others in the user models folder and never activated here.
"""

from __future__ import annotations

import hashlib
import json
import random
import shlex
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from radassist.errors import InputRefused, ModelError, RadAssistError
from radassist.inference.card import ModelCard
from radassist.inference.engine import ModelSession, card_path_for, load_model, sha256_of
from radassist.training.datasets import DUPLICATE_CORRELATION, read_labels_csv
from radassist.training.labels import targets_for_row
from radassist.training.metrics import (
    auroc,
    bootstrap_ci,
    label_metrics,
    youden_threshold,
)

HEAD_INITIALIZERS = ("head.weight", "head.bias", "temperature")
MIN_LABELLED_IMAGES = 10  # below this a held-out part cannot say anything
MIN_PER_CLASS = 3  # positives and negatives a label needs in the fine-tuning part to be refitted
MIN_THRESHOLD_PER_CLASS = 20  # ... to move its threshold: a Youden cut on fewer swings at random
CALIBRATION_PRIOR = 10.0  # images' worth of belief in the base calibration (see shrunk_platt)
HOLDOUT_FRACTION = 0.3
SHRINKAGE_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # penalty on |w - w_base|^2 / |w_base|^2
BIAS_SHRINKAGE = 1e-3  # the bias may move freely: a site's prevalence differs from the training data's
CV_FOLDS = 5
REGRESSION_LIMIT = 0.05  # original-validation AUROC drop that marks a version as not fit to activate
ONNX_TOLERANCE = 1e-3  # |ONNX logits - numpy head| allowed on the held-out images
BATCH = 16
FINAL_COLUMN = "final_labels"  # written by `radassist export`: label=1 present, 0 absent, -1 uncertain
UNCHANGED_DRAFT_COLUMN = "ai_draft_unchanged"  # written by `radassist export`: 1 = signed as the AI drafted it
OUTPUTS = ("embedding", "logits", "probabilities")
Runner = Callable[[np.ndarray], dict[str, np.ndarray]]  # image batch [N, 1, S, S] -> named ONNX outputs


@dataclass
class FeedbackCase:
    """One labelled image of the feedback export."""

    file: str
    path: Path
    patient: str  # patient key, see stable_patient_keys
    targets: dict[str, int]  # model label id -> 0/1 (labels the radiologist left open are absent)


@dataclass
class LabelFit:
    """What fine-tuning did to one label."""

    status: str  # "refitted", "recalibrated" (base head kept) or "unchanged" (too few examples)
    reason: str
    weight: np.ndarray
    bias: float
    temperature: float
    threshold: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outputs:
    """Base-model outputs for a list of images (rows in the order of `kept`)."""

    kept: list[int]
    embedding: np.ndarray
    logits: np.ndarray
    probabilities: np.ndarray
    thumbnails: np.ndarray
    skipped: list[dict[str, str]]


@dataclass
class FinetuneResult:
    card_path: Path
    onnx_path: Path
    card: dict[str, Any]
    registered: bool


# --- the feedback folder -------------------------------------------------------------------------

def read_feedback(folder: Path, card: dict) -> tuple[list[FeedbackCase], str]:
    """Labelled images of an export and where their labels came from: the radiologist-final labels the
    model has, conditional labels kept only where their parent is present. A plain labels.csv folder
    (no final_labels column) is read through the training label table instead. Rows signed as the unchanged
    AI draft (`ai_draft_unchanged` = 1) are left out: learning from them would teach the model its own output."""
    csv_path = Path(folder) / "labels.csv"
    if not csv_path.is_file():
        raise InputRefused(f"{folder} has no labels.csv (pass a folder written by `radassist export`)")
    label_ids = [label["id"] for label in card["labels"]]
    parents = {label["id"]: label.get("conditional_on") for label in card["labels"]}
    records = read_labels_csv(csv_path)
    has_final = bool(records) and FINAL_COLUMN in records[0].row
    source = (f"radiologist-final labels ({FINAL_COLUMN} column of labels.csv)" if has_final
              else "labels and subtype columns of labels.csv, mapped by radassist.training.labels")
    cases = []
    for record in records:
        if (record.row.get(UNCHANGED_DRAFT_COLUMN) or "0").strip() == "1":
            continue  # signed as the AI drafted it, flagged findings undecided: the model's words, not a reader's
        if has_final:
            values = _parse_final_labels(record.row[FINAL_COLUMN] or "", csv_path)
        else:
            values = targets_for_row(record.row)
        targets = {label: value for label, value in values.items() if label in label_ids and value in (0, 1)}
        targets = {label: value for label, value in targets.items()
                   if parents[label] is None or targets.get(parents[label]) == 1}
        if targets:
            cases.append(FeedbackCase(record.file, record.path, record.patient, targets))
    cases = stable_patient_keys(cases)
    if not cases:
        raise InputRefused(f"no image in {csv_path} carries a final label the model has "
                           f"({', '.join(label_ids)})")
    if len(cases) < MIN_LABELLED_IMAGES:
        raise InputRefused(f"{csv_path} has only {len(cases)} images with a final label the model has; "
                           f"fine-tuning needs at least {MIN_LABELLED_IMAGES}")
    return cases, source


def stable_patient_keys(cases: list[FeedbackCase]) -> list[FeedbackCase]:
    """Name each patient by the smallest sha256 of its image files. Pseudonyms are keyed hashes that
    change with the exporting installation's secret; content keys make the split (and so the new
    version) the same for the same images and labels, however often they are re-exported."""
    digests: dict[str, str] = {}
    for case in cases:
        content = case.path.read_bytes() if case.path.is_file() else str(case.path).encode()
        digest = hashlib.sha256(content).hexdigest()
        digests[case.patient] = min(digests.get(case.patient, digest), digest)
    return [FeedbackCase(c.file, c.path, digests[c.patient], c.targets) for c in cases]


def _parse_final_labels(cell: str, csv_path: Path) -> dict[str, int]:
    values = {}
    for item in filter(None, (part.strip() for part in cell.split(";"))):
        label, _, value = item.partition("=")
        try:
            values[label.strip()] = int(value)
        except ValueError:
            raise InputRefused(f"{csv_path.name}: '{item}' in {FINAL_COLUMN} is not label=1/0/-1") from None
    return values


def split_patients(cases: list[FeedbackCase], label_ids: list[str], fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out images. Whole patients move; patients are grouped by their label pattern
    and each group is shuffled (seeded) and cut at `fraction`, so both parts see every kind of case."""
    by_patient: dict[str, list[int]] = defaultdict(list)
    for index, case in enumerate(cases):
        by_patient[case.patient].append(index)
    strata: dict[tuple, list[str]] = defaultdict(list)
    for patient, members in sorted(by_patient.items()):
        pattern = tuple(max((cases[i].targets.get(label, -1) for i in members), default=-1) for label in label_ids)
        strata[pattern].append(patient)
    rng = random.Random(seed)
    held_out = np.zeros(len(cases), dtype=bool)
    carry = 0.0  # rounding carried between strata so small strata still contribute
    for pattern in sorted(strata):
        patients = strata[pattern]
        rng.shuffle(patients)
        wanted = fraction * len(patients) + carry
        take = int(round(wanted))
        carry = wanted - take
        for patient in patients[:take]:
            held_out[by_patient[patient]] = True
    if held_out.all() or not held_out.any():
        raise InputRefused(f"the {len(cases)} labelled images belong to {len(by_patient)} patient(s); "
                           "a patient-level held-out part needs more patients")
    return held_out


# --- running the base model -----------------------------------------------------------------------

def run_images(run: Runner, paths: list[Path], spec: dict) -> Outputs:
    """Embedding, logits and probabilities of each readable image, plus a 32 px thumbnail of the model
    input (used to find feedback images that are also validation images)."""
    from radassist.imaging.preprocess import preprocess
    from radassist.io import read_image

    kept: list[int] = []
    skipped: list[dict[str, str]] = []
    columns: dict[str, list[np.ndarray]] = {name: [] for name in OUTPUTS}
    thumbnails: list[np.ndarray] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        out = run(np.stack(pending).astype(np.float32))
        for name in OUTPUTS:
            columns[name].append(out[name])
        pending.clear()

    for index, path in enumerate(paths):
        try:
            tensor = preprocess(read_image(path), spec).tensor
        except RadAssistError as exc:
            skipped.append({"file": Path(path).name, "reason": str(exc)})
            continue
        kept.append(index)
        pending.append(tensor)
        thumbnails.append(_thumbnail(tensor[0]))
        if len(pending) == BATCH:
            flush()
    if pending:
        flush()
    arrays = {name: np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, 0))
              for name, parts in columns.items()}
    return Outputs(kept, arrays["embedding"], arrays["logits"], arrays["probabilities"],
                   np.array(thumbnails).reshape(len(kept), -1), skipped)


def engine_runner(session: ModelSession) -> Runner:
    """Run a verified engine session (the base model, loaded like every host loads it)."""
    return lambda batch: session.run({"image": batch}, list(OUTPUTS))


def onnx_runner(onnx_path: Path) -> Runner:
    """Run a freshly written ONNX file directly: it has no card yet, so the engine cannot verify it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])
    return lambda batch: dict(zip(OUTPUTS, session.run(list(OUTPUTS), {"image": batch}), strict=True))


def _thumbnail(tensor: np.ndarray, side: int = 32) -> np.ndarray:
    side = min(side, tensor.shape[0])
    step = tensor.shape[0] // side
    crop = tensor[: step * side, : step * side]
    return crop.reshape(side, step, side, step).mean(axis=(1, 3))


def same_images(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each thumbnail of `a`, whether `b` holds the same radiograph (correlation above the
    training split's duplicate rule, which also catches re-encoded or re-windowed copies)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros(len(a), dtype=bool)

    def unit(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=1, keepdims=True)
        return x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)

    return (unit(a) @ unit(b).T).max(axis=1) > DUPLICATE_CORRELATION


def read_head(onnx_path: Path) -> dict[str, np.ndarray]:
    """The three initializers fine-tuning rewrites; ModelError if the base does not follow the contract."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    found = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name in HEAD_INITIALIZERS}
    missing = [name for name in HEAD_INITIALIZERS if name not in found]
    if missing:
        raise ModelError(f"{onnx_path.name} has no {', '.join(missing)} initializer; it cannot be fine-tuned")
    labels, _ = found["head.weight"].shape
    if found["head.bias"].shape != (labels,) or found["temperature"].shape != (labels,):
        raise ModelError(f"{onnx_path.name}: head initializers have inconsistent shapes")
    return {name: value.astype(np.float64) for name, value in found.items()}


def write_onnx(base_path: Path, out_path: Path, head: dict[str, np.ndarray]) -> None:
    """The base ONNX with the head initializers replaced (same names, shapes and dtypes)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(base_path))
    for initializer in model.graph.initializer:
        if initializer.name in head:
            dtype = numpy_helper.to_array(initializer).dtype
            value = np.asarray(head[initializer.name], dtype=dtype).reshape(tuple(initializer.dims))
            initializer.CopyFrom(numpy_helper.from_array(value, initializer.name))
    onnx.checker.check_model(model)
    onnx.save(model, str(out_path))


# --- fitting one label -----------------------------------------------------------------------------

def _log_loss_terms(y: np.ndarray, z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z) - y * z


def shrunk_logistic(x: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: float, strength: float
                    ) -> tuple[np.ndarray, float]:
    """argmin mean log loss + strength/2 |w - w0|^2 / |w0|^2 + BIAS_SHRINKAGE/2 (b - b0)^2, from (w0, b0).

    The penalty is on the RELATIVE weight change, so it anchors a label the base head barely separates
    (small weights) as firmly as a confident one. Strictly convex; solved by trust-region Newton-CG with
    exact Hessian-vector products (a few ms, where quasi-Newton methods took hundreds of ms here)."""
    n = len(y)
    penalty = np.r_[np.full(len(w0), strength / max(float(w0 @ w0), 1e-12)), BIAS_SHRINKAGE]
    start = np.r_[w0, b0]

    def logits(params: np.ndarray) -> np.ndarray:
        return x @ params[:-1] + params[-1]

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        z = logits(params)
        residual = (_sigmoid(z) - y) / n
        loss = _log_loss_terms(y, z).mean() + 0.5 * np.sum(penalty * (params - start) ** 2)
        return float(loss), np.r_[x.T @ residual, residual.sum()] + penalty * (params - start)

    def hessian_times(params: np.ndarray, vector: np.ndarray) -> np.ndarray:
        p = _sigmoid(logits(params))
        weighted = p * (1.0 - p) / n * (x @ vector[:-1] + vector[-1])
        return np.r_[x.T @ weighted, weighted.sum()] + penalty * vector

    result = minimize(objective, start, jac=True, hessp=hessian_times, method="trust-ncg")
    return result.x[:-1], float(result.x[-1])


def _patient_folds(y: np.ndarray, patients: list[str], folds: int, seed: int) -> np.ndarray:
    """Fold number per image; whole patients per fold, positive and negative patients dealt round-robin."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, patient in enumerate(patients):
        groups[patient].append(index)
    positive = sorted(p for p, members in groups.items() if y[members].max() == 1)
    negative = sorted(p for p in groups if p not in set(positive))
    rng = random.Random(seed)
    assignment = np.zeros(len(y), dtype=int)
    for stratum in (positive, negative):
        rng.shuffle(stratum)
        for k, patient in enumerate(stratum):
            assignment[groups[patient]] = k % folds
    return assignment


def fit_label(x: np.ndarray, y: np.ndarray, patients: list[str], w_base: np.ndarray, b_base: float,
              t_base: float, threshold_base: float, seed: int) -> LabelFit:
    """Refit (or only recalibrate) one label's head row from the fine-tuning part's embeddings."""
    positives, negatives = int(y.sum()), int((1 - y).sum())
    details: dict[str, Any] = {"n_positive": positives, "n_negative": negatives}
    keep = LabelFit("unchanged", "", w_base, b_base, t_base, threshold_base, details)
    if min(positives, negatives) < MIN_PER_CLASS:
        keep.reason = (f"{positives} positive / {negatives} negative images in the fine-tuning part; "
                       f"at least {MIN_PER_CLASS} of each are needed")
        return keep
    has_positive: dict[str, bool] = defaultdict(bool)
    for patient, value in zip(patients, y, strict=True):
        has_positive[patient] |= bool(value)
    folds = min(CV_FOLDS, sum(has_positive.values()), len(has_positive) - sum(has_positive.values()))
    if folds < 2:
        keep.reason = "all positive (or all negative) images belong to one patient; cross-validation impossible"
        return keep
    # temperature-scaled units: there the base head is calibrated, so its log loss is comparable to a refit's
    w0, b0 = w_base / t_base, b_base / t_base
    cv = _cross_validate(x, y, _patient_folds(y, patients, folds, seed), w0, b0)
    best = min(cv, key=lambda s: cv[s][0])
    chosen = max(s for s in SHRINKAGE_GRID if cv[s][0] <= cv[best][0] + cv[best][1])
    base_log_loss = float(_log_loss_terms(y, x @ w0 + b0).mean())
    details.update({
        "cv_folds": folds, "cv_log_loss": {f"{s:g}": round(cv[s][0], 5) for s in SHRINKAGE_GRID},
        "base_log_loss": round(base_log_loss, 5),
        "shrinkage_rule": "largest shrinkage within one standard error of the best cross-validated log loss",
    })
    if cv[chosen][0] >= base_log_loss:
        temperature, shift = shrunk_platt(y, x @ w_base + b_base, t_base)
        threshold = operating_threshold(y, _sigmoid((x @ w_base + b_base + shift) / temperature), threshold_base,
                                        details)
        return LabelFit("recalibrated", "no refitted head beat the base head in cross-validation; base head "
                        "weights kept, temperature and bias recalibrated", w_base, b_base + shift, temperature,
                        threshold, details)
    w, b = shrunk_logistic(x, y, w0, b0, chosen)
    out_of_fold = t_base * cv[chosen][2]  # back to the base head's logit scale
    temperature, shift = shrunk_platt(y, out_of_fold, t_base)
    threshold = operating_threshold(y, _sigmoid((out_of_fold + shift) / temperature), threshold_base, details)
    details.update(shrinkage=chosen,
                   weight_change_relative=round(float(np.linalg.norm(w - w0) / np.linalg.norm(w0)), 4))
    return LabelFit("refitted", f"head refitted with shrinkage {chosen:g} toward the base head",
                    t_base * w, t_base * b + shift, temperature, threshold, details)


def _cross_validate(x: np.ndarray, y: np.ndarray, fold_of: np.ndarray, w0: np.ndarray, b0: float
                    ) -> dict[float, tuple[float, float, np.ndarray]]:
    """Per shrinkage: mean and standard error of the out-of-fold log loss, and the out-of-fold logits."""
    results = {}
    for strength in SHRINKAGE_GRID:
        out_of_fold = np.zeros(len(y))
        for k in np.unique(fold_of):
            train = fold_of != k
            w, b = shrunk_logistic(x[train], y[train], w0, b0, strength)
            out_of_fold[~train] = x[~train] @ w + b
        terms = _log_loss_terms(y, out_of_fold)
        results[strength] = (float(terms.mean()), float(terms.std(ddof=1) / np.sqrt(len(terms))), out_of_fold)
    return results


def shrunk_platt(y: np.ndarray, logits: np.ndarray, t_base: float) -> tuple[float, float]:
    """Platt scaling as (temperature T, logit shift s): sigmoid((logits + s) / T), with a Gaussian prior
    centred on the base calibration (T = t_base, s = 0) worth CALIBRATION_PRIOR images.

    Why a prior: a small feedback set is often perfectly separable, where plain Platt scaling drives
    T -> 0 (certainty) and the shift without bound; the prior keeps both finite and lets the data move
    them only as far as they are supported. T is also kept within [0.05, 20] during the optimisation."""
    y = np.asarray(y, dtype=np.float64)
    logits = np.asarray(logits, dtype=np.float64)
    weight = CALIBRATION_PRIOR / len(y)
    log_scale_base = -np.log(t_base)

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        log_scale, offset = params  # calibrated logit = exp(log_scale) * logits + offset
        scale = np.exp(log_scale)
        z = scale * logits + offset
        residual = (_sigmoid(z) - y) / len(y)
        loss = _log_loss_terms(y, z).mean() + 0.5 * weight * ((log_scale - log_scale_base) ** 2 + offset ** 2)
        gradient = np.array([scale * residual @ logits + weight * (log_scale - log_scale_base),
                             residual.sum() + weight * offset])
        return float(loss), gradient

    bounds = [(np.log(1 / 20.0), np.log(1 / 0.05)), (None, None)]
    result = minimize(objective, np.array([log_scale_base, 0.0]), jac=True, method="L-BFGS-B", bounds=bounds)
    log_scale, offset = result.x
    temperature = float(np.exp(-log_scale))
    return temperature, float(offset * temperature)


def operating_threshold(y: np.ndarray, probabilities: np.ndarray, threshold_base: float,
                        details: dict[str, Any]) -> float:
    """Youden's J on the cross-fitted probabilities when both classes have MIN_THRESHOLD_PER_CLASS images;
    else the base threshold: on recalibrated probabilities it keeps its meaning (the same risk level),
    while a Youden cut on a handful of images would swing the operating point at random."""
    if min(int(y.sum()), int((1 - y).sum())) >= MIN_THRESHOLD_PER_CLASS:
        details["threshold_source"] = ("Youden's J on cross-fitted calibrated probabilities of the fine-tuning "
                                       "part of the feedback, placed midway (in logits) between the cut's score "
                                       "and the next lower one")
        cut = youden_threshold(y, probabilities)
        below = probabilities[probabilities < cut]
        if below.size == 0:
            return cut
        # Youden returns the score of the last image above the cut: midway to the next one keeps the
        # margin on both sides (on separable feedback the bare cut would sit on a positive's score)
        return float(_sigmoid((_logit(cut) + _logit(below.max())) / 2))
    details["threshold_source"] = (f"base threshold kept (fewer than {MIN_THRESHOLD_PER_CLASS} positives or "
                                   "negatives for a Youden cut)")
    return threshold_base


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return expit(z)


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


# --- before / after figures -------------------------------------------------------------------------

def compare(y: np.ndarray, before: np.ndarray, after: np.ndarray, threshold_before: float,
            threshold_after: float, seed: int = 0) -> dict[str, Any]:
    """Before/after block for one label on one image set: AUROC with bootstrap CI, sensitivity and
    specificity at each version's own threshold, ECE, log loss, errors, and the paired AUROC change."""
    y = np.asarray(y).astype(int)
    block: dict[str, Any] = {"n_positive": int(y.sum()), "n_negative": int((y == 0).sum())}
    for name, p, threshold in (("before", before, threshold_before), ("after", after, threshold_after)):
        if len(np.unique(y)) == 2:
            figures = label_metrics(y, p, threshold, seed=seed)
        else:
            figures = {"auroc": None, "note": "one class only: AUROC undefined", "threshold": float(threshold)}
        clipped = np.clip(p, 1e-7, 1 - 1e-7)
        figures["log_loss"] = float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
        figures["errors_at_threshold"] = int(((p >= threshold) != (y == 1)).sum())
        block[name] = figures
    if len(np.unique(y)) == 2:
        paired = np.stack([before, after], axis=1)
        block["auroc_change"] = block["after"]["auroc"] - block["before"]["auroc"]
        block["auroc_change_ci95"] = list(bootstrap_ci(
            y, paired, statistic=lambda yy, pp: auroc(yy, pp[:, 1]) - auroc(yy, pp[:, 0]), seed=seed))
    return block


def compare_labels(cases_targets: list[dict[str, int]], label_ids: list[str], before: np.ndarray,
                   after: np.ndarray, thresholds_before: list[float], thresholds_after: list[float]
                   ) -> dict[str, Any]:
    per_label = {}
    for j, label in enumerate(label_ids):
        index = [i for i, targets in enumerate(cases_targets) if label in targets]
        if not index:
            continue
        y = np.array([cases_targets[i][label] for i in index])
        per_label[label] = compare(y, before[index, j], after[index, j], thresholds_before[j], thresholds_after[j])
    return per_label


# --- the original validation split ----------------------------------------------------------------

def validation_sources(card: dict, data_root: Path | None) -> dict[str, Path]:
    """Folder per source name of the base card's validation files: under `data_root` if given, else the
    folders the training command named, else ../shared/data beside the installation."""
    from radassist.paths import install_root

    files = card.get("training", {}).get("split", {}).get("validation_files", [])
    names = sorted({key.split("/", 1)[0] for key in files})
    candidates: list[Path] = []
    if data_root is not None:
        candidates.append(Path(data_root))
    else:
        command = shlex.split(card.get("training", {}).get("command", ""))
        folders = [Path(word) for word in command if not word.startswith("-") and Path(word).name in names]
        candidates += [folder.parent for folder in folders]
        candidates.append(install_root().parent / "shared" / "data")
    found = {}
    for name in names:
        for root in candidates:
            if (root / name / "labels.csv").is_file():
                found[name] = root / name
                break
    return found


def read_validation(card: dict, data_root: Path | None) -> tuple[list, str]:
    """Labelled records of the base card's validation split that can be found here, and a note."""
    files = set(card.get("training", {}).get("split", {}).get("validation_files", []))
    if not files:
        return [], "the base card lists no validation files"
    sources = validation_sources(card, data_root)
    records = []
    for folder in sources.values():
        records += [r for r in read_labels_csv(folder / "labels.csv") if r.key in files and r.targets]
    records = [r for r in records if r.path.is_file()]
    if not records:
        return [], (f"none of the {len(files)} validation images of the base card were found (looked for "
                    f"their folders {sorted({k.split('/', 1)[0] for k in files})}; pass --validation-data)")
    note = f"{len(records)} of {len(files)} validation images found in {sorted(str(p) for p in sources.values())}"
    return records, note


# --- the whole recipe -----------------------------------------------------------------------------

def finetune(feedback_dir: Path, base_model: Path | str, out_dir: Path | None = None, *,
             validation_data: Path | None = None, seed: int = 0, holdout_fraction: float = HOLDOUT_FRACTION,
             command: str = "") -> FinetuneResult:
    """Fine-tune the base classifier on a feedback export and write a new, inactive model version."""
    from radassist.inference.registry import user_models_dir

    clock = _Stopwatch()
    feedback_dir = Path(feedback_dir)
    if not feedback_dir.is_dir():
        raise InputRefused(f"feedback folder {feedback_dir} does not exist")
    if not 0.05 <= holdout_fraction <= 0.8:
        raise InputRefused(f"--holdout-fraction {holdout_fraction} must be between 0.05 and 0.8")
    base_card = ModelCard.load(card_path_for(base_model))
    base = base_card.data
    if base.get("task") != "classification":
        raise ModelError(f"{base_card.path.name} is not a classifier card; only the classifier can be fine-tuned")
    cases, label_source = read_feedback(feedback_dir, base)  # refuse bad feedback before any model work
    session = load_model(base_card.path)  # checks the ONNX against the card's sha256
    head = read_head(session.card.onnx_path)
    label_ids = [label["id"] for label in base["labels"]]
    thresholds_base = [float(label["threshold"]) for label in base["labels"]]

    outputs = run_images(engine_runner(session), [c.path for c in cases], base["preprocessing"])
    if not np.allclose(outputs.embedding @ head["head.weight"].T + head["head.bias"], outputs.logits,
                       atol=ONNX_TOLERANCE):
        raise ModelError(f"{session.card.onnx_path.name}: its logits are not head.weight . embedding + head.bias; "
                         "this model cannot be fine-tuned by rewriting its head")
    cases = [cases[i] for i in outputs.kept]
    if len(cases) < MIN_LABELLED_IMAGES:
        raise InputRefused(f"only {len(cases)} feedback images could be read; fine-tuning needs "
                           f"at least {MIN_LABELLED_IMAGES}")
    held_out = split_patients(cases, label_ids, holdout_fraction, seed)
    clock.lap("feedback_inference")

    fits = fit_head(cases, outputs.embedding, ~held_out, base, head, seed)
    new_head = {name: value.astype(np.float32).astype(np.float64)  # exactly what the float32 ONNX will hold
                for name, value in (("head.weight", np.stack([f.weight for f in fits])),
                                    ("head.bias", np.array([f.bias for f in fits])),
                                    ("temperature", np.array([f.temperature for f in fits])))}
    thresholds_new = [float(f.threshold) for f in fits]
    clock.lap("fit")

    target_root = Path(out_dir) if out_dir else user_models_dir()
    target_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".finetune-", dir=target_root))  # the registry ignores it
    try:
        onnx_path = staging / session.card.onnx_path.name
        write_onnx(session.card.onnx_path, onnx_path, new_head)
        held = list(np.flatnonzero(held_out))
        check = run_images(onnx_runner(onnx_path), [cases[i].path for i in held], base["preprocessing"])
        onnx_difference = float(np.abs(
            check.logits - (check.embedding @ new_head["head.weight"].T + new_head["head.bias"])).max())
        if len(check.kept) != len(held) or onnx_difference > ONNX_TOLERANCE:
            raise ModelError(f"the rewritten ONNX disagrees with the fitted head (max |diff| {onnx_difference:.2e})")
        feedback_figures = compare_labels([cases[i].targets for i in held], label_ids, outputs.probabilities[held],
                                          check.probabilities, thresholds_base, thresholds_new)
        clock.lap("write_and_check")
        validation = _validation_figures(session, base, validation_data, outputs.thumbnails, new_head,
                                         label_ids, thresholds_base, thresholds_new)
        clock.lap("original_validation")

        sha = sha256_of(onnx_path)
        provenance = feedback_provenance(feedback_dir, cases, held_out, label_ids, label_source)
        settings = {"command": command, "seed": seed,
                    "holdout": {"fraction": holdout_fraction,
                                "unit": "patient (pseudonym; ordered by image content), stratified by label pattern"},
                    "onnx_vs_numpy_head_max_abs_diff": onnx_difference, "seconds": clock.seconds()}
        card = build_card(base_card, onnx_path, sha, fits, provenance, feedback_figures, validation, settings)
        final_dir = target_root / card["model_id"]
        if final_dir.exists():
            raise InputRefused(f"{final_dir} already exists: this fine-tuned version was written before")
        card_path = staging / f"{Path(onnx_path.name).stem}.card.json"
        card_path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp makes it private; a model folder is readable like any other
        staging.rename(final_dir)  # appears in the registry complete or not at all
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    registered = final_dir.parent.resolve() == user_models_dir().resolve()
    return FinetuneResult(final_dir / card_path.name, final_dir / onnx_path.name, card, registered)


class _Stopwatch:
    """Seconds per stage of the recipe (they go into the card)."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self.last, 2)
        self.last = now

    def seconds(self) -> dict[str, float]:
        return {**self.laps, "total": round(time.perf_counter() - self.started, 2)}


def fit_head(cases: list[FeedbackCase], embedding: np.ndarray, fit_part: np.ndarray, base: dict,
             head: dict[str, np.ndarray], seed: int) -> list[LabelFit]:
    """One LabelFit per model label, from the fine-tuning part's images that carry the label."""
    fits = []
    for j, label in enumerate(base["labels"]):
        rows = [i for i in np.flatnonzero(fit_part) if label["id"] in cases[i].targets]
        y = np.array([cases[i].targets[label["id"]] for i in rows], dtype=np.float64)
        fits.append(fit_label(embedding[rows], y, [cases[i].patient for i in rows], head["head.weight"][j],
                              float(head["head.bias"][j]), float(head["temperature"][j]), float(label["threshold"]),
                              seed))
    return fits


def _validation_figures(session: ModelSession, base: dict, data_root: Path | None, feedback_thumbnails: np.ndarray,
                        new_head: dict[str, np.ndarray], label_ids: list[str], thresholds_base: list[float],
                        thresholds_new: list[float]) -> dict[str, Any]:
    """Before/after on the base card's validation split, leaving out images that are also in the feedback
    (the new head has seen those). The new head's figures come from the base embeddings: the encoder is
    unchanged and the rewritten ONNX was checked to compute exactly this head."""
    records, note = read_validation(base, data_root)
    if not records:
        return {"reachable": False, "note": note}
    outputs = run_images(engine_runner(session), [r.path for r in records], base["preprocessing"])
    overlap = same_images(outputs.thumbnails, feedback_thumbnails)
    keep = np.flatnonzero(~overlap)
    records = [records[outputs.kept[i]] for i in keep]
    logits = outputs.embedding[keep] @ new_head["head.weight"].T + new_head["head.bias"]
    after = _sigmoid(logits / new_head["temperature"])
    before = outputs.probabilities[keep]
    per_label = compare_labels([r.targets for r in records], label_ids, before, after, thresholds_base, thresholds_new)
    by_domain = {}  # feedback from one kind of site can help it and cost another: show both
    for domain in sorted({r.domain for r in records}):
        rows = [i for i, r in enumerate(records) if r.domain == domain]
        by_domain[domain] = {"images": len(rows), "per_label": compare_labels(
            [records[i].targets for i in rows], label_ids, before[rows], after[rows], thresholds_base, thresholds_new)}
    return {
        "reachable": True,
        "note": note,
        "images": len(records),
        "left_out_because_in_feedback": int(overlap.sum()),
        "unreadable": outputs.skipped,
        "per_label": per_label,
        "by_domain": by_domain,
        "regression": regression_check(per_label),
    }


def regression_check(per_label: dict[str, Any]) -> dict[str, Any]:
    """Labels whose original-validation AUROC fell by more than REGRESSION_LIMIT: feedback that teaches the
    head something the validation split contradicts (e.g. a worklist of only the model's errors)."""
    over = {label: round(block["auroc_change"], 4) for label, block in per_label.items()
            if block.get("auroc_change") is not None and block["auroc_change"] < -REGRESSION_LIMIT}
    return {"auroc_drop_limit": REGRESSION_LIMIT, "labels_over_limit": over, "ok": not over}


# --- the new card ---------------------------------------------------------------------------------

def feedback_provenance(folder: Path, cases: list[FeedbackCase], held_out: np.ndarray, label_ids: list[str],
                        label_source: str) -> dict[str, Any]:
    """What the new version learnt from, without anything that identifies a patient or a reader."""
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    readers, sessions = set(), 0
    records_path = folder / "records.jsonl"
    if records_path.is_file():
        for line in records_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                readers.add(record.get("reader"))
                sessions += 1

    def counts(mask: np.ndarray) -> dict[str, dict[str, int]]:
        tally: Counter = Counter()
        for case, chosen in zip(cases, mask, strict=True):
            if chosen:
                for label, value in case.targets.items():
                    tally[(label, value)] += 1
        return {label: {"positive": tally[(label, 1)], "negative": tally[(label, 0)]} for label in label_ids}

    return {
        "folder_name": folder.name,
        "labels_csv_sha256": hashlib.sha256((folder / "labels.csv").read_bytes()).hexdigest(),
        "export_format_version": manifest.get("format_version"),
        "export_deidentification": manifest.get("deidentification"),
        "sessions": sessions or None,
        "readers": len(readers) or None,
        "labelled_images": len(cases),
        "patients": len({c.patient for c in cases}),
        "label_source": label_source,
        "fine_tuning_part": {"images": int((~held_out).sum()),
                             "patients": len({c.patient for c, h in zip(cases, held_out, strict=True) if not h}),
                             "labels": counts(~held_out)},
        "held_out_part": {"images": int(held_out.sum()),
                          "patients": len({c.patient for c, h in zip(cases, held_out, strict=True) if h}),
                          "labels": counts(held_out)},
    }


def build_card(base_card: ModelCard, onnx_path: Path, sha: str, fits: list[LabelFit], provenance: dict[str, Any],
               feedback_figures: dict, validation: dict, settings: dict[str, Any]) -> dict[str, Any]:
    """The new version's card: the base card's contract (preprocessing, outputs, OOD, encoder training)
    with the new head's thresholds, temperature, lineage and before/after figures."""
    base = base_card.data
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    lineage = [*base.get("lineage", []), {"model_id": base["model_id"], "version": base["version"],
                                          "sha256": base["sha256"]}]
    labels = []
    for label, fit in zip(base["labels"], fits, strict=True):
        entry = {**label, "threshold": round(float(fit.threshold), 6)}
        if fit.threshold != float(label["threshold"]):
            entry["threshold_rule"] = fit.details["threshold_source"]
        labels.append(entry)
    card = {key: value for key, value in base.items() if key not in ("metrics", "labels", "temperature")}
    card.update({
        "model_id": f"{lineage[0]['model_id']}-ft-{sha[:8]}",
        "version": f"{lineage[0]['version']}+ft.{stamp}",
        "file": onnx_path.name,
        "sha256": sha,
        "size_bytes": onnx_path.stat().st_size,
        "labels": labels,
        "temperature": [float(np.float32(f.temperature)) for f in fits],  # the values in the ONNX file
        "parent": {"model_id": base["model_id"], "version": base["version"], "sha256": base["sha256"],
                   "card_file": base_card.path.name},
        "lineage": lineage,
        "metrics": {
            "split": "the base card's validation split, leaving out images also in the feedback "
                     "(figures of this version; finetune.original_validation has before/after)",
            "per_label": {label: block["after"] for label, block in validation.get("per_label", {}).items()},
            "base_model_metrics": base.get("metrics", {}),
        },
        "finetune": {
            "method": "numpy: per-label L2-regularised logistic regression on the base model's embeddings, "
                      "warm-started from and shrunk toward the base head (relative shrinkage chosen by "
                      "patient-grouped cross-validation, one-standard-error rule); Platt calibration (temperature + bias shift) and Youden "
                      "threshold on cross-fitted predictions; the encoder is unchanged",
            "created_utc": stamp,
            **settings,
            "per_label": {label["id"]: {"status": f.status, "reason": f.reason, **f.details}
                          for label, f in zip(base["labels"], fits, strict=True)},
            "data": provenance,
            "feedback_holdout": feedback_figures,
            "original_validation": validation,
            "ci_method": "percentile bootstrap over images, 1000 resamples, seed 0 (auroc_change: paired)",
        },
    })
    card["limits"] = [*base.get("limits", []),
                      "Fine-tuned on radiologists' feedback: the held-out part of the feedback is small, so its "
                      "figures have wide confidence intervals; check finetune.original_validation before "
                      "activating this version.",
                      "Only the head and calibration were refitted; the encoder (and so the CAM features and the "
                      "OOD statistics) is the base model's."]
    return card
