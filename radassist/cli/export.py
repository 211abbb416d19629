"""`radassist export --out DIR [--since DATE] [--store PATH] [--images DIR]`: the de-identified feedback dataset."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from radassist.errors import InputRefused


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="new (or empty) folder to write the dataset into")
    parser.add_argument("--since", help="only sessions signed on or after this date (YYYY-MM-DD or ISO date-time, UTC)")
    parser.add_argument("--store", help="feedback store file (default: the user-data folder, or RADASSIST_DATA_DIR)")
    parser.add_argument("--images", action="append", default=[], metavar="DIR",
                        help="folder to search for source images that moved (may be repeated)")
    parser.add_argument("--include-burned-in", action="store_true",
                        help="also export images flagged BurnedInAnnotation=YES (flagged in labels.csv)")


def parse_since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputRefused(f"--since '{text}' is not a date (use YYYY-MM-DD)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from radassist.feedback.export import export_feedback
    from radassist.feedback.store import EventStore, resolve_store_path

    since = parse_since(args.since)
    store_path = resolve_store_path(args.store)
    if not store_path.is_file():
        raise InputRefused(f"there is no feedback store at {store_path} (record sessions first, or pass --store)")
    for folder in args.images:
        if not Path(folder).is_dir():
            raise InputRefused(f"--images {folder} is not a folder")
    with EventStore(store_path) as store:
        summary = export_feedback(store, args.out, since=since, image_dirs=args.images,
                                  include_burned_in=args.include_burned_in)
    print(summary.line())
    return 0
