"""`radassist train`: train, calibrate, export and card the chest X-ray classifier ([train] extra).

The shipped model is reproduced by (wall time and CPU time in models/cxr_classifier.md):
    radassist train --data ../shared/data/pediatric_pneumonia ../shared/data/covid_cxr_seg \
        ../shared/data/covid_hannover ../shared/data/covidx_actualmed ../shared/data/covidx_figure1 \
        --out models --size 160 --epochs 12 --threads 1
Add `--no-contrastive --out DIR` for the ablation (same split and budget), and
`--ablation-card DIR/cxr_classifier.card.json` to put its figures beside the contrastive model's in the card.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

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
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--size", type=int, default=160, help="model input side in pixels")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--contrastive-weight", type=float, default=0.5)
    parser.add_argument("--no-contrastive", action="store_true",
                        help="train the ablation: same network, split and budget without the InfoNCE term")
    parser.add_argument("--ablation-card", type=Path, default=None,
                        help="card of an ablation run on the same split, compared in this card")
    parser.add_argument("--workers", type=int, default=2, help="processes for preprocessing + radiomics")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--version", default="1.0.0")


def run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise InputRefused("training needs the [train] extra: pip install 'radassist[train]'") from None
    from radassist.training.cache import default_cache_dir
    from radassist.training.train import TrainConfig, train

    for folder in args.data:
        if not (folder / "labels.csv").is_file():
            raise InputRefused(f"{folder} has no labels.csv")
    if args.ablation_card and not args.ablation_card.is_file():
        raise InputRefused(f"ablation card {args.ablation_card} does not exist")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    config = TrainConfig(
        data=list(args.data), out_dir=args.out, cache_dir=args.cache or default_cache_dir(),
        report_dir=args.report_dir, size=args.size, epochs=args.epochs, batch_size=args.batch_size,
        seed=args.seed, validation_fraction=args.validation_fraction,
        contrastive_weight=0.0 if args.no_contrastive else args.contrastive_weight,
        ablation_card=args.ablation_card, workers=args.workers, threads=args.threads, version=args.version,
        model_id="radassist-cxr-classifier" + ("-ablation" if args.no_contrastive else ""),
        command="radassist train " + " ".join(shlex.quote(a) for a in sys.argv[2:]),
    )
    result = train(config)
    metrics = result.card["metrics"]["per_label"]
    for label, block in metrics.items():
        if block:
            low, high = block["auroc_ci95"]
            print(f"{label}: validation AUROC {block['auroc']:.3f} (95% CI {low:.3f}-{high:.3f}), "
                  f"ECE {block['ece']:.3f}")
    print(f"wrote {result.onnx_path} and {result.card_path} "
          f"({result.card['training']['wall_time_minutes']} min)")
    return 0
