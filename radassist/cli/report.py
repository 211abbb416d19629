"""`radassist report PATH [--json]`: read one radiograph and print its draft report.

Text mode prints FINDINGS and IMPRESSION as a radiologist would read them; --json adds each sentence's
provenance (model label, knowledge-graph node, probability, band, sentence id).
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="chest radiograph (DICOM, PNG, JPEG, ...)")
    parser.add_argument("--json", action="store_true", help="print the report with per-sentence provenance as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from radassist.errors import InputRefused
    from radassist.findings.report import draft_report, report_as_dict
    from radassist.pipeline.read import read_radiograph

    if not Path(args.path).exists():
        raise InputRefused(f"{args.path} does not exist")
    result = read_radiograph(args.path)
    report = result.report if result.report is not None else draft_report(result)
    if args.json:
        payload = {"file": Path(result.meta.source_path).name, "model": result.model_id, **report_as_dict(report)}
        print(json.dumps(payload, indent=2))
    else:
        print(report.text(), end="")
    return 0
