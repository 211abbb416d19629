"""`radassist evaluate`: score the shipped ONNX classifier on a labels.csv folder, through the runtime path.

Every image goes read_image -> preprocess (the card's spec) -> engine.load_model, exactly what a read
does, so the figures are those of the product, not of the training code. No torch is imported.
Writes DIR/metrics.json (per label AUROC with a bootstrap 95 % CI over patients, sensitivity/specificity at the
card's threshold, ECE, counts, per age group, a saliency audit) and DIR/roc_<label>.png, DIR/reliability_<label>.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from radassist.errors import InputRefused, RadAssistError

BATCH = 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", type=Path, required=True, help="labels.csv (columns file, labels, ...)")
    parser.add_argument("--images-root", type=Path, default=None,
                        help="folder the 'file' column is relative to (default: the CSV's folder)")
    parser.add_argument("--out", type=Path, required=True, help="output folder for metrics.json and plots")
    parser.add_argument("--square-crop", action="store_true",
                        help="evaluate on the centre square crop of each image (in memory; files are untouched)")
    subset = parser.add_mutually_exclusive_group()
    subset.add_argument("--only-validation", action="store_true",
                        help="only the images of the model card's validation split")
    subset.add_argument("--split-file", type=Path, default=None,
                        help="CSV with columns source, file, split: only rows whose split is 'validation'")
    parser.add_argument("--model", default="classifier", help="model task name or card path")


def square_centre(image):
    """The image's centre square as a new Radiograph (what --square-crop evaluates)."""
    from radassist.imaging.preprocess import centre_square_box

    row0, col0, row1, col1 = centre_square_box(*image.shape)
    return dataclasses.replace(image, pixels=image.pixels[row0:row1, col0:col1])


def select_records(args, card: dict):
    from radassist.training.datasets import VALIDATION, read_labels_csv, read_split

    records = read_labels_csv(args.labels, args.images_root)
    if args.only_validation:
        keep = set(card.get("training", {}).get("split", {}).get("validation_files", []))
        if not keep:
            raise InputRefused("the model card lists no validation files; use --split-file instead")
        records = [r for r in records if r.key in keep]
    elif args.split_file:
        keep = read_split(args.split_file, VALIDATION)
        records = [r for r in records if r.key in keep]
    records = [r for r in records if r.targets]
    if not records:
        raise InputRefused(f"no labelled image of {args.labels} is left to evaluate")
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


def run(args: argparse.Namespace) -> int:
    from radassist.inference.engine import load_model

    if not args.labels.is_file():
        raise InputRefused(f"labels file {args.labels} does not exist")
    session = load_model(args.model)
    card = session.card
    records = select_records(args, card.data)
    args.out.mkdir(parents=True, exist_ok=True)
    kept, probabilities, shares, skipped = run_model(session, records, card.preprocessing, args.square_crop)
    if not kept:
        raise InputRefused(f"none of the {len(records)} images of {args.labels} could be read")
    result = {
        "model_id": card.model_id, "version": card.version, "sha256": card.sha256,
        "labels_csv": str(args.labels), "square_crop": bool(args.square_crop),
        "subset": "card validation split" if args.only_validation else (
            f"validation rows of {args.split_file}" if args.split_file else "all labelled rows"),
        "images": len(kept), "skipped": skipped,
        "per_label": compute_metrics(card, kept, probabilities, shares, args.out),
        "ci_method": "percentile bootstrap over patients (labels.csv patient_id; the file where none), 1000 "
                     "resamples, seed 0",
        "ece_method": "10 equal-width bins",
    }
    (args.out / "metrics.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    for name, block in result["per_label"].items():
        counts = f"(n {block['n_positive']}+/{block['n_negative']}-)"
        if "auroc" in block:
            low, high = block["auroc_ci95"]
            print(f"{name}: AUROC {block['auroc']:.3f} (95% CI {low:.3f}-{high:.3f}), ECE {block['ece']:.3f}, "
                  f"sens {block['sensitivity']:.2f} spec {block['specificity']:.2f} at {block['threshold']:.3f} {counts}")
        else:
            rate = "sens" if block["n_positive"] else "spec"
            value = block["sensitivity"] if block["n_positive"] else block["specificity"]
            print(f"{name}: one class only, {rate} {value:.2f} at the card threshold {block['threshold']:.3f}, "
                  f"ECE {block['ece']:.3f} {counts}")
    print(f"wrote {args.out / 'metrics.json'}")
    return 0
