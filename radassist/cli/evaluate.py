"""`radassist evaluate`: score the shipped ONNX classifier on a labels.csv folder, through the runtime path.

Every image goes through the runtime path (radassist.training.evaluate), so the figures are those of
the product, not of the training code. No torch is imported.
Writes DIR/metrics.json (per label AUROC with a bootstrap 95 % CI over patients, sensitivity/specificity at the
card's threshold, ECE, counts, per age group, a saliency audit) and DIR/roc_<label>.png, DIR/reliability_<label>.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import radassist.training  # noqa: F401  (a frozen bundle leaves training out: the command is then "not available")
from radassist.errors import InputRefused


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


def run(args: argparse.Namespace) -> int:
    from radassist.inference.engine import load_model
    from radassist.training.evaluate import compute_metrics, run_model, select_records

    if not args.labels.is_file():
        raise InputRefused(f"labels file {args.labels} does not exist")
    session = load_model(args.model)
    card = session.card
    records = select_records(args.labels, args.images_root, card.data, only_validation=args.only_validation,
                             split_file=args.split_file)
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
