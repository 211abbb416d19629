"""Scoring the shipped ONNX classifier on a labels.csv folder through the runtime path (`radassist evaluate`).

Every image goes read_image -> preprocess (the card's spec) -> engine.load_model, exactly what a read
does, so the figures are those of the product, not of the training code. No torch is imported.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused, RadAssistError

BATCH = 16


def square_centre(image):
    """The image's centre square as a new Radiograph (what --square-crop evaluates)."""
    from radassist.imaging.preprocess import centre_square_box

    row0, col0, row1, col1 = centre_square_box(*image.shape)
    return dataclasses.replace(image, pixels=image.pixels[row0:row1, col0:col1])


def select_records(labels: Path, images_root: Path | None, card: dict, *, only_validation: bool = False,
                   split_file: Path | None = None):
    """The labelled rows of `labels` to evaluate: all, the card's validation files, or a split file's."""
    from radassist.training.datasets import VALIDATION, read_labels_csv, read_split

    records = read_labels_csv(labels, images_root)
    if only_validation:
        keep = set(card.get("training", {}).get("split", {}).get("validation_files", []))
        if not keep:
            raise InputRefused("the model card lists no validation files; use --split-file instead")
        records = [r for r in records if r.key in keep]
    elif split_file:
        keep = read_split(split_file, VALIDATION)
        records = [r for r in records if r.key in keep]
    records = [r for r in records if r.targets]
    if not records:
        raise InputRefused(f"no labelled image of {labels} is left to evaluate")
    return records


def run_model(session, records, spec: dict, square_crop: bool):
    """Probabilities [N, L], saliency shares per label, and the images that could not be read."""
    from tqdm import tqdm

    from radassist.imaging.preprocess import preprocess
    from radassist.io import read_image
    from radassist.training import saliency_audit

    kept, probabilities, skipped = [], [], []
    shares: list[list[dict]] = []
    pending: list[tuple] = []

    def flush() -> None:
        tensors = np.stack([p.tensor for _, p in pending]).astype(np.float32)
        out = session.run({"image": tensors}, ["probabilities", "cam"])
        for (record, pre), prob, cam in zip(pending, out["probabilities"], out["cam"], strict=True):
            kept.append(record)
            probabilities.append(prob)
            shares.append([saliency_audit.energy_shares(c, pre.tensor.shape[-1]) for c in cam])
        pending.clear()

    for record in tqdm(records, desc="evaluate", unit="img"):
        try:
            image = read_image(record.path)
            if square_crop:
                image = square_centre(image)
            pending.append((record, preprocess(image, spec)))
        except RadAssistError as exc:
            skipped.append({"file": record.file, "reason": str(exc)})
            continue
        if len(pending) == BATCH:
            flush()
    if pending:
        flush()
    return kept, np.array(probabilities), shares, skipped


def compute_metrics(card, records, probabilities: np.ndarray, shares, out_dir: Path) -> dict:
    from radassist.training import plots, saliency_audit
    from radassist.training.metrics import reliability_bins, roc_curve
    from radassist.training.validation_report import one_label_block

    per_label = {}
    for j, label in enumerate(card.labels):
        index = [i for i, r in enumerate(records) if label.id in r.targets]
        if not index:
            continue
        y = np.array([records[i].targets[label.id] for i in index])
        p = probabilities[index, j]
        patients = np.array([records[i].patient for i in index])
        block = {"conditional_on": label.conditional_on,
                 **one_label_block(y, p, label.threshold, patients, seed=0)}
        ages = np.array([records[i].domain for i in index])
        if len(set(ages)) > 1:
            block["by_age_group"] = {age: one_label_block(y[ages == age], p[ages == age], label.threshold,
                                                          patients[ages == age], seed=0) for age in sorted(set(ages))}
        if "auroc" in block:
            fpr, tpr, _ = roc_curve(y, p)
            plots.roc_png(out_dir / f"roc_{label.id}.png", fpr, tpr, f"{label.id}: AUROC {block['auroc']:.3f}")
        bins = reliability_bins(y, p)
        block["reliability"] = bins
        plots.reliability_png(out_dir / f"reliability_{label.id}.png", bins, f"{label.id}: reliability")
        positives = [shares[i][j] for i in index if records[i].targets[label.id] == 1]
        block["saliency_on_positives"] = saliency_audit.summarize(positives)
        per_label[label.id] = block
    return per_label
