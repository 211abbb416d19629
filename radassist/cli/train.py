"""`radassist train`: train, calibrate, export and card the chest X-ray classifier ([train] extra).

The shipped model (and, in the same run, its no-contrastive ablation on the same split and budget) is
reproduced by one command (wall time and CPU time in models/cxr_classifier.md):
    radassist train --data ../shared/data/pediatric_pneumonia ../shared/data/nih14 ../shared/data/jsrt \
        ../shared/data/covid_ieee8023 ../shared/data/covid_cxr_seg ../shared/data/covid_hannover \
        ../shared/data/covidx_actualmed ../shared/data/covidx_figure1 ../shared/data/covid_qu_ex_sample \
        ../shared/data/nih_cxr14_64px --out models
Each epoch is checkpointed under the report folder; running the same command again resumes a stopped run.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

import radassist.training  # noqa: F401  (a frozen bundle leaves training out: the command is then "not available")
from radassist.errors import InputRefused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", type=Path, required=True, metavar="FOLDER",
                        help="labels.csv folders (format of ../shared/data)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for cxr_classifier.onnx, .card.json and .md")
    parser.add_argument("--cache", type=Path, default=None,
                        help="cache for preprocessed tensors and radiomics (default: the user cache folder)")
    parser.add_argument("--report-dir", type=Path, default=None,
                        help="folder for split.csv and validation predictions (default: inside the cache)")
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--size", type=int, default=160, help="model input side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--calibration-fraction", type=float, default=0.15,
                        help="patients whose films fit calibration and thresholds only")
    parser.add_argument("--contrastive-weight", type=float, default=0.5)
    parser.add_argument("--no-ablation", action="store_true",
                        help="skip the ablation (same network without InfoNCE); the card then has no comparison")
    parser.add_argument("--workers", type=int, default=2, help="processes for preprocessing + radiomics")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--version", default="2.0.0")


def prepare_training(folders: list[Path]) -> None:
    """What every training command checks first: torch is installed, each folder has a labels.csv; then
    progress is logged to stderr."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputRefused("training needs the [train] extra: pip install 'radassist[train]'") from None
    for folder in folders:
        if not (folder / "labels.csv").is_file():
            raise InputRefused(f"{folder} has no labels.csv")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from radassist.training.cache import default_cache_dir
    from radassist.training.train import TrainConfig, train

    prepare_training(args.data)
    config = TrainConfig(
        data=list(args.data), out_dir=args.out, cache_dir=args.cache or default_cache_dir(),
        report_dir=args.report_dir, size=args.size, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, validation_fraction=args.validation_fraction,
        calibration_fraction=args.calibration_fraction, contrastive_weight=args.contrastive_weight,
        ablation=not args.no_ablation, workers=args.workers, threads=args.threads, version=args.version,
        command="radassist train " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )
    result = train(config)
    metrics = result.card["metrics"]
    for label, block in metrics["per_label"].items():
        if "auroc" in block:
            low, high = block["auroc_ci95"]
            print(f"{label}: validation AUROC {block['auroc']:.3f} (95% CI {low:.3f}-{high:.3f}), "
                  f"ECE {block['ece']:.3f}")
    print(f"wrote {result.onnx_path} and {result.card_path} "
          f"({result.card['training']['wall_time_minutes']} min)")
    return 0
