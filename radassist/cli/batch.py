"""`radassist batch SRC --out DIR [--engine local|ray]`: pre-read an archive (the work is in radassist/batch).

SRC is a folder tree, a DICOMDIR or a list file (one image path a line). Exit code 0 when every image was
read or refused, 1 when any image failed (a lost worker after its retries, a result that could not be
written), 2 with one error line when the batch cannot run at all.
"""

from __future__ import annotations

import argparse
import os
import sys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SRC", help="folder of images (searched recursively), DICOMDIR, or a text "
                        "file listing image paths (relative to its folder); images outside that folder are refused")
    parser.add_argument("--out", required=True, help="output folder: results/, summary.csv, studies.csv")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="local: worker processes on this machine (default); ray: Ray actors ([scale] extra)")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="join this Ray cluster (e.g. 10.0.0.5:6379) instead of starting a local Ray")
    parser.add_argument("--workers", type=_positive, default=max(1, min(2, os.cpu_count() or 1)),
                        help="worker processes or Ray actors (default: up to 2)")
    parser.add_argument("--threads-per-worker", type=_positive, default=None,
                        help="onnxruntime threads per worker (default: cores / workers; 1 with --ray-address)")
    parser.add_argument("--retries", type=_not_negative, default=1,
                        help="times an image is given to another worker after its worker was lost (default 1)")
    parser.add_argument("--resume", action="store_true",
                        help="keep complete results already in --out and read only the other images")
    parser.add_argument("--overwrite", action="store_true", help="read everything again, replacing results in --out")
    parser.add_argument("--record", action="store_true", help="store each AI result as an unsigned session")
    parser.add_argument("--store", metavar="PATH", help="feedback store for --record")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from radassist.batch.driver import BatchPlan, EngineKind, default_threads, run_batch, summary_line
    from radassist.batch.worker import WorkerOptions
    from radassist.errors import InputRefused

    engine = EngineKind(args.engine)
    if args.ray_address and engine is not EngineKind.RAY:
        raise InputRefused("--ray-address needs --engine ray")
    if args.ray_address and args.record:
        raise InputRefused("--record stores sessions in this machine's feedback store; it cannot be used with "
                           "--ray-address (the reads run on other machines)")
    plan = BatchPlan(
        source=Path(args.source), out=Path(args.out), engine=engine, workers=args.workers,
        threads_per_worker=args.threads_per_worker or default_threads(args.workers, args.ray_address), retries=args.retries,
        resume=args.resume, overwrite=args.overwrite, ray_address=args.ray_address,
        worker_options=WorkerOptions(record=args.record, store=args.store),
    )
    totals = run_batch(plan, lambda total: tqdm(total=total, unit="image", desc="reading", file=sys.stderr))
    for note in totals.notes:
        print(f"radassist: note: {note}", file=sys.stderr)
    print(summary_line(plan, totals))
    return 1 if totals.failed else 0
