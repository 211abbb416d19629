"""`radassist finetune --feedback DIR [--base CARD] [--out-dir DIR]`: a new classifier version from feedback.

Runs without torch (numpy + onnxruntime + onnx). The new version is written to the user models folder
(or --out-dir) and is never activated here: `radassist models activate CARD` does that after review.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import radassist.training  # noqa: F401  (a frozen bundle leaves training out: the command is then "not available")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feedback", type=Path, required=True, metavar="DIR",
                        help="folder written by `radassist export` (labels.csv with final_labels, images/)")
    parser.add_argument("--base", default="classifier", metavar="CARD",
                        help="model card (or its ONNX file) to start from (default: the active classifier version)")
    parser.add_argument("--out-dir", type=Path, default=None, metavar="DIR",
                        help="folder to write the version folder into (default: the user models folder, "
                             "where `radassist models` finds it)")
    parser.add_argument("--validation-data", type=Path, default=None, metavar="DIR",
                        help="folder holding the base card's training folders, for its original validation "
                             "split (default: the folders its training command named, or ../shared/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out split and the cross-validation")
    parser.add_argument("--holdout-fraction", type=float, default=0.3,
                        help="share of feedback patients kept out of fitting for the before/after figures")


def _figures_text(figures: dict) -> str:
    if figures.get("auroc") is None:
        auroc = "AUROC n/a"
    else:
        low, high = figures["auroc_ci95"]
        auroc = f"AUROC {figures['auroc']:.3f} ({low:.3f}-{high:.3f})"
    return f"{auroc}, log loss {figures['log_loss']:.3f}, errors {figures['errors_at_threshold']}"


def _print_figures(title: str, per_label: dict) -> None:
    for label, block in per_label.items():
        print(f"  {title} {label} (n {block['n_positive']}+/{block['n_negative']}-): "
              f"before {_figures_text(block['before'])}; after {_figures_text(block['after'])}")


def run(args: argparse.Namespace) -> int:
    from radassist.training.finetune import finetune

    result = finetune(args.feedback, args.base, args.out_dir, validation_data=args.validation_data, seed=args.seed,
                      holdout_fraction=args.holdout_fraction,
                      command="radassist finetune " + " ".join(shlex.quote(a) for a in sys.argv[2:]))
    details = result.card["finetune"]
    for label, fit in details["per_label"].items():
        print(f"{label}: {fit['status']} ({fit['reason'] or 'ok'})")
    _print_figures("held-out feedback", details["feedback_holdout"])
    validation = details["original_validation"]
    if validation["reachable"]:
        print(f"  original validation: {validation['images']} images "
              f"({validation['left_out_because_in_feedback']} left out: also in the feedback)")
        _print_figures("original validation", validation["per_label"])
        if not validation["regression"]["ok"]:
            drops = ", ".join(f"{label} {change:+.3f}" for label, change in
                              validation["regression"]["labels_over_limit"].items())
            print(f"WARNING: original-validation AUROC fell by more than "
                  f"{validation['regression']['auroc_drop_limit']} ({drops}); do not activate this version "
                  "without review")
    else:
        print(f"  original validation: not evaluated ({validation['note']})")
    print(f"wrote {result.card['model_id']} {result.card['version']} to {result.card_path.parent}")
    if result.registered:
        print(f"it is NOT active; to use it: radassist models activate {result.card_path}")
    else:
        print("it is NOT registered (written outside the user models folder); move its folder into the "
              "user models folder, then: radassist models activate <its .card.json>")
    return 0
