"""`radassist evaluate-nlp --reports CSV --out DIR`: score the report NLP against MeSH tags.

Writes DIR/metrics.json (per-finding precision/recall/F1 and micro-F1, bootstrap 95% CIs, with the
uncertain-as-positive alternative beside it) and DIR/errors.txt (disagreements with their sentences,
for reading before adding a rule). See radassist/findings/nlp_evaluation.py for the scoring decisions.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reports", required=True, type=Path, help="reports.csv with id, findings, impression, tags")
    parser.add_argument("--out", required=True, type=Path, help="folder for metrics.json and errors.txt")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the CIs (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N reports (quick checks)")
    parser.add_argument("--part", default=None, metavar="K/N",
                        help="score only the K-th of N contiguous parts of the file, in file order (e.g. 1/2, 2/2: "
                             "the two halves of the development reports, to see how much a rule tuned on one holds)")


def run(args: argparse.Namespace) -> int:
    import json

    from radassist.errors import InputRefused
    from radassist.findings import nlp_evaluation as ev
    from radassist.findings.nlp import PRESENT, UNCERTAIN

    if args.bootstrap < 1:
        raise InputRefused("--bootstrap must be at least 1")
    rows = ev.read_reports(args.reports)
    if args.part:
        rows = ev.part_of(rows, args.part)
    rows = rows[: args.limit]
    rules = ev.load_mesh_map()
    findings = ev.scored_findings(rules)
    reports = ev.label_reports(rows, rules)
    if not reports:
        raise InputRefused(f"{args.reports.name} has no indexed reports to score")
    metrics = ev.compute_metrics(reports, findings, n_bootstrap=args.bootstrap, seed=args.seed)
    lenient = ev.compute_metrics(reports, findings, positive=(PRESENT, UNCERTAIN), n_bootstrap=args.bootstrap,
                                 seed=args.seed)
    metrics["uncertain_policy"] = ev.uncertain_policy_note()
    metrics["micro_if_uncertain_counted_positive"] = lenient["micro"]
    metrics["reports_file"] = str(args.reports)
    metrics["part"] = args.part
    metrics["reports_skipped_no_gold_or_no_text"] = len(rows) - len(reports)
    metrics["mesh_map"] = str(ev.mesh_map_path())

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (args.out / "errors.txt").write_text("\n".join(ev.error_lines(reports, findings)) + "\n", encoding="utf-8")

    print(f"{'finding':<26}{'support':>8}{'precision':>11}{'recall':>8}{'F1':>8}  F1 95% CI")
    for finding, m in metrics["per_finding"].items():
        ci = m["f1_ci95"]
        ci_text = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci[0] is not None else "-"
        print(f"{finding:<26}{m['support']:>8}{_fmt(m['precision']):>11}{_fmt(m['recall']):>8}{_fmt(m['f1']):>8}  {ci_text}")
    micro = metrics["micro"]
    print(f"micro-F1 {micro['f1']:.4f} [95% CI {micro['f1_ci95'][0]:.4f}, {micro['f1_ci95'][1]:.4f}] "
          f"(P {micro['precision']:.4f}, R {micro['recall']:.4f}) on {metrics['reports']} reports; "
          f"uncertain counted positive: {metrics['micro_if_uncertain_counted_positive']['f1']:.4f}")
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'errors.txt'}")
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
