"""`radassist selftest` (and `radassist --selftest`, the frozen bundle's smoke test): the steps are
radassist.selftest's."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sample", action="append", metavar="PATH", type=Path,
                        help="image to read end to end (repeatable; default: every bundled sample)")
    parser.add_argument("--no-viewer", action="store_true", help="skip the viewer step (core-only installs)")
    parser.add_argument("--screenshot", metavar="OUT.png", type=Path,
                        help="save what the viewer step showed (to look at a headless run)")


def run(args: argparse.Namespace) -> int:
    from radassist.selftest import run_selftest

    run_selftest(list(args.sample or []), viewer=not args.no_viewer, screenshot=args.screenshot)
    return 0
