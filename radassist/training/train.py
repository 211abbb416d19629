"""Radiomics-guided contrastive training (Han et al., ISBI 2021) of the chest X-ray classifier, v2.

One call of `train(config)` does the whole reproducible recipe: read the labels.csv folders, preprocess and
extract lung-field radiomics once (cached), split by patient into train / calibration / validation, train the
CNN with the masked multi-label loss plus the InfoNCE loss that pulls each image embedding toward the radiomics
embedding of the same image (lung fields, and from `salient_refresh_epoch` on also the region the network's own
CAM marks), train the ablation (same network, split and budget, no InfoNCE), calibrate and pick thresholds on
the calibration split, measure everything on the validation split against plain baselines, export ONNX, verify
it against torch and write the model card. Each epoch is checkpointed, so a stopped run resumes.
"""

from __future__ import annotations

import hashlib
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
    CALIBRATION,
    TRAIN,
    VALIDATION,
    ImageRecord,
    duplicate_groups,
    patient_split,
    read_folders,
    write_split,
)
from radassist.training.export import export_onnx, max_abs_difference
from radassist.training.labels import LABELS
from radassist.training.metrics import fit_platt
from radassist.training.model import Classifier, RadiomicsBranch, info_nce
from radassist.training.radiomics_features import LUNG_MODEL, TEMPLATE, lung_model_available

log = logging.getLogger(__name__)

UNKNOWN = -1
MAX_WEIGHT_RATIO = 5.0  # cap on a sample's loss weight relative to the mean (rare positives, scarce cells)
# labels whose (age group, class) cells are balanced so "adult vs child" cannot stand in for them
BALANCED_BY_AGE_GROUP = frozenset({"abnormal", "opacity", "pneumonia"})
OOD_PERCENTILE = 99.5
RADIOMICS_CLIP = 6.0
# `abnormal` threshold: the highest one keeping this sensitivity on the adult films with airspace disease (pneumonia,
# COVID-19, consolidation) of the calibration split: the films a triage list must not miss. Chosen on all adult
# abnormal films instead, it flagged 67 % of adult normals (v2 development run), since most of NIH's report-mined
# findings are subtle at this resolution.
ABNORMAL_SENSITIVITY = 0.90
# every other label: Youden's J on the calibration split among thresholds keeping this specificity. Unconstrained,
# the rare labels (7-16 calibration positives) got thresholds that flagged pneumothorax on 98 % of NIH films.
MIN_FINDING_SPECIFICITY = 0.80


@dataclass
class TrainConfig:
    data: list[Path]
    out_dir: Path
    cache_dir: Path
    size: int = 160
    epochs: int = 14
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    contrastive_weight: float = 0.5
    contrastive_temperature: float = 0.1
    salient_refresh_epoch: int = 5  # after this epoch the salient-region radiomics join the partner view
    validation_fraction: float = 0.15
    calibration_fraction: float = 0.15
    ablation: bool = True  # also train the same network without InfoNCE (same split, budget) and compare
    seed: int = 20240611
    workers: int = 2
    threads: int = 2
    model_id: str = "radassist-cxr-classifier"
    version: str = "2.0.0"
    command: str = ""
    monitor_every: int = 5
    report_dir: Path | None = None  # split, predictions, checkpoints; default: <cache_dir>/runs/<model_id>


@dataclass
class Variant:
    """One trained network of a run (the contrastive model or its ablation) and its calibrated outputs."""

    name: str
    model: Classifier
    history: list[dict]
    logits: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    embeddings: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    probabilities: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    temperatures: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    shifts: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    thresholds: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]


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
    """[N, L] weights: each (age group, class) cell of the training set carries the same total weight (each
    class, for labels not balanced by age group), mean 1 over known entries, capped at MAX_WEIGHT_RATIO."""
    weights = np.zeros(targets.shape, dtype=np.float32)
    for j, label in enumerate(LABELS):
        known = train & (targets[:, j] != UNKNOWN)
        cells = np.array([f"{d if label in BALANCED_BY_AGE_GROUP else 'all'}|{c}"
                          for d, c in zip(domains, targets[:, j], strict=True)])
        present = sorted(set(cells[known]))
        for cell in present:
            members = known & (cells == cell)
            weights[members, j] = known.sum() / (len(present) * members.sum())
        if known.any():
            weights[:, j] = np.minimum(weights[:, j], MAX_WEIGHT_RATIO)
            weights[known, j] /= weights[known, j].mean()
    return weights


def standardize_features(values: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Median impute, robust z-score (median / IQR of the training images), clipped."""
    median = np.nanmedian(values[train], axis=0)
    median = np.where(np.isfinite(median), median, 0.0)
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
    """Weighted BCE over the known entries only: a label a source does not annotate is masked, not negative."""
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
def predict(model: Classifier, tensors: np.ndarray, batch_size: int = 64,
            cam_label: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Logits [N, L], embeddings [N, D] and (if asked) the CAMs [N, h, w] of one label (eval mode)."""
    model.eval()
    logits, embeddings, cams = [], [], []
    for start in range(0, len(tensors), batch_size):
        batch = torch.from_numpy(tensors[start:start + batch_size].astype(np.float32))
        _, batch_logits, cam, embedding = model(batch)
        logits.append(batch_logits.numpy())
        embeddings.append(embedding.numpy())
        if cam_label is not None:
            cams.append(cam[:, cam_label].numpy())
    return np.concatenate(logits), np.concatenate(embeddings), (np.concatenate(cams) if cams else None)


def _monitor(model: Classifier, tensors: np.ndarray, targets: np.ndarray, validation: np.ndarray) -> dict:
    from radassist.training.metrics import auroc

    logits, _, _ = predict(model, tensors[validation])
    sub = targets[validation]
    return {label: round(auroc(sub[sub[:, j] != UNKNOWN, j], logits[sub[:, j] != UNKNOWN, j]), 4)
            for j, label in enumerate(LABELS)}


class _Checkpoint:
    """Per-epoch state of one variant's training, so a stopped run resumes where it stopped. The file is
    keyed by a fingerprint of the config and the data, so a changed recipe never resumes a stale run."""

    def __init__(self, directory: Path, variant: str, fingerprint: str):
        self.path = directory / f"checkpoint_{variant}.pt"
        self.fingerprint = fingerprint

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        state = torch.load(self.path, weights_only=False)
        return state if state.get("fingerprint") == self.fingerprint else None

    def save(self, state: dict) -> None:
        tmp = self.path.with_suffix(".tmp")
        torch.save({**state, "fingerprint": self.fingerprint}, tmp)
        os.replace(tmp, self.path)


def fit_network(config: TrainConfig, tensors: np.ndarray, lung_radiomics: np.ndarray | None, targets: np.ndarray,
                weights: np.ndarray, train: np.ndarray, validation: np.ndarray,
                checkpoint: _Checkpoint) -> tuple[Classifier, list[dict]]:
    """The training loop. Fixed epochs, no early stopping: the validation set is only watched, never used to
    pick weights. `lung_radiomics` None trains the ablation (no radiomics branch, no InfoNCE)."""
    from radassist.training.salient_radiomics import salient_features

    torch.manual_seed(config.seed)
    model = Classifier(len(LABELS))
    contrastive = lung_radiomics is not None
    salient_names = _salient_feature_count() if contrastive else 0
    branch = (RadiomicsBranch(lung_radiomics.shape[1] + salient_names, model.encoder.out_channels)
              if contrastive else None)
    parameters = list(model.parameters()) + (list(branch.parameters()) if branch else [])
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    train_index = np.flatnonzero(train)
    steps_per_epoch = len(train_index) // config.batch_size
    total = steps_per_epoch * config.epochs
    rng = np.random.default_rng(config.seed)
    history: list[dict] = []
    step, first_epoch = 0, 0
    salient = np.zeros((len(tensors), salient_names), dtype=np.float32) if contrastive else None
    state = checkpoint.load()
    if state is not None:
        model.load_state_dict(state["model"])
        if branch:
            branch.load_state_dict(state["branch"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        step, first_epoch, history = state["step"], state["epoch"], state["history"]
        salient = state["salient"]
        log.info("resumed %s after epoch %d", checkpoint.path.name, first_epoch)
    for epoch in range(first_epoch, config.epochs):
        model.train()
        if branch:
            branch.train()
        started, cpu_started = time.time(), time.process_time()
        order = rng.permutation(train_index)
        sums = {"classification": 0.0, "contrastive": 0.0}
        partner = np.concatenate([lung_radiomics, salient], axis=1) if contrastive else None
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
                image_z, radiomics_z = branch(embedding, torch.from_numpy(partner[index]))
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
        if contrastive and epoch + 1 == config.salient_refresh_epoch:
            refresh_started = time.time()
            _, _, cams = predict(model, tensors, cam_label=LABELS.index("abnormal"))
            values, _ = salient_features(tensors, cams, config.workers)
            salient = standardize_features(values, train)
            entry["salient_radiomics_seconds"] = round(time.time() - refresh_started, 1)
        if config.monitor_every and ((epoch + 1) % config.monitor_every == 0 or epoch + 1 == config.epochs):
            entry["validation_auroc"] = _monitor(model, tensors, targets, validation)
        history.append(entry)
        log.info("%s epoch %s", checkpoint.path.stem, json.dumps(entry))
        checkpoint.save({"model": model.state_dict(), "branch": branch.state_dict() if branch else None,
                         "optimizer": optimizer.state_dict(), "numpy_rng": rng.bit_generator.state,
                         "torch_rng": torch.get_rng_state(), "step": step, "epoch": epoch + 1,
                         "history": history, "salient": salient})
    return model.eval(), history


def _salient_feature_count() -> int:
    """How many salient-region features the extractor gives (fixed by the feature classes)."""
    from radassist.explain.radiomics import RUNTIME_FEATURE_CLASSES, extract_features

    ramp = np.linspace(0.0, 1.0, 32 * 32, dtype=np.float32).reshape(32, 32)
    return len(extract_features(ramp, np.ones(ramp.shape, dtype=bool), RUNTIME_FEATURE_CLASSES))


def abnormal_threshold(labels: np.ndarray, probabilities: np.ndarray, sensitivity: float) -> float:
    """The highest threshold at which at least `sensitivity` of the positives are flagged."""
    positives = np.sort(probabilities[labels == 1])[::-1]
    if positives.size == 0:
        return 0.5
    return float(positives[max(0, math.ceil(sensitivity * positives.size) - 1)])


def calibrate(variant: Variant, targets: np.ndarray, calibration: np.ndarray, adult: np.ndarray) -> None:
    """Per label on the calibration split: Platt scaling (temperature + logit shift, the shift folded into the
    head bias) and the operating threshold (Youden's J with specificity >= MIN_FINDING_SPECIFICITY; `abnormal`:
    the highest threshold that keeps ABNORMAL_SENSITIVITY on the adult films with airspace disease)."""
    from radassist.training.metrics import constrained_youden_threshold

    count = len(LABELS)
    variant.temperatures, variant.shifts, variant.thresholds = np.ones(count), np.zeros(count), np.full(count, 0.5)
    for j, label in enumerate(LABELS):
        subset = calibration & (targets[:, j] != UNKNOWN)
        if len(np.unique(targets[subset, j])) < 2:
            continue
        variant.temperatures[j], variant.shifts[j] = fit_platt(targets[subset, j], variant.logits[subset, j])
        probabilities = 1 / (1 + np.exp(-(variant.logits[:, j] + variant.shifts[j]) / variant.temperatures[j]))
        if label == "abnormal":
            airspace = (targets[:, LABELS.index("pneumonia")] == 1) | (targets[:, LABELS.index("opacity")] == 1)
            chosen = subset & adult & airspace
            chosen = chosen if chosen.any() else subset & (targets[:, j] == 1)
            variant.thresholds[j] = abnormal_threshold(targets[chosen, j], probabilities[chosen], ABNORMAL_SENSITIVITY)
        else:
            variant.thresholds[j] = constrained_youden_threshold(targets[subset, j], probabilities[subset],
                                                                 MIN_FINDING_SPECIFICITY)
    variant.probabilities = 1 / (1 + np.exp(-(variant.logits + variant.shifts) / variant.temperatures))
    with torch.no_grad():  # fold the calibration into the network that is exported
        variant.model.head.bias.add_(torch.from_numpy(variant.shifts.astype(np.float32)))
        variant.model.temperature.copy_(torch.from_numpy(variant.temperatures.astype(np.float32)))


def ood_statistics(embeddings: np.ndarray) -> dict:
    """Embedding-distance reference for input QA: standardised RMS distance to the training mean; the threshold
    is the OOD_PERCENTILE percentile over the training images."""
    mean = embeddings.mean(axis=0)
    scale = embeddings.std(axis=0) + 1e-6
    distances = np.sqrt((((embeddings - mean) / scale) ** 2).mean(axis=1))
    return {"method": "rms_standardized_embedding_distance",
            "formula": "sqrt(mean(((embedding - mean) / scale) ** 2))",
            "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
            "threshold": float(np.percentile(distances, OOD_PERCENTILE)),
            "percentile": OOD_PERCENTILE, "reference_images": int(len(embeddings))}


def _fingerprint(config: TrainConfig, records: list[ImageRecord], variant: str) -> str:
    recipe = {k: v for k, v in asdict(config).items()
              if k not in ("out_dir", "cache_dir", "report_dir", "command", "workers", "threads", "monitor_every",
                           "data")}
    identity = json.dumps([recipe, variant, [r.key for r in records], list(LABELS)], sort_keys=True, default=str)
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def train(config: TrainConfig) -> TrainResult:
    """The whole recipe; writes ONNX, card, Markdown into out_dir; split, predictions, checkpoints into report_dir."""
    from radassist.training.model_card import build_card, write_card_files
    from radassist.training.validation_report import validation_report, write_predictions

    started = time.time()
    torch.set_num_threads(config.threads)
    spec = default_spec(config.size)
    records = read_folders(config.data)
    region = LUNG_MODEL if lung_model_available() else TEMPLATE
    log.info("%d labelled images; radiomics region: %s", len(records), region)
    lung_model = _lung_model_sha256() if region == LUNG_MODEL else ""
    cached = cache_module.load_or_build(records, spec, region, config.cache_dir, config.workers, lung_model)
    groups = duplicate_groups(records, thumbnails(cached.tensors))
    assignment = np.array(patient_split(records, groups, {VALIDATION: config.validation_fraction,
                                                          CALIBRATION: config.calibration_fraction}, config.seed))
    train_mask, calibration, validation = (assignment == TRAIN, assignment == CALIBRATION,
                                           assignment == VALIDATION)
    targets = target_matrix(records)
    domains = np.array([r.domain for r in records])
    weights = loss_weights(targets, domains, train_mask)
    radiomics = standardize_features(cached.radiomics, train_mask)
    report_dir = config.report_dir or config.cache_dir / "runs" / config.model_id
    report_dir.mkdir(parents=True, exist_ok=True)
    write_split(report_dir / "split.csv", records, assignment.tolist(), groups)
    prepared = time.time()

    variants = []
    for name, partner in (("contrastive", radiomics), ("ablation", None)):
        if name == "ablation" and not config.ablation:
            continue
        checkpoint = _Checkpoint(report_dir, name, _fingerprint(config, records, name))
        model, history = fit_network(config, cached.tensors, partner, targets, weights, train_mask, validation,
                                     checkpoint)
        variant = Variant(name, model, history)
        variant.logits, variant.embeddings, _ = predict(model, cached.tensors)
        calibrate(variant, targets, calibration, domains == "adult")
        variants.append(variant)
    main = variants[0]

    config.out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = config.out_dir / "cxr_classifier.onnx"
    export_onnx(main.model, onnx_path, config.size)
    check_images = cached.tensors[np.flatnonzero(validation)[:16]].astype(np.float32)
    difference = max_abs_difference(main.model, onnx_path, check_images)

    summary = {
        "records": records, "assignment": assignment, "targets": targets, "region": region, "spec": spec,
        "lung_model_sha256": lung_model,
        "variant": main, "feature_names": cached.feature_names,
        "validation": validation_report(records, assignment, groups, targets, cached.tensors, variants, config.seed),
        "ood": ood_statistics(main.embeddings[train_mask]),
        "onnx_vs_torch_max_abs_diff": difference,
        "histories": {v.name: v.history for v in variants},
        "seconds": {"preprocess_and_radiomics": round(prepared - started, 1),
                    "total": round(time.time() - started, 1), "cpu_total": round(_cpu_seconds(), 1)},
        "config": {k: v for k, v in asdict(config).items()
                   if k not in ("data", "out_dir", "cache_dir", "report_dir", "command")},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    card = build_card(config, onnx_path, summary)
    card_path = write_card_files(config.out_dir, card)
    write_predictions(report_dir / "validation_predictions.csv", records, assignment, targets, variants)
    return TrainResult(card=card, onnx_path=onnx_path, card_path=card_path, history=main.history)


def _lung_model_sha256() -> str:
    from radassist.inference.card import ModelCard
    from radassist.inference.registry import active_card_path

    return ModelCard.load(active_card_path(LUNG_MODEL)).sha256


def _cpu_seconds() -> float:
    """CPU time of this process and its finished workers: with the wall time it shows how much of a run's
    duration was waiting for a shared CPU."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
