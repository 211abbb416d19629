"""`radassist nlp [FILE|-]`: labels {present, absent, uncertain} per knowledge-graph finding for a report text.

Reads the report from FILE, or from standard input when FILE is "-" or omitted. Section headers
(FINDINGS:, IMPRESSION:, INDICATION: ...) are honoured; text without headers is read as findings.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", default="-", help="report text file, or - for standard input (default)")
    parser.add_argument("--no-mentions", action="store_true", help="leave out the per-mention evidence")


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from radassist.errors import InputRefused
    from radassist.findings.nlp import label_report

    if args.file == "-":
        text = sys.stdin.read()
    else:
        path = Path(args.file)
        if not path.is_file():
            raise InputRefused(f"the report file {path} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputRefused(f"{path.name} is not a UTF-8 text file") from exc
    if not text.strip():
        raise InputRefused("the report text is empty")
    payload = label_report(text).as_dict()
    if args.no_mentions:
        payload.pop("mentions")
    print(json.dumps(payload, indent=2))
    return 0
