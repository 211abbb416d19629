"""`radassist view [PATH...] [--screenshot OUT.png]`: the desktop viewer."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="image files, folders or DICOMDIR files to list and open (the first image opens)")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="open, wait for the AI read, save the whole window as PNG and exit")
    parser.add_argument("--no-read", action="store_true", help="do not start the AI read when an image opens")
    parser.add_argument("--no-record", action="store_true",
                        help="do not record decisions and edits in the feedback store")
    parser.add_argument("--store", metavar="PATH", help="feedback store file (default: in the user-data folder)")
    parser.add_argument("--pacs", nargs="?", const="", metavar="CONFIG",
                        help="add the PACS source: the listener's worklist and query/retrieve (configuration file, "
                             "default <user data>/pacs.toml)")
    parser.add_argument("--reader", metavar="ID",
                        help="who reads (recorded with every decision and the signature; asked once if not given)")


def run(args: argparse.Namespace) -> int:
    from radassist.io.files import regular_file

    for path in args.paths:
        if not Path(path).is_dir():
            regular_file(path)  # a missing path, FIFO, device or link loop is refused here, before any window
    from radassist.gui.app import run_viewer

    pacs = None
    if args.pacs is not None:
        from radassist.pacs.config import load_config

        pacs = load_config(Path(args.pacs) if args.pacs else None)

    code = run_viewer(list(args.paths), record=not args.no_record, store=args.store, reader=args.reader,
                      screenshot=args.screenshot, auto_read=not args.no_read, pacs=pacs)
    if args.screenshot:
        print(f"screenshot written to {Path(args.screenshot).resolve()}")
        if not args.no_read:
            _refuse_models_read_refuses()
    return code


def _refuse_models_read_refuses() -> None:
    """Exit like `read` (one line, exit 2) when a model the read needs is tampered, truncated or missing.

    The window already showed the refusal in the AI panel and never loaded the model; a screenshot run
    must not then report success. The sessions are cached, so this loads nothing a good read has not."""
    from radassist.inference.engine import load_model
    from radassist.pipeline.read import ReadOptions

    options = ReadOptions()
    for model in (options.lungseg, options.classifier):
        load_model(model)
