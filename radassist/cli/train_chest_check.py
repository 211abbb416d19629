"""`radassist train-chest-check`: train the input-QA chest check ([train] extra); the training itself is
radassist.training.chest_check_train (its docstring says what is learnt and how to reproduce the shipped one).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import radassist.training  # noqa: F401  (a frozen bundle leaves training out: the command is then "not available")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", type=Path, required=True, metavar="FOLDER")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=None, help="where the generated samples are kept")


def run(args: argparse.Namespace) -> int:
    from radassist.cli.train import prepare_training

    prepare_training(args.data)
    from radassist.training.chest_check_train import train_chest_check

    card = train_chest_check(list(args.data), args.out, epochs=args.epochs, seed=args.seed, threads=args.threads,
                             cache_dir=args.cache,
                             command="radassist train-chest-check " + " ".join(shlex.quote(a) for a in sys.argv[2:]))
    refusal = card["metrics"]["refused_at_threshold"]
    for kind, block in refusal.items():
        print(f"{kind}: refused {block['refused']:.3f} of {block['n']} validation samples")
    print(f"pediatric AUROC {card['metrics']['pediatric_auroc']:.3f}; accept threshold "
          f"{card['accept_threshold']:.4f}; wrote {args.out / card['file']}")
    return 0
