"""Radiomics-guided contrastive training (Han et al., ISBI 2021) of the chest X-ray classifier.

One call of `train(config)` does the whole reproducible recipe: read the labels.csv folders, preprocess
and extract radiomics once (cached), split by patient, train the CNN with the classification loss plus
(unless it is the ablation) the InfoNCE loss that pulls each image embedding toward the radiomics
embedding of the same image, fit per-label temperatures and thresholds on validation, export ONNX,
verify it against torch and write the model card.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from radassist.imaging.preprocess import default_spec
from radassist.training import cache as cache_module
from radassist.training.augment import augment_batch
from radassist.training.datasets import (
    TRAIN,
    VALIDATION,
    ImageRecord,
    duplicate_groups,
    patient_split,
    read_folders,
    write_split,
)
from radassist.training.export import export_onnx, max_abs_difference
from radassist.training.labels import CONDITIONAL_ON, LABELS
from radassist.training.metrics import fit_temperature, label_metrics, youden_threshold
from radassist.training.model import Classifier, RadiomicsBranch, info_nce
from radassist.training.radiomics_features import LUNG_MODEL, TEMPLATE, lung_model_available
from radassist.training.shape_baseline import shape_features, shape_only_scores

log = logging.getLogger(__name__)

UNKNOWN = -1
MAX_WEIGHT_RATIO = 5.0  # cap on a sample's loss weight relative to the mean (scarce adult negatives)
BALANCE_BY_DOMAIN = {"pneumonia": True, "viral_pattern": False, "opacity": True}
OOD_PERCENTILE = 99.5
RADIOMICS_CLIP = 6.0


@dataclass
class TrainConfig:
    data: list[Path]
    out_dir: Path
    cache_dir: Path
    size: int = 160
    epochs: int = 12
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    contrastive_weight: float = 0.5  # 0 trains the ablation: same network, split and budget, no InfoNCE
    contrastive_temperature: float = 0.1
    validation_fraction: float = 0.2
    seed: int = 20240611
    workers: int = 2
    threads: int = 2
    model_id: str = "radassist-cxr-classifier"
    version: str = "1.0.0"
    command: str = ""
    monitor_every: int = 5
    report_dir: Path | None = None  # split, validation predictions; default: <cache_dir>/runs/<model_id>
    ablation_card: Path | None = None  # an ablation run's card to compare against in this card


@dataclass
class TrainResult:
    card: dict
    onnx_path: Path
    card_path: Path
    history: list[dict] = field(default_factory=list)


def target_matrix(records: list[ImageRecord]) -> np.ndarray:
    """[N, L] int8 with 1/0/UNKNOWN."""
    return np.array([[r.targets.get(label, UNKNOWN) for label in LABELS] for r in records], dtype=np.int8)


def loss_weights(targets: np.ndarray, domains: np.ndarray, train: np.ndarray) -> np.ndarray:
    """[N, L] weights: each (domain, class) cell of the training set carries the same total weight
    (or each class, for labels balanced across domains), mean 1, capped at MAX_WEIGHT_RATIO."""
    weights = np.zeros(targets.shape, dtype=np.float32)
    for j, label in enumerate(LABELS):
        known = train & (targets[:, j] != UNKNOWN)
        cells = [(d if BALANCE_BY_DOMAIN[label] else "all", c) for d, c in zip(domains, targets[:, j], strict=True)]
        present = sorted({cells[i] for i in np.flatnonzero(known)})
        for cell in present:
            members = known & np.array([cells[i] == cell for i in range(len(cells))])
            weights[members, j] = known.sum() / (len(present) * members.sum())
        if known.any():
            weights[:, j] = np.minimum(weights[:, j], MAX_WEIGHT_RATIO)
            weights[known, j] /= weights[known, j].mean()
    return weights


def standardize_radiomics(values: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Median impute, robust z-score (median / IQR of the training images), clipped."""
    median = np.nanmedian(values[train], axis=0)
    filled = np.where(np.isfinite(values), values, median)
    q1, q3 = np.percentile(filled[train], [25, 75], axis=0)
    scale = np.where(q3 - q1 > 1e-12, q3 - q1, np.std(filled[train], axis=0) + 1e-12)
    return np.clip((filled - median) / scale, -RADIOMICS_CLIP, RADIOMICS_CLIP).astype(np.float32)


def thumbnails(tensors: np.ndarray, side: int = 16) -> np.ndarray:
    n, _, size, _ = tensors.shape
    block = size // side
    cropped = tensors[:, 0, :block * side, :block * side].astype(np.float32)
    return cropped.reshape(n, side, block, side, block).mean(axis=(2, 4))


def _classification_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    known = targets >= 0
    losses = F.binary_cross_entropy_with_logits(logits, targets.clamp_min(0).float(), reduction="none")
    return (losses * weights * known).sum() / known.sum().clamp_min(1)


def _learning_rate(config: TrainConfig, step: int, total: int) -> float:
    """Linear warm-up over the first epoch's worth of steps, then cosine decay to zero."""
    warmup = max(1, total // config.epochs)
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    return 0.5 * config.learning_rate * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@torch.no_grad()
def predict(model: Classifier, tensors: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, L] and embeddings [N, D] of preprocessed tensors (eval mode, no augmentation)."""
    model.eval()
    logits, embeddings = [], []
    for start in range(0, len(tensors), batch_size):
        batch = torch.from_numpy(tensors[start:start + batch_size].astype(np.float32))
        _, batch_logits, _, embedding = model(batch)
        logits.append(batch_logits.numpy())
        embeddings.append(embedding.numpy())
    return np.concatenate(logits), np.concatenate(embeddings)


def _evaluable(targets: np.ndarray, j: int, subset: np.ndarray) -> np.ndarray:
    return subset & (targets[:, j] != UNKNOWN)


def _monitor(model: Classifier, tensors: np.ndarray, targets: np.ndarray, validation: np.ndarray) -> dict:
    from radassist.training.metrics import auroc

    logits, _ = predict(model, tensors[validation])
    sub = targets[validation]
    return {label: round(auroc(sub[sub[:, j] != UNKNOWN, j], logits[sub[:, j] != UNKNOWN, j]), 4)
            for j, label in enumerate(LABELS)}


def fit_network(config: TrainConfig, tensors: np.ndarray, radiomics: np.ndarray, targets: np.ndarray,
                weights: np.ndarray, train: np.ndarray, validation: np.ndarray) -> tuple[Classifier, list[dict]]:
    """The training loop. Fixed epochs, no early stopping: the validation set is only watched, never
    used to pick weights, so its figures are not selected on."""
    torch.manual_seed(config.seed)
    model = Classifier(len(LABELS))
    contrastive = config.contrastive_weight > 0
    branch = RadiomicsBranch(radiomics.shape[1], model.encoder.out_channels) if contrastive else None
    parameters = list(model.parameters()) + (list(branch.parameters()) if branch else [])
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    train_index = np.flatnonzero(train)
    steps_per_epoch = len(train_index) // config.batch_size
    total = steps_per_epoch * config.epochs
    rng = np.random.default_rng(config.seed)
    history, step = [], 0
    for epoch in range(config.epochs):
        model.train()
        if branch:
            branch.train()
        started, cpu_started = time.time(), time.process_time()
        order = rng.permutation(train_index)
        sums = {"classification": 0.0, "contrastive": 0.0}
        for b in range(steps_per_epoch):
            index = np.sort(order[b * config.batch_size:(b + 1) * config.batch_size])
            images = augment_batch(torch.from_numpy(tensors[index].astype(np.float32)))
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(config, step, total)
            _, logits, _, embedding = model(images)
            loss = _classification_loss(logits, torch.from_numpy(targets[index].astype(np.int64)),
                                        torch.from_numpy(weights[index]))
            sums["classification"] += loss.item()
            if branch:
                image_z, radiomics_z = branch(embedding, torch.from_numpy(radiomics[index]))
                contrastive_loss = info_nce(image_z, radiomics_z, config.contrastive_temperature)
                sums["contrastive"] += contrastive_loss.item()
                loss = loss + config.contrastive_weight * contrastive_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        entry = {"epoch": epoch + 1, "seconds": round(time.time() - started, 1),
                 "cpu_seconds": round(time.process_time() - cpu_started, 1),
                 **{k: round(v / max(1, steps_per_epoch), 4) for k, v in sums.items()}}
        if config.monitor_every and ((epoch + 1) % config.monitor_every == 0 or epoch + 1 == config.epochs):
            entry["validation_auroc"] = _monitor(model, tensors, targets, validation)
        history.append(entry)
        log.info("epoch %s", json.dumps(entry))
    return model.eval(), history


def calibrate(logits: np.ndarray, targets: np.ndarray, validation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label: temperature (log loss on validation) and threshold (Youden's J on the calibrated
    validation probabilities)."""
    temperatures = np.ones(len(LABELS))
    thresholds = np.full(len(LABELS), 0.5)
    for j in range(len(LABELS)):
        subset = _evaluable(targets, j, validation)
        if len(np.unique(targets[subset, j])) < 2:
            continue
        temperatures[j] = fit_temperature(targets[subset, j], logits[subset, j])
        probabilities = 1 / (1 + np.exp(-logits[subset, j] / temperatures[j]))
        thresholds[j] = youden_threshold(targets[subset, j], probabilities)
    return temperatures, thresholds


def validation_metrics(records: list[ImageRecord], probabilities: np.ndarray, targets: np.ndarray,
                       validation: np.ndarray, thresholds: np.ndarray, seed: int) -> dict:
    """Per label on the whole validation split, and per domain (pediatric / adult) where both classes exist."""
    domains = np.array([r.domain for r in records])
    metrics: dict = {}
    for j, label in enumerate(LABELS):
        subset = _evaluable(targets, j, validation)
        block = label_metrics(targets[subset, j], probabilities[subset, j], thresholds[j], seed) if subset.any() else {}
        for domain in ("pediatric", "adult"):
            part = subset & (domains == domain)
            if part.any() and len(np.unique(targets[part, j])) == 2:
                block[f"{domain}_only"] = label_metrics(targets[part, j], probabilities[part, j], thresholds[j], seed)
        metrics[label] = block
    return metrics


def domain_check(records: list[ImageRecord], probabilities: np.ndarray, targets: np.ndarray,
                 validation: np.ndarray) -> dict:
    """Is "adult vs child" standing in for a label? AUROC of the label's probability for adult vs
    pediatric among validation images of the SAME class (0.5 = the score ignores the domain)."""
    from radassist.training.metrics import auroc

    adult = np.array([r.domain == "adult" for r in records])
    result = {}
    for j, label in enumerate(LABELS):
        for value, name in ((0, "negatives"), (1, "positives")):
            subset = validation & (targets[:, j] == value)
            if adult[subset].any() and (~adult[subset]).any():
                result[f"{label}_{name}"] = {"auroc_adult_vs_pediatric": auroc(adult[subset], probabilities[subset, j]),
                                             "n_adult": int(adult[subset].sum()),
                                             "n_pediatric": int((~adult[subset]).sum())}
    return result


def shape_baseline(records: list[ImageRecord], shapes: np.ndarray, targets: np.ndarray, train: np.ndarray,
                   validation: np.ndarray, seed: int) -> dict:
    """Shape-only logistic regression per pediatric label on the same split (the shortcut's size)."""
    features = shape_features(records, shapes)
    pediatric = np.array([r.domain == "pediatric" for r in records])
    result = {}
    for j, label in enumerate(LABELS):
        fit_on = _evaluable(targets, j, train) & pediatric
        score_on = _evaluable(targets, j, validation) & pediatric
        if len(np.unique(targets[fit_on, j])) < 2 or len(np.unique(targets[score_on, j])) < 2:
            continue
        scores = shape_only_scores(features[fit_on], targets[fit_on, j], features[score_on])
        block = label_metrics(targets[score_on, j], scores, 0.5, seed)
        result[label] = {"auroc": block["auroc"], "auroc_ci95": block["auroc_ci95"],
                         "n_positive": block["n_positive"], "n_negative": block["n_negative"],
                         "scope": "pediatric_pneumonia validation images"}
    return result


def ood_statistics(embeddings: np.ndarray) -> dict:
    """Embedding-distance reference for input QA: standardised RMS distance to the training mean;
    the threshold is the OOD_PERCENTILE percentile over the training + validation images."""
    mean = embeddings.mean(axis=0)
    scale = embeddings.std(axis=0) + 1e-6
    distances = np.sqrt((((embeddings - mean) / scale) ** 2).mean(axis=1))
    return {"method": "rms_standardized_embedding_distance",
            "formula": "sqrt(mean(((embedding - mean) / scale) ** 2))",
            "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
            "threshold": float(np.percentile(distances, OOD_PERCENTILE)),
            "percentile": OOD_PERCENTILE, "reference_images": int(len(embeddings))}


def train(config: TrainConfig) -> TrainResult:
    """The whole recipe; writes ONNX, card, Markdown, split and validation predictions into out_dir."""
    from radassist.training.model_card import add_ablation_comparison, build_card, write_card_files

    started = time.time()
    torch.set_num_threads(config.threads)
    spec = default_spec(config.size)
    records = read_folders(config.data)
    region = LUNG_MODEL if lung_model_available() else TEMPLATE
    log.info("%d labelled images; radiomics region: %s", len(records), region)
    cached = cache_module.load_or_build(records, spec, region, config.cache_dir, config.workers)
    groups = duplicate_groups(records, thumbnails(cached.tensors))
    assignment = np.array(patient_split(records, groups, config.validation_fraction, config.seed))
    train_mask, validation = assignment == TRAIN, assignment == VALIDATION
    targets = target_matrix(records)
    weights = loss_weights(targets, np.array([r.domain for r in records]), train_mask)
    radiomics = standardize_radiomics(cached.radiomics, train_mask)
    prepared = time.time()

    model, history = fit_network(config, cached.tensors, radiomics, targets, weights, train_mask, validation)
    logits, embeddings = predict(model, cached.tensors)
    temperatures, thresholds = calibrate(logits, targets, validation)
    model.temperature.copy_(torch.from_numpy(temperatures.astype(np.float32)))
    probabilities = 1 / (1 + np.exp(-logits / temperatures))

    config.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = config.out_dir / "cxr_classifier.onnx"
    export_onnx(model, onnx_path, config.size)
    check_images = cached.tensors[np.flatnonzero(validation)[:16]].astype(np.float32)
    difference = max_abs_difference(model, onnx_path, check_images)
    report_dir = config.report_dir or config.cache_dir / "runs" / config.model_id
    report_dir.mkdir(parents=True, exist_ok=True)
    write_split(report_dir / "split.csv", records, assignment.tolist(), groups)

    summary = {
        "records": records, "assignment": assignment, "targets": targets, "region": region, "spec": spec,
        "temperatures": temperatures, "thresholds": thresholds, "feature_names": cached.feature_names,
        "metrics": validation_metrics(records, probabilities, targets, validation, thresholds, config.seed),
        "domain_check": domain_check(records, probabilities, targets, validation),
        "shape_baseline": shape_baseline(records, cached.shapes, targets, train_mask, validation, config.seed),
        "ood": ood_statistics(embeddings),
        "onnx_vs_torch_max_abs_diff": difference, "history": history,
        "seconds": {"preprocess_and_radiomics": round(prepared - started, 1),
                    "total": round(time.time() - started, 1), "cpu_total": round(_cpu_seconds(), 1)},
        "config": {k: v for k, v in asdict(config).items()
                   if k not in ("data", "out_dir", "cache_dir", "report_dir", "ablation_card", "command")},
        "conditional_on": CONDITIONAL_ON,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    card = build_card(config, onnx_path, summary)
    if config.ablation_card:
        add_ablation_comparison(card, json.loads(Path(config.ablation_card).read_text(encoding="utf-8")))
    card_path = write_card_files(config.out_dir, card)
    _write_predictions(report_dir / "validation_predictions.csv", records, assignment, targets, probabilities)
    return TrainResult(card=card, onnx_path=onnx_path, card_path=card_path, history=history)


def _cpu_seconds() -> float:
    """CPU time of this process and its finished workers: with the wall time it shows how much of a
    run's duration was waiting for a shared CPU."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def _write_predictions(path: Path, records: list[ImageRecord], assignment: np.ndarray, targets: np.ndarray,
                       probabilities: np.ndarray) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "file", *[f"{label}_target" for label in LABELS],
                         *[f"{label}_probability" for label in LABELS]])
        for index in np.flatnonzero(assignment == VALIDATION):
            record = records[index]
            writer.writerow([record.source, record.file, *targets[index].tolist(),
                             *[f"{p:.6f}" for p in probabilities[index]]])
